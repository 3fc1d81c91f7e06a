"""Prepared statements (sql/db.py ``Prepared``): planned once per connection, and a write that
uses them keeps working when its first run fails, when its connections are replaced, and with
``DB_PREPARE_STATEMENTS=false``."""

from __future__ import annotations

from typing import Any

import psycopg2
import pytest

from service.routes import API
from sql.db import Database, Prepared
from sql.events import PendingEvent, insert_events_txn
from tests.conftest import Account, register
from tests.helpers import create_post

DIVIDE = Prepared("test_divide", "SELECT 1 / %(n)s::int AS quotient")


async def test_a_prepared_statement_whose_first_run_fails_runs_again(db: Database) -> None:
    # The failing run's PREPARE stays (it is not undone with the transaction), so the next
    # run must only EXECUTE it: preparing it twice would fail.
    with pytest.raises(psycopg2.errors.DivisionByZero):
        async with db.transaction("divide_by_zero") as cur:
            await cur.fetch_one(DIVIDE, {"n": 0})
    for n in (1, 1):
        async with db.transaction("divide") as cur:
            assert await cur.fetch_value(DIVIDE, {"n": n}) == 1


async def test_a_prepared_statement_is_planned_once_per_connection(client: Any,
                                                                  db: Database) -> None:
    # A like's events: with PostgreSQL's default plan choice this statement (array
    # parameters) was planned anew on every run, each costing as much as running it.
    user = await register(client)
    async with db.transaction("events") as cur:
        for _ in range(8):
            await insert_events_txn(cur, [PendingEvent(user.id, "unread")])
        plans = await cur.fetch_one(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE name = 'insert_events'")
    assert plans == {"generic_plans": 8, "custom_plans": 0}


@pytest.mark.parametrize("prepare", [True, False])
async def test_likes_and_messages_work_when_connections_are_replaced(
        make_client: Any, db: Database, prepare: bool) -> None:
    client = await make_client(db_prepare_statements=prepare)
    author, reader = await register(client), await register(client)

    async def like_and_message() -> None:
        post = await create_post(client, author)
        liked = await client.post(f"{API}/posts/{post['id']}/like", headers=reader.headers)
        assert liked.status == 201, await liked.text()
        opened = await client.post(f"{API}/conversations", json={"user_id": author.id},
                                   headers=reader.headers)
        conversation = (await opened.json())["id"]
        sent = await client.post(f"{API}/conversations/{conversation}/messages",
                                 json={"body": "hello"}, headers=reader.headers)
        assert sent.status == 201, await sent.text()

    await like_and_message()
    # Every connection the app holds goes (a database restart or failover looks the same):
    # its prepared statements go with them, and the new connections prepare their own.
    await db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    await _until_answering(client, reader)
    await like_and_message()
    assert await _count(db, "SELECT count(*) FROM post_likes WHERE user_id = %(id)s",
                        reader) == 2


async def _until_answering(client: Any, reader: Account) -> None:
    """The first requests may meet a connection that is gone (503); then it is replaced."""
    for _ in range(20):
        if (await client.get(f"{API}/notifications", headers=reader.headers)).status == 200:
            return
    raise AssertionError("the service did not answer again")


async def _count(db: Database, query: str, account: Account) -> int:
    return int(await db.fetch_value(query, {"id": account.id}))
