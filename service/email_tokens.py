"""Spending the single-use tokens that account emails carry: verify an address, reset a password.

The JSON API (``service.auth``) and the pages the emailed links open (``service.pages``)
both do it through these two functions, so the rules are written once.
"""

from __future__ import annotations

from cache.client import Cache
from cache.counters import invalidate_own_users
from cache.tokens import revoke_cached_tokens
from service.passwords import hash_password
from service.tokens import hash_token
from sql import tokens, users
from sql.db import Database


async def verify_email_with_token(db: Database, cache: Cache, token: str) -> bool:
    """Mark the token's user's email verified; False for a bad, expired or spent token."""
    async with db.transaction("verify_email") as cur:
        user_id = await tokens.spend_email_token_txn(cur, hash_token(token), "verify_email")
        if user_id is None:
            return False
        await users.mark_email_verified_txn(cur, user_id)
    await invalidate_own_users(cache, [user_id])
    return True


async def reset_password_with_token(db: Database, cache: Cache, token: str,
                                    new_password: str) -> bool:
    """Set the token's user's password and revoke every session; False for a bad token."""
    new_hash = await hash_password(new_password)  # before the transaction: it takes a while
    async with db.transaction("confirm_password_reset") as cur:
        user_id = await tokens.spend_email_token_txn(cur, hash_token(token), "password_reset")
        if user_id is None:
            return False
        await users.update_password_txn(cur, user_id, new_hash)
        await users.mark_email_verified_txn(cur, user_id)  # the link proved the address
        revoked = await tokens.delete_user_tokens_txn(cur, user_id)
    await revoke_cached_tokens(cache, [h.hex() for h in revoked])
    await invalidate_own_users(cache, [user_id])  # now verified
    return True
