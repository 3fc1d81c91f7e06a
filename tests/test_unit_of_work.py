"""The unit of work's after-commit actions run after a commit, and never after a rollback."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.appkeys import STORES
from service.routes import API
from service.tokens import hash_token
from sql.db import Database
from tasks.work import Work, unit_of_work
from tests.conftest import Account

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
