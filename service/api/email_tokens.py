"""Spending the single-use tokens that account emails carry: verify an address, reset a password.

The JSON API (``service.api.auth``) and the pages the emailed links open (``service.pages.links``)
both do it through these two functions, so the rules are written once.
"""

from __future__ import annotations

from service.passwords import hash_password
from service.tokens import hash_token
from sql import tokens, users
from tasks.work import Stores, unit_of_work


async def verify_email_with_token(stores: Stores, token: str) -> bool:
    """Mark the token's user's email verified; False for a bad, expired or spent token."""
    async with unit_of_work(stores, "verify_email") as work:
        user_id = await tokens.spend_email_token_txn(work.cur, hash_token(token), "verify_email")
        if user_id is None:
            return False
        await users.mark_email_verified_txn(work.cur, user_id)
        work.own_user_changed(user_id)
    return True


async def reset_password_with_token(stores: Stores, token: str, new_password: str) -> bool:
    """Set the token's user's password and revoke every session; False for a bad token."""
    new_hash = await hash_password(new_password)  # before the transaction: it takes a while
    async with unit_of_work(stores, "confirm_password_reset") as work:
        user_id = await tokens.spend_email_token_txn(work.cur, hash_token(token),
                                                     "password_reset")
        if user_id is None:
            return False
        await users.update_password_txn(work.cur, user_id, new_hash)
        await users.mark_email_verified_txn(work.cur, user_id)  # the link proved the address
        work.token_revoked(*await tokens.delete_user_tokens_txn(work.cur, user_id))
        work.own_user_changed(user_id)  # now verified
    return True
