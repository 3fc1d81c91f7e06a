"""Client helpers for the admin console's tests: make a staff account, sign in, post forms."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from sql.db import Database
from tests.conftest import PASSWORD, Account, register

Client = TestClient[Any, Any]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html[:500]
    return found.group(1)


async def make_admin(client: Client, db: Database, **fields: Any) -> Account:
    account = await register(client, **fields)
    await db.execute("UPDATE users SET is_admin = true WHERE id = %(id)s", {"id": account.id})
    return account


async def sign_in(client: Client, account: Account, password: str = PASSWORD) -> str:
    """Sign in through the form; the CSRF token of the pages that follow."""
    form = await client.get("/admin/login")
    assert form.status == 200
    answer = await client.post("/admin/login", data={
        "email": account.email, "password": password, "csrf_token": csrf_of(await form.text())})
    assert answer.status == 200 and answer.url.path == "/admin/", await answer.text()
    return csrf_of(await answer.text())


async def post_form(client: Client, path: str, csrf: str | None, **fields: Any
                    ) -> ClientResponse:
    data = {**fields, **({"csrf_token": csrf} if csrf is not None else {})}
    return await client.post(path, data=data)
