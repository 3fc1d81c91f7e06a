"""Staff accounts from the command line (``run.py admin create | promote``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec

from service.api.schemas import RegisterRequest
from service.passwords import hash_password
from sql import admin_users, users
from sql.db import Database, PoolConfig, open_database

POOL = PoolConfig(minsize=1, maxsize=1, recycle=60, acquire_timeout=10, statement_timeout=30)


class AdminAccountError(Exception):
    """The account cannot be made: a bad field, or the email is taken."""


async def create(database_url: str, *, email: str, password: str, first_name: str,
                 last_name: str) -> int:
    """A new account with is_admin, checked by the same rules as registration."""
    try:
        fields = msgspec.convert({"email": email, "password": password, "first_name": first_name,
                                  "last_name": last_name, "role": "job_seeker"}, RegisterRequest)
    except msgspec.ValidationError as error:
        raise AdminAccountError(str(error)) from None
    password_hash = await hash_password(fields.password)
    async with _database(database_url) as db, db.transaction("create_admin") as cur:
        row = await users.insert_user_txn(
            cur, email=fields.email, password_hash=password_hash, first_name=fields.first_name,
            last_name=fields.last_name, role=fields.role)
        if row is None:
            raise AdminAccountError(f"{email} is already registered; use promote")
        await admin_users.make_admin_txn(cur, row["id"])
    return int(row["id"])


async def promote(database_url: str, email: str) -> int | None:
    async with _database(database_url) as db:
        return await admin_users.promote_to_admin(db, email)


@asynccontextmanager
async def _database(url: str) -> AsyncIterator[Database]:
    """A one-connection pool for the length of one command."""
    db = open_database(url, (), POOL)
    await db.open()
    try:
        yield db
    finally:
        await db.close()
