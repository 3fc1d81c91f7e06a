"""Bearer tokens and single-use email tokens, stored only as SHA-256 hashes."""

from __future__ import annotations

from sql.db import Cursor, Database, Row

# A token expires this long after its last use (API.md, "Auth and users").
TOKEN_IDLE_LIFETIME = "30 days"

INSERT_AUTH_TOKEN = """
    INSERT INTO auth_tokens (token_hash, user_id) VALUES (%(token_hash)s, %(user_id)s)
"""


async def insert_auth_token_txn(cur: Cursor, token_hash: bytes, user_id: int) -> None:
    await cur.execute(INSERT_AUTH_TOKEN, {"token_hash": token_hash, "user_id": user_id})


SELECT_PRINCIPAL = f"""
    SELECT t.user_id, u.role, u.is_admin, t.last_used_at
    FROM auth_tokens t
    JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = %(token_hash)s
      AND t.last_used_at > now() - interval '{TOKEN_IDLE_LIFETIME}'
      AND u.suspended_at IS NULL
"""


async def get_token_principal(db: Database, token_hash: bytes) -> Row | None:
    """Who holds this token, if it is live. Always the primary: revocation must be seen."""
    return await db.fetch_one(SELECT_PRINCIPAL, {"token_hash": token_hash})


# Refreshing last use at most once a day keeps token checks read-only on nearly every
# request; the same statement records the user as active (feeds fan out to active users).
TOUCH_AUTH_TOKEN = """
    WITH touched AS (
        UPDATE auth_tokens SET last_used_at = now()
        WHERE token_hash = %(token_hash)s AND last_used_at < now() - interval '1 day'
        RETURNING user_id
    )
    UPDATE users SET last_seen_at = now() WHERE id IN (SELECT user_id FROM touched)
"""


async def touch_auth_token(db: Database, token_hash: bytes) -> None:
    await db.execute(TOUCH_AUTH_TOKEN, {"token_hash": token_hash})


DELETE_AUTH_TOKEN = "DELETE FROM auth_tokens WHERE token_hash = %(token_hash)s"


async def delete_auth_token_txn(cur: Cursor, token_hash: bytes) -> None:
    await cur.execute(DELETE_AUTH_TOKEN, {"token_hash": token_hash})


DELETE_USER_TOKENS = """
    DELETE FROM auth_tokens
    WHERE user_id = %(user_id)s AND token_hash IS DISTINCT FROM %(keep)s
    RETURNING token_hash
"""


async def delete_user_tokens_txn(cur: Cursor, user_id: int,
                                 keep: bytes | None = None) -> list[bytes]:
    """Revoke every token of the user except ``keep``; returns the revoked hashes."""
    rows = await cur.fetch_all(DELETE_USER_TOKENS, {"user_id": user_id, "keep": keep})
    return [bytes(row["token_hash"]) for row in rows]


INSERT_EMAIL_TOKEN = """
    INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at)
    VALUES (%(token_hash)s, %(user_id)s, %(purpose)s, now() + %(lifetime)s::interval)
"""


async def insert_email_token_txn(cur: Cursor, token_hash: bytes, user_id: int, purpose: str,
                                 lifetime: str) -> None:
    await cur.execute(INSERT_EMAIL_TOKEN, {"token_hash": token_hash, "user_id": user_id,
                                           "purpose": purpose, "lifetime": lifetime})


SPEND_EMAIL_TOKEN = """
    UPDATE email_tokens SET used_at = now()
    WHERE token_hash = %(token_hash)s AND purpose = %(purpose)s
      AND used_at IS NULL AND expires_at > now()
    RETURNING user_id
"""


async def spend_email_token_txn(cur: Cursor, token_hash: bytes, purpose: str) -> int | None:
    """Mark a live token used, atomically: the user id, or None for a bad or spent token."""
    user_id = await cur.fetch_value(SPEND_EMAIL_TOKEN,
                                    {"token_hash": token_hash, "purpose": purpose})
    return None if user_id is None else int(user_id)
