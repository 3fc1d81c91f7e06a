"""The unit of work's after-commit actions run after a commit, and never after a rollback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.appkeys import STORES
from service.routes import API
from service.tokens import hash_token
from sql.db import Database, UniqueViolation
from tasks.work import Work, unit_of_work
from tests.conftest import Account, ClientFactory, register
from tests.counting_proxy import CountingProxy

JOB = {"title": "Cook", "description": "Soups and stews", "employment_type": "full_time",
       "category": "hospitality", "location": "Lyon", "remote": False}


class Doomed(Exception):
    pass


async def job_title(client: TestClient[Any, Any], user: Account, job_id: int) -> str:
    answer = await client.get(f"{API}/jobs/{job_id}", headers=user.headers)
    assert answer.status == 200, await answer.text()
    title: str = (await answer.json())["title"]
    return title


async def saved_on_page_one(client: TestClient[Any, Any], user: Account) -> list[bool]:
    answer = await client.get(f"{API}/jobs", headers=user.headers)
    assert answer.status == 200, await answer.text()
    return [job["saved_by_me"] for job in (await answer.json())["items"]]


async def test_a_rolled_back_unit_of_work_runs_no_after_commit_action(
        client: TestClient[Any, Any], db: Database, user: Account, employer: Account) -> None:
    created = await client.post(f"{API}/jobs", json=JOB, headers=employer.headers)
    job_id = (await created.json())["id"]
    assert await job_title(client, user, job_id) == "Cook"  # now cached
    assert await saved_on_page_one(client, employer) == [False]  # the employer's flags too
    # Changes the cache was not told about: only an invalidation makes readers see them.
    await db.execute("UPDATE jobs SET title = 'Chef' WHERE id = %(id)s", {"id": job_id})
    await db.execute("INSERT INTO saved_jobs (user_id, job_id) VALUES (%(user)s, %(job)s)",
                     {"user": employer.id, "job": job_id})
    ran: list[str] = []

    async def after_commit() -> None:
        ran.append("action")

    def register_everything(work: Work) -> None:
        work.job_changed(job_id)
        work.job_flags_changed(employer.id)
        work.token_revoked(hash_token(user.token))
        work.own_user_changed(user.id)
        work.unread_count_changed("notifications", user.id)
        work.after_commit(after_commit)

    with pytest.raises(Doomed):
        async with unit_of_work(client.server.app[STORES], "doomed") as work:
            register_everything(work)
            raise Doomed()
    assert ran == []
    assert await job_title(client, user, job_id) == "Cook"  # still the cached entry
    assert await saved_on_page_one(client, employer) == [False]
    assert (await client.get(f"{API}/me", headers=user.headers)).status == 200

    async with unit_of_work(client.server.app[STORES], "committed") as work:
        register_everything(work)
    assert ran == ["action"]
    assert await job_title(client, employer, job_id) == "Chef"
    assert await saved_on_page_one(client, employer) == [True]
    assert (await client.get(f"{API}/me", headers=user.headers)).status == 401


async def test_a_transaction_whose_first_statement_fails_leaves_nothing_open(
        db: Database, user: Account) -> None:
    """BEGIN travels with the first statement (sql/db.py): when that statement fails, the
    transaction it opened is rolled back, and no pooled connection is left inside it."""
    for _ in range(3):
        with pytest.raises(UniqueViolation):
            async with db.transaction("duplicate_first") as cur:
                await cur.execute("INSERT INTO users (email, password_hash, first_name, "
                                  "last_name, role) SELECT email, 'x', 'A', 'B', 'job_seeker' "
                                  "FROM users WHERE id = %(id)s", {"id": user.id})
    async with db.transaction("nothing_to_do"):
        pass  # sends nothing at all
    open_transactions = await db.fetch_value(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state LIKE 'idle in transaction%%'")
    assert open_transactions == 0
    async with db.transaction("two_statements") as cur:
        await cur.execute("UPDATE users SET first_name = 'Changed' WHERE id = %(id)s",
                          {"id": user.id})
        await cur.execute("SELECT 1")
    assert await db.fetch_value("SELECT first_name FROM users WHERE id = %(id)s",
                                {"id": user.id}) == "Changed"


async def test_a_write_invalidates_what_it_made_stale_in_one_round_trip(
        make_client: ClientFactory, proxy: CountingProxy) -> None:
    """Unread counts, accounts, jobs and job flags go stale together in one pipeline, which
    publishes the unread change's live event too."""
    client = await make_client(redis_url=proxy.url, delivery_sweep_seconds=600)
    user = await register(client)
    await asyncio.sleep(0.3)  # let the registration's deliveries settle their Redis calls
    before = proxy.writes
    async with unit_of_work(client.server.app[STORES], "many kinds") as work:
        work.unread_count_changed("notifications", user.id)
        work.own_user_changed(user.id)
        work.job_changed(1, 2)
        work.job_flags_changed(user.id)
    assert proxy.writes - before == 1
