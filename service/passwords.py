"""argon2id password hashing, off the event loop.

Hashing costs tens of milliseconds of CPU and 64 MiB by design; it runs in the default thread
pool (argon2 releases the GIL) so the loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sql import users
from sql.db import Cursor

_hasher = PasswordHasher()  # RFC 9106 low-memory profile: above OWASP's minimum


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (unknown email) spend the same time and say no."""
    if password_hash is None:
        password_hash, password = await _dummy_hash(), ""
    try:
        verified = await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    return bool(verified)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


async def upgrade_hash_txn(cur: Cursor, user_id: int, password_hash: str, password: str) -> None:
    """At a successful sign-in (the only time the password is known): store a hash made with
    today's parameters if ``password_hash`` was made with older, weaker ones."""
    if needs_rehash(password_hash):
        await users.update_password_txn(cur, user_id, await hash_password(password))


_dummy_hash_value: str | None = None


async def _dummy_hash() -> str:
    """A real hash to verify against for unknown emails, made once per process."""
    global _dummy_hash_value
    if _dummy_hash_value is None:
        _dummy_hash_value = await hash_password(secrets.token_urlsafe(16))
    return _dummy_hash_value
