"""Users: accounts, profiles and the name search."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sql.db import Cursor, Database, Row

PROFILE_COLUMNS = """
    u.id, u.first_name, u.last_name, u.role, u.headline, u.bio, u.location, u.skills,
    u.available_for_hire, u.followers_count, u.following_count, u.created_at
"""
OWN_COLUMNS = PROFILE_COLUMNS + ", u.email, u.email_verified"


def prefixed_profile_columns(prefix: str, table: str, *, with_id: bool = True) -> str:
    """``table``'s PROFILE_COLUMNS named ``prefix`` + column: a joined user's profile beside
    another row's columns (service.responses.from_prefixed reads it back). ``with_id=False``
    for a row that names the user's id already (a job's ``employer_id``)."""
    names = (column.strip().removeprefix("u.") for column in PROFILE_COLUMNS.split(","))
    return ", ".join(f"{table}.{name} AS {prefix}{name}" for name in names
                     if with_id or name != "id")

# Columns a user may change on their own profile (PATCH /me); the only names ever
# formatted into SQL, so the statement is built from this fixed list alone.
EDITABLE_COLUMNS = ("first_name", "last_name", "headline", "bio", "location", "skills",
                    "available_for_hire")

INSERT_USER = f"""
    INSERT INTO users AS u (email, password_hash, first_name, last_name, role)
    VALUES (%(email)s, %(password_hash)s, %(first_name)s, %(last_name)s, %(role)s)
    ON CONFLICT ((lower(email))) DO NOTHING
    RETURNING {OWN_COLUMNS}
"""


async def insert_user_txn(cur: Cursor, **fields: Any) -> Row | None:
    """The new user, or None when the email is taken (case-insensitively)."""
    return await cur.fetch_one(INSERT_USER, fields)


SELECT_LOGIN = f"""
    SELECT {OWN_COLUMNS}, u.password_hash, u.suspended_at
    FROM users u
    WHERE lower(u.email) = lower(%(email)s)
"""


async def get_login(db: Database, email: str) -> Row | None:
    return await db.fetch_one(SELECT_LOGIN, {"email": email})


SELECT_OWN_USERS = f"""
    SELECT {OWN_COLUMNS}, false AS followed_by_me FROM users u WHERE u.id = ANY(%(ids)s::bigint[])
"""


async def get_own_users(db: Database, user_ids: Collection[int]) -> dict[int, Row]:
    """Users' own account rows (GET /me's user) in one query; missing ids absent."""
    rows = await db.fetch_all(SELECT_OWN_USERS, {"ids": list(user_ids)})
    return {row["id"]: row for row in rows}


async def get_own_user(db: Database, user_id: int) -> Row | None:
    return (await get_own_users(db, [user_id])).get(user_id)


SELECT_PASSWORD_HASH = "SELECT password_hash FROM users WHERE id = %(user_id)s"


async def get_password_hash(db: Database, user_id: int) -> str | None:
    value = await db.fetch_value(SELECT_PASSWORD_HASH, {"user_id": user_id})
    return None if value is None else str(value)


SELECT_PROFILE = f"""
    SELECT {PROFILE_COLUMNS},
           EXISTS (SELECT 1 FROM follows f
                   WHERE f.follower_id = %(viewer_id)s AND f.followed_id = u.id) AS followed_by_me
    FROM users u
    WHERE u.id = %(user_id)s AND u.suspended_at IS NULL
"""


async def get_profile(db: Database, user_id: int, viewer_id: int) -> Row | None:
    return await db.fetch_one(SELECT_PROFILE, {"user_id": user_id, "viewer_id": viewer_id},
                              stale_ok=True)


# Newest accounts first, keyset on id. A name prefix matches the first or the last name;
# both arms are served by the text_pattern_ops indexes (a BitmapOr), never a scan of users.
SEARCH_PROFILES = f"""
    SELECT {PROFILE_COLUMNS},
           EXISTS (SELECT 1 FROM follows f
                   WHERE f.follower_id = %(viewer_id)s AND f.followed_id = u.id) AS followed_by_me
    FROM users u
    WHERE u.suspended_at IS NULL
      AND (%(prefix)s::text IS NULL
           OR lower(u.first_name) LIKE %(prefix)s || '%%'
           OR lower(u.last_name) LIKE %(prefix)s || '%%')
      AND (%(available)s::boolean IS NULL OR u.available_for_hire = %(available)s)
      AND (%(before_id)s::bigint IS NULL OR u.id < %(before_id)s)
    ORDER BY u.id DESC
    LIMIT %(limit)s
"""


async def search_profiles(db: Database, *, viewer_id: int, prefix: str | None,
                          available: bool | None, before_id: int | None,
                          limit: int) -> list[Row]:
    params = {"viewer_id": viewer_id, "prefix": prefix, "available": available,
              "before_id": before_id, "limit": limit}
    return await db.fetch_all(SEARCH_PROFILES, params, stale_ok=True)


async def update_profile_txn(cur: Cursor, user_id: int,
                             changes: Mapping[str, Any]) -> Row | None:
    assignments = ", ".join(f"{column} = %({column})s"
                            for column in EDITABLE_COLUMNS if column in changes)
    query = f"""
        UPDATE users AS u SET {assignments}, updated_at = now()
        WHERE u.id = %(user_id)s
        RETURNING {OWN_COLUMNS}, false AS followed_by_me
    """  # column names come from EDITABLE_COLUMNS only
    return await cur.fetch_one(query, {**changes, "user_id": user_id})


UPDATE_PASSWORD = """
    UPDATE users SET password_hash = %(password_hash)s, updated_at = now()
    WHERE id = %(user_id)s
"""


async def update_password_txn(cur: Cursor, user_id: int, password_hash: str) -> None:
    await cur.execute(UPDATE_PASSWORD, {"user_id": user_id, "password_hash": password_hash})


MARK_EMAIL_VERIFIED = "UPDATE users SET email_verified = true WHERE id = %(user_id)s"


async def mark_email_verified_txn(cur: Cursor, user_id: int) -> None:
    await cur.execute(MARK_EMAIL_VERIFIED, {"user_id": user_id})


SELECT_PROFILES = f"""
    SELECT {PROFILE_COLUMNS},
           EXISTS (SELECT 1 FROM follows f
                   WHERE f.follower_id = %(viewer_id)s AND f.followed_id = u.id) AS followed_by_me
    FROM users u
    WHERE u.id = ANY(%(ids)s::bigint[])
"""


async def get_profiles(db: Database, user_ids: Collection[int], viewer_id: int, *,
                       stale_ok: bool = True) -> dict[int, Row]:
    """Public profiles by id in one query (hydrating lists without N+1); missing ids absent."""
    if not user_ids:
        return {}
    rows = await db.fetch_all(SELECT_PROFILES, {"ids": list(set(user_ids)),
                                                "viewer_id": viewer_id}, stale_ok=stale_ok)
    return {row["id"]: row for row in rows}
