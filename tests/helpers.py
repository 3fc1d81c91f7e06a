"""Helpers several test modules share: API calls that set a scene, keys, and waiting.

Each API helper asserts the status it expects, so a test that uses one to set up fails at the
step that went wrong rather than later.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

from sql.db import Database
from tasks.webpush_keys import new_vapid_keys
from tests.conftest import API, Account
from tests.push_service import PushService

Client = TestClient[Any, Any]

JOB = {"title": "Backend engineer", "description": "Build APIs in Python and PostgreSQL",
       "employment_type": "full_time", "category": "engineering", "location": "Berlin",
       "remote": True, "salary_min": 60000, "salary_max": 90000}


# -- waiting --------------------------------------------------------------------------------

async def wait_until(condition: Callable[[], Any], what: str = "the condition",
                     timeout: float = 10, interval: float = 0.05) -> float:
    """Call ``condition`` (plain or async) every ``interval`` seconds until it is true.

    Returns the seconds it took; fails naming ``what`` once ``timeout`` seconds pass.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(timeout) as deadline:
            while not await _holds(condition):
                await asyncio.sleep(interval)
    except TimeoutError:
        if not deadline.expired():
            raise  # the condition's own timeout, not ours
        raise AssertionError(f"not within {timeout}s: {what}") from None
    return loop.time() - started


async def _holds(condition: Callable[[], Any]) -> bool:
    answer = condition()
    if inspect.isawaitable(answer):
        answer = await answer
    return bool(answer)


# -- jobs and posts -------------------------------------------------------------------------

async def post_job(client: Client, employer: Account, **changes: Any) -> dict[str, Any]:
    """``employer`` posts ``JOB`` with ``changes``; the created job."""
    response = await client.post(f"{API}/jobs", json=JOB | changes, headers=employer.headers)
    body: dict[str, Any] = await response.json()
    assert response.status == 201, body
    return body


async def insert_job(db: Database, employer: Account) -> int:
    """A job for ``employer`` written straight to the database; its id."""
    job_id = await db.fetch_value("""
        INSERT INTO jobs (employer_id, title, description, employment_type)
        VALUES (%(id)s, 'Cook', 'Cooks things', 'full_time') RETURNING id""",
                                  {"id": employer.id})
    return int(job_id)


async def create_post(client: Client, author: Account, body: str = "hello",
                      **extra: Any) -> dict[str, Any]:
    """``author`` posts ``body``; the created post."""
    response = await client.post(f"{API}/posts", json={"body": body} | extra,
                                 headers=author.headers)
    answer: dict[str, Any] = await response.json()
    assert response.status == 201, answer
    return answer


async def delete_post(client: Client, account: Account, post_id: int, expect: int = 204) -> None:
    response = await client.delete(f"{API}/posts/{post_id}", headers=account.headers)
    assert response.status == expect, await response.text()


# -- follows and blocks ---------------------------------------------------------------------

async def follow(client: Client, account: Account, other_id: int, expect: int = 201) -> None:
    response = await client.post(f"{API}/users/{other_id}/follow", headers=account.headers)
    assert response.status == expect, await response.text()


async def unfollow(client: Client, account: Account, other_id: int) -> None:
    response = await client.delete(f"{API}/users/{other_id}/follow", headers=account.headers)
    assert response.status == 204, await response.text()


async def block(client: Client, account: Account, other_id: int, expect: int = 201) -> None:
    response = await client.post(f"{API}/users/{other_id}/block", headers=account.headers)
    assert response.status == expect, await response.text()


async def walk(client: Client, account: Account, path: str, limit: int = 2) -> list[int]:
    """Every item id of a paged list, following next_cursor to the end."""
    ids: list[int] = []
    cursor = None
    while True:
        params = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        response = await client.get(f"{API}{path}", params=params, headers=account.headers)
        assert response.status == 200, await response.text()
        page = await response.json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


async def notifications_of(db: Database, user_id: int, kind: str) -> list[dict[str, Any]]:
    """The user's notifications of one type, read from the database."""
    return await db.fetch_all(
        "SELECT id, actor_id, related_id FROM notifications "
        "WHERE user_id = %(id)s AND notification_type = %(kind)s", {"id": user_id, "kind": kind})


# -- web push -------------------------------------------------------------------------------

def new_vapid_key() -> str:
    """A fresh VAPID private key, base64url as the configuration takes it."""
    return new_vapid_keys().private


async def subscribe(client: Client, push_service: PushService, user: Account) -> dict[str, Any]:
    """Subscribe ``user`` to pushes at ``push_service``; the subscription sent."""
    subscription = push_service.new_subscription() | {"expirationTime": None}
    response = await client.post(f"{API}/push/subscriptions", json=subscription,
                                 headers=user.headers)
    assert response.status == 201, await response.text()
    return subscription


async def store_weak_password_hash(db: Database, user_id: int, password: str) -> str:
    """Give the account an argon2 hash made with older, weaker parameters, as a database
    carried over from an earlier release would hold; the hash stored."""
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(password)
    await db.execute("UPDATE users SET password_hash = %(hash)s WHERE id = %(id)s",
                     {"hash": weak, "id": user_id})
    return weak


async def password_hash_of(db: Database, user_id: int) -> str:
    value: str = await db.fetch_value("SELECT password_hash FROM users WHERE id = %(id)s",
                                      {"id": user_id})
    return value
