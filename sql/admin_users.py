"""The admin console's view of accounts: search, one account in full, suspension."""

from __future__ import annotations

from sql.db import Cursor, Database, Row

ACCOUNT_COLUMNS = """
    u.id, u.email, u.first_name, u.last_name, u.role, u.is_admin, u.suspended_at,
    u.email_verified, u.followers_count, u.following_count, u.last_seen_at, u.created_at
"""

# Newest accounts first, keyset on id (the primary key). Text with an @ is an exact email
# (users_email_key); other text is a name prefix of the first or last name (the
# text_pattern_ops indexes, a BitmapOr); a number is the account id.
SEARCH_ACCOUNTS = f"""
    SELECT {ACCOUNT_COLUMNS}
    FROM users u
    WHERE (%(email)s::text IS NULL OR lower(u.email) = lower(%(email)s))
      AND (%(prefix)s::text IS NULL
           OR lower(u.first_name) LIKE %(prefix)s || '%%'
           OR lower(u.last_name) LIKE %(prefix)s || '%%')
      AND (%(user_id)s::bigint IS NULL OR u.id = %(user_id)s)
      AND (%(suspended)s::boolean IS NULL OR (u.suspended_at IS NOT NULL) = %(suspended)s)
      AND (%(before_id)s::bigint IS NULL OR u.id < %(before_id)s)
    ORDER BY u.id DESC
    LIMIT %(limit)s
"""


def _like_escaped(text: str) -> str:
    return text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_accounts(db: Database, q: str | None, *, suspended: bool | None,
                          before_id: int | None, limit: int) -> list[Row]:
    email = q if q and "@" in q else None
    user_id = int(q) if q and q.isascii() and q.isdigit() and len(q) <= 18 else None
    prefix = _like_escaped(q) if q and email is None and user_id is None else None
    return await db.fetch_all(SEARCH_ACCOUNTS, {
        "email": email, "prefix": prefix, "user_id": user_id, "suspended": suspended,
        "before_id": before_id, "limit": limit})


SELECT_ACCOUNT = f"SELECT {ACCOUNT_COLUMNS} FROM users u WHERE u.id = %(user_id)s"


async def get_account(db: Database, user_id: int) -> Row | None:
    return await db.fetch_one(SELECT_ACCOUNT, {"user_id": user_id})


# The account's latest posts, jobs and comments, each from its (owner, created_at) index.
RECENT_ACTIVITY = """
    (SELECT 'post' AS kind, p.id, left(p.body, 200) AS summary, p.created_at
     FROM posts p WHERE p.user_id = %(user_id)s
     ORDER BY p.created_at DESC, p.id DESC LIMIT %(limit)s)
    UNION ALL
    (SELECT 'job', j.id, j.title, j.created_at
     FROM jobs j WHERE j.employer_id = %(user_id)s
     ORDER BY j.created_at DESC, j.id DESC LIMIT %(limit)s)
    UNION ALL
    (SELECT 'comment', c.id, left(c.body, 200), c.created_at
     FROM post_comments c WHERE c.user_id = %(user_id)s
     ORDER BY c.created_at DESC, c.id DESC LIMIT %(limit)s)
    ORDER BY created_at DESC
"""


async def list_recent_activity(db: Database, user_id: int, limit: int = 10) -> list[Row]:
    return await db.fetch_all(RECENT_ACTIVITY, {"user_id": user_id, "limit": limit})


SUSPEND = """
    UPDATE users SET suspended_at = now(), updated_at = now()
    WHERE id = %(user_id)s AND suspended_at IS NULL
    RETURNING id
"""
REINSTATE = """
    UPDATE users SET suspended_at = NULL, updated_at = now()
    WHERE id = %(user_id)s AND suspended_at IS NOT NULL
    RETURNING id
"""


async def suspend_account_txn(cur: Cursor, user_id: int) -> bool:
    """True when the account was live and is now suspended."""
    return await cur.fetch_value(SUSPEND, {"user_id": user_id}) is not None


async def reinstate_account_txn(cur: Cursor, user_id: int) -> bool:
    return await cur.fetch_value(REINSTATE, {"user_id": user_id}) is not None


PROMOTE = """
    UPDATE users SET is_admin = true, updated_at = now()
    WHERE lower(email) = lower(%(email)s)
    RETURNING id
"""


async def promote_to_admin(db: Database, email: str) -> int | None:
    """Make an existing account staff; its id, or None when no account has this email."""
    row = await db.fetch_one_write(PROMOTE, {"email": email})
    return None if row is None else int(row["id"])


MAKE_ADMIN = "UPDATE users SET is_admin = true WHERE id = %(user_id)s"


async def make_admin_txn(cur: Cursor, user_id: int) -> None:
    await cur.execute(MAKE_ADMIN, {"user_id": user_id})
