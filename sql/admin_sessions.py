"""Staff sessions of the admin console, stored only as the token's SHA-256."""

from __future__ import annotations

from sql.db import Cursor, Database, Row

# A session lasts a working day; signing in again starts a new one.
SESSION_LIFETIME = "12 hours"

SELECT_STAFF_LOGIN = """
    SELECT id, password_hash, is_admin, suspended_at FROM users
    WHERE lower(email) = lower(%(email)s)
"""


async def get_staff_login(db: Database, email: str) -> Row | None:
    """The account to check a sign-in against (users_email_key)."""
    return await db.fetch_one(SELECT_STAFF_LOGIN, {"email": email})


INSERT_SESSION = f"""
    INSERT INTO admin_sessions (token_hash, user_id, expires_at)
    VALUES (%(token_hash)s, %(user_id)s, now() + interval '{SESSION_LIFETIME}')
"""


async def insert_admin_session_txn(cur: Cursor, token_hash: bytes, user_id: int) -> None:
    await cur.execute(INSERT_SESSION, {"token_hash": token_hash, "user_id": user_id})


# is_admin and suspension are read on every request, so revoking either ends the session.
SELECT_SESSION = """
    SELECT u.id, u.email, u.first_name, u.last_name
    FROM admin_sessions s
    JOIN users u ON u.id = s.user_id
    WHERE s.token_hash = %(token_hash)s AND s.expires_at > now()
      AND u.is_admin AND u.suspended_at IS NULL
"""


async def get_admin_session(db: Database, token_hash: bytes) -> Row | None:
    """The signed-in admin, or None: unknown, expired, demoted or suspended. The primary
    always: a sign-out must be seen at once."""
    return await db.fetch_one(SELECT_SESSION, {"token_hash": token_hash})


DELETE_SESSION = "DELETE FROM admin_sessions WHERE token_hash = %(token_hash)s"


async def delete_admin_session(db: Database, token_hash: bytes) -> None:
    await db.execute(DELETE_SESSION, {"token_hash": token_hash})
