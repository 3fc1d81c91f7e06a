"""Direct messages: conversations, messages, read state, unread counts and notifications."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg2
import pytest
from aiohttp.test_utils import TestClient

from cache.client import connect
from service.config import Settings
from sql import counters
from sql import messages as message_queries
from sql.db import Database
from sql.migrate import apply_migrations
from tests.conftest import API, Account, ClientFactory, register
from tests.explain import plan_nodes
from tests.helpers import new_vapid_key, subscribe, wait_until
from tests.push_service import PushService
from tests.servers import ThrowawayRedis, create_database, drop_database
from tests.smtp_sink import SmtpSink
from tests.statement_counter import StatementCounter

Client = TestClient[Any, Any]


# -- helpers --------------------------------------------------------------------------------

async def open_conversation(client: Client, account: Account, other: Account) -> dict[str, Any]:
    response = await client.post(f"{API}/conversations", json={"user_id": other.id},
                                 headers=account.headers)
    body: dict[str, Any] = await response.json()
    assert response.status in (200, 201), body
    return body


async def send(client: Client, sender: Account, conversation_id: int,
               text: str = "hello") -> dict[str, Any]:
    response = await client.post(f"{API}/conversations/{conversation_id}/messages",
                                 json={"body": text}, headers=sender.headers)
    body: dict[str, Any] = await response.json()
    assert response.status == 201, body
    return body


async def read(client: Client, account: Account, conversation_id: int) -> None:
    response = await client.post(f"{API}/conversations/{conversation_id}/read",
                                 headers=account.headers)
    assert response.status == 204, await response.text()


async def get_json(client: Client, account: Account, path: str,
                   **params: str) -> dict[str, Any]:
    response = await client.get(f"{API}{path}", params=params, headers=account.headers)
    body: dict[str, Any] = await response.json()
    assert response.status == 200, body
    return body


async def unread_messages(client: Client, account: Account) -> int:
    count: int = (await get_json(client, account, "/messages/unread_count"))["count"]
    return count


async def database_unread(db: Database, user_id: int) -> int:
    return int(await db.fetch_value(
        "SELECT count(*) FROM messages WHERE receiver_id = %(id)s AND NOT is_read",
        {"id": user_id}))


async def all_pages(client: Client, account: Account, path: str, limit: int) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    while True:
        params = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        page = await get_json(client, account, path, **params)
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def block(db: Database, blocker: Account, blocked: Account) -> None:
    await db.execute("INSERT INTO blocks (blocker_id, blocked_id) VALUES (%(a)s, %(b)s)",
                     {"a": blocker.id, "b": blocked.id})


def message_emails(sink: SmtpSink) -> list[Any]:
    return [message for message in sink.messages if message["X-Hireme-Type"] == "message"]


async def reminder_rows(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all(
        "SELECT idempotency_key, status, last_error FROM outbox "
        "WHERE kind = 'email' AND payload->>'email_type' = 'message' ORDER BY id")


@pytest.fixture
async def trio(client: Client) -> tuple[Account, Account, Account]:
    return (await register(client, first_name="Ada", last_name="Lovelace"),
            await register(client, first_name="Grace", last_name="Hopper"),
            await register(client, first_name="Alan", last_name="Turing"))


# -- conversations --------------------------------------------------------------------------

async def test_one_conversation_per_pair(client: Client, trio: tuple[Account, ...]):
    ada, grace, _ = trio
    created = await client.post(f"{API}/conversations", json={"user_id": grace.id},
                                headers=ada.headers)
    assert created.status == 201
    conversation = await created.json()
    assert conversation["other_user"]["id"] == grace.id
    assert conversation["other_user"]["first_name"] == "Grace"
    assert "email" not in conversation["other_user"]
    assert conversation["last_message"] is None and conversation["unread_count"] == 0
    again = await client.post(f"{API}/conversations", json={"user_id": grace.id},
                              headers=ada.headers)
    assert again.status == 200 and (await again.json())["id"] == conversation["id"]
    other_side = await client.post(f"{API}/conversations", json={"user_id": ada.id},
                                   headers=grace.headers)
    assert other_side.status == 200
    assert (await other_side.json())["other_user"]["id"] == ada.id
    assert (await other_side.json())["id"] == conversation["id"]


async def test_opening_a_conversation_refuses_bad_requests(
        client: Client, trio: tuple[Account, ...], db: Database):
    ada, grace, alan = trio
    path = f"{API}/conversations"
    assert (await client.post(path, json={"user_id": grace.id})).status == 401
    myself = await client.post(path, json={"user_id": ada.id}, headers=ada.headers)
    assert myself.status == 422
    assert list((await myself.json())["error"]["fields"]) == ["user_id"]
    for bad in ({}, {"user_id": "two"}, {"user_id": 0}, {"user_id": -3}):
        response = await client.post(path, json=bad, headers=ada.headers)
        assert response.status == 422, bad
    assert (await client.post(path, data=b"not json", headers=ada.headers)).status == 400
    unknown = await client.post(path, json={"user_id": alan.id + 1000}, headers=ada.headers)
    assert unknown.status == 404
    await db.execute("UPDATE users SET suspended_at = now() WHERE id = %(id)s", {"id": alan.id})
    suspended = await client.post(path, json={"user_id": alan.id}, headers=ada.headers)
    assert suspended.status == 404
    assert await db.fetch_value("SELECT count(*) FROM conversations") == 0


async def test_concurrent_opens_make_one_conversation(client: Client, trio: tuple[Account, ...],
                                                      db: Database):
    ada, grace, alan = trio
    for first, second in ((ada, grace), (grace, alan)):
        responses = await asyncio.gather(
            client.post(f"{API}/conversations", json={"user_id": second.id},
                        headers=first.headers),
            client.post(f"{API}/conversations", json={"user_id": first.id},
                        headers=second.headers))
        assert sorted(response.status for response in responses) == [200, 201]
        ids = {(await response.json())["id"] for response in responses}
        assert len(ids) == 1
    assert await db.fetch_value("SELECT count(*) FROM conversations") == 2


async def test_a_block_either_way_forbids_opening_and_sending(
        client: Client, trio: tuple[Account, ...], db: Database):
    ada, grace, alan = trio
    conversation = await open_conversation(client, ada, grace)
    await send(client, ada, conversation["id"], "before the block")
    await block(db, grace, ada)
    await block(db, ada, alan)
    for sender, receiver in ((ada, grace), (grace, ada), (ada, alan), (alan, ada)):
        opened = await client.post(f"{API}/conversations", json={"user_id": receiver.id},
                                   headers=sender.headers)
        assert opened.status == 403, (sender.id, receiver.id)
        assert (await opened.json())["error"]["code"] == "forbidden"
    for sender in (ada, grace):
        sent = await client.post(f"{API}/conversations/{conversation['id']}/messages",
                                 json={"body": "hi"}, headers=sender.headers)
        assert sent.status == 403
    history = await get_json(client, grace, f"/conversations/{conversation['id']}/messages")
    assert [item["body"] for item in history["items"]] == ["before the block"]
    assert await db.fetch_value("SELECT count(*) FROM messages") == 1
    assert await db.fetch_value("SELECT count(*) FROM conversations") == 1


async def test_list_is_newest_activity_first_with_last_message_and_unread_count(
        client: Client, user: Account, db: Database):
    others = [await register(client, first_name=name) for name in ("Bea", "Cy", "Di")]
    conversations = [await open_conversation(client, user, other) for other in others]
    for other, conversation in zip(others, conversations, strict=True):
        await send(client, other, conversation["id"], f"from {other.id}")
    await send(client, others[0], conversations[0]["id"], "again")
    await send(client, user, conversations[1]["id"], "my reply")
    listed = await all_pages(client, user, "/conversations", limit=1)
    assert [item["id"] for item in listed] == [conversations[1]["id"], conversations[0]["id"],
                                               conversations[2]["id"]]
    by_id = {item["id"]: item for item in listed}
    first = by_id[conversations[0]["id"]]
    assert first["other_user"]["id"] == others[0].id
    assert first["unread_count"] == 2
    assert first["last_message"]["body"] == "again"
    assert first["last_message"]["sender_id"] == others[0].id
    assert first["last_message"]["receiver_id"] == user.id
    assert by_id[conversations[1]["id"]]["unread_count"] == 1
    assert by_id[conversations[1]["id"]]["last_message"]["body"] == "my reply"
    assert [item["updated_at"] for item in listed] == sorted(
        (item["updated_at"] for item in listed), reverse=True)
    stored = await db.fetch_all("SELECT id, last_message_id FROM conversations ORDER BY id")
    newest = await db.fetch_all("SELECT conversation_id, max(id) AS id FROM messages "
                                "GROUP BY conversation_id ORDER BY conversation_id")
    assert [row["last_message_id"] for row in stored] == [row["id"] for row in newest]
    theirs = await get_json(client, others[2], "/conversations")
    assert [item["other_user"]["id"] for item in theirs["items"]] == [user.id]
    assert theirs["items"][0]["unread_count"] == 0
    bad = await client.get(f"{API}/conversations", params={"cursor": "!!"},
                           headers=user.headers)
    assert bad.status == 400
    assert (await client.get(f"{API}/conversations",
                             params={"limit": "101"}, headers=user.headers)).status == 400
    assert (await client.get(f"{API}/conversations")).status == 401


# -- messages -------------------------------------------------------------------------------

async def test_messages_are_listed_newest_first_in_keyset_pages(
        client: Client, trio: tuple[Account, ...]):
    ada, grace, _ = trio
    conversation = await open_conversation(client, ada, grace)
    sent = [await send(client, (ada, grace)[n % 2], conversation["id"], f"message {n}")
            for n in range(7)]
    assert sent[0]["sender_id"] == ada.id and sent[0]["receiver_id"] == grace.id
    assert sent[0]["is_read"] is False and sent[0]["conversation_id"] == conversation["id"]
    path = f"/conversations/{conversation['id']}/messages"
    listed = await all_pages(client, grace, path, limit=3)
    assert listed == list(reversed(sent))
    assert await all_pages(client, ada, path, limit=100) == listed
    empty = await open_conversation(client, ada, trio[2])
    page = await get_json(client, ada, f"/conversations/{empty['id']}/messages")
    assert page == {"items": [], "next_cursor": None}
    bad = await client.get(f"{API}{path}", params={"cursor": "eyJ4IjoxfQ"},
                           headers=ada.headers)
    assert bad.status == 400
    assert (await client.get(f"{API}{path}")).status == 401


async def test_message_bodies_are_validated(client: Client, trio: tuple[Account, ...],
                                            db: Database):
    ada, grace, _ = trio
    conversation = await open_conversation(client, ada, grace)
    path = f"{API}/conversations/{conversation['id']}/messages"
    for bad in ({}, {"body": ""}, {"body": "   "}, {"body": "x" * 5001}, {"body": 7}):
        response = await client.post(path, json=bad, headers=ada.headers)
        assert response.status == 422, bad
        assert list((await response.json())["error"]["fields"]) == ["body"]
    assert (await client.post(path, data=b"[1]", headers=ada.headers)).status == 400
    assert (await client.post(path, json={"body": "hi"})).status == 401
    longest = await send(client, ada, conversation["id"], "é" * 5000)
    assert longest["body"] == "é" * 5000
    assert await db.fetch_value("SELECT count(*) FROM messages") == 1


async def test_reading_marks_messages_and_the_notification_read(
        client: Client, trio: tuple[Account, ...], db: Database):
    ada, grace, _ = trio
    conversation = await open_conversation(client, ada, grace)
    cid = conversation["id"]
    await send(client, grace, cid, "from grace")
    for text in ("one", "two", "x" * 300):
        await send(client, ada, cid, text)
    notifications = await get_json(client, grace, "/notifications")
    [notification] = notifications["items"]  # later messages refreshed the one notification
    assert notification["type"] == "message" and notification["related_id"] == cid
    assert notification["actor"]["id"] == ada.id and notification["is_read"] is False
    assert notification["data"] == {"conversation_id": cid, "preview": "x" * 100,
                                    "path": f"/conversations/{cid}"}
    assert await unread_messages(client, grace) == 3
    assert (await get_json(client, grace, "/notifications/unread_count"))["count"] == 1
    await read(client, grace, cid)
    assert await unread_messages(client, grace) == 0 == await database_unread(db, grace.id)
    assert (await get_json(client, grace, "/notifications/unread_count"))["count"] == 0
    assert await unread_messages(client, ada) == 1  # reading touches only the reader's side
    listed = await get_json(client, grace, f"/conversations/{cid}/messages")
    assert [item["is_read"] for item in listed["items"]] == [True, True, True, False]
    await read(client, grace, cid)  # nothing left to read is still fine
    await send(client, ada, cid, "after reading")
    again = await get_json(client, grace, "/notifications", unread_only="true")
    assert [item["id"] for item in again["items"]] == [notification["id"]]
    assert again["items"][0]["data"]["preview"] == "after reading"


async def test_only_the_participants_can_reach_a_conversation(
        client: Client, trio: tuple[Account, ...], db: Database):
    ada, grace, alan = trio
    theirs = await open_conversation(client, ada, grace)
    await send(client, ada, theirs["id"], "private")
    mine = await open_conversation(client, alan, grace)
    unknown = max(theirs["id"], mine["id"]) + 100

    async def statuses(account: Account, cid: int | str) -> list[int]:
        base = f"{API}/conversations/{cid}"
        return [(await client.get(f"{base}/messages", headers=account.headers)).status,
                (await client.post(f"{base}/messages", json={"body": "x"},
                                   headers=account.headers)).status,
                (await client.post(f"{base}/read", headers=account.headers)).status]

    assert await statuses(alan, theirs["id"]) == [404, 404, 404]  # an outsider
    assert await statuses(ada, mine["id"]) == [404, 404, 404]  # a participant guessing ids
    assert await statuses(ada, unknown) == [404, 404, 404]
    assert await statuses(ada, "abc") == [404, 404, 404]
    assert await statuses(ada, 0) == [404, 404, 404]
    base = f"{API}/conversations/{theirs['id']}"
    assert (await client.get(f"{base}/messages")).status == 401
    assert (await client.post(f"{base}/messages", json={"body": "x"})).status == 401
    assert (await client.post(f"{base}/read")).status == 401
    assert (await client.get(f"{API}/messages/unread_count")).status == 401
    assert await db.fetch_value("SELECT count(*) FROM messages") == 1
    assert await database_unread(db, grace.id) == 1
    listed = await get_json(client, alan, "/conversations")
    assert [item["id"] for item in listed["items"]] == [mine["id"]]


# -- unread counts --------------------------------------------------------------------------

async def _delete_test_keys(settings: Settings) -> None:
    client = connect(settings.redis_url)
    try:
        keys = [key async for key in client.scan_iter(f"{settings.redis_prefix}*", count=1000)]
        assert keys, "the counts should have been cached before the flush"
        await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.mark.parametrize("redis_state", ["up", "down", "flushed"])
async def test_unread_counts_equal_the_database_after_random_sends_and_reads(
        redis_state: str, make_client: ClientFactory, db: Database, settings: Settings):
    with contextlib.ExitStack() as stack:
        if redis_state == "down":
            server = stack.enter_context(ThrowawayRedis())
            client = await make_client(redis_url=server.url)
            midway: Callable[[], Awaitable[None]] | None = _as_async(server.stop)
        else:
            client = await make_client()
            midway = (lambda: _delete_test_keys(settings)) if redis_state == "flushed" else None
        await _check_random_sequence(client, db, midway)


def _as_async(action: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        action()
    return run


async def _check_random_sequence(client: Client, db: Database,
                                 midway: Callable[[], Awaitable[None]] | None) -> None:
    """40 random sends and reads among three users; after each, every count is exact."""
    accounts = [await register(client, first_name=name) for name in ("Ana", "Ben", "Cat")]
    conversations = {}
    for n, account in enumerate(accounts):
        for other in accounts[n + 1:]:
            opened = await open_conversation(client, account, other)
            conversations[frozenset((account.id, other.id))] = opened["id"]
    rng = random.Random(20261128)
    for step in range(40):
        if step == 20 and midway is not None:
            await midway()
        actor, other = rng.sample(accounts, 2)
        cid = conversations[frozenset((actor.id, other.id))]
        if rng.random() < 0.7:
            await send(client, actor, cid, f"step {step}")
        else:
            await read(client, actor, cid)
        for account in accounts:
            expected = await database_unread(db, account.id)
            assert await unread_messages(client, account) == expected, step
        me = await get_json(client, actor, "/me")
        assert me["unread_messages"] == await database_unread(db, actor.id)
    for account in accounts:
        listed = await get_json(client, account, "/conversations")
        for item in listed["items"]:
            assert item["unread_count"] == await db.fetch_value(
                "SELECT count(*) FROM messages WHERE receiver_id = %(user)s "
                "AND conversation_id = %(cid)s AND NOT is_read",
                {"user": account.id, "cid": item["id"]})


# -- notifications: email reminder and push ------------------------------------------------

async def test_one_reminder_email_per_unread_streak(make_client: ClientFactory, db: Database,
                                                    smtp_sink: SmtpSink):
    client = await make_client(message_email_delay=0.5)
    ada = await register(client, first_name="Ada", last_name="Lovelace")
    grace = await register(client, first_name="Grace", last_name="Hopper")
    cid = (await open_conversation(client, ada, grace))["id"]
    for text in ("one", "two", "three"):
        await send(client, ada, cid, text)
    await wait_until(lambda: _has_message_emails(smtp_sink, 1))
    [email] = message_emails(smtp_sink)
    assert email["To"] == grace.email
    assert "Ada Lovelace" in email.get_body(("plain",)).get_content()
    assert f"http://hireme.test/conversations/{cid}" in email.get_body(("plain",)).get_content()
    # Its result is recorded a moment after the SMTP server took it (tasks/recorder.py).
    await wait_until(lambda: _statuses_are(db, ["sent"]))
    await read(client, grace, cid)
    await send(client, ada, cid, "a new streak")
    await wait_until(lambda: _has_message_emails(smtp_sink, 2))
    await wait_until(lambda: _statuses_are(db, ["sent", "sent"]))
    assert len(message_emails(smtp_sink)) == 2


async def _statuses_are(db: Database, statuses: list[str]) -> bool:
    return [row["status"] for row in await reminder_rows(db)] == statuses


async def _has_message_emails(sink: SmtpSink, count: int) -> bool:
    return len(message_emails(sink)) >= count


async def _settled(db: Database) -> bool:
    """Nothing due is waiting or being delivered."""
    busy = await db.fetch_value("SELECT count(*) FROM outbox WHERE status = 'sending' "
                                "OR (status = 'pending' AND next_attempt_at <= now())")
    return int(busy) == 0


async def test_no_reminder_when_the_conversation_is_read_in_time(
        client: Client, trio: tuple[Account, ...], db: Database, smtp_sink: SmtpSink):
    ada, grace, _ = trio  # the default MESSAGE_EMAIL_DELAY: 10 minutes
    cid = (await open_conversation(client, ada, grace))["id"]
    await send(client, ada, cid, "are you there?")
    [row] = await reminder_rows(db)
    assert row["status"] == "pending"
    await read(client, grace, cid)
    await db.execute("UPDATE outbox SET next_attempt_at = now() "
                     "WHERE payload->>'email_type' = 'message'")  # the delay has passed
    await smtp_sink.wait_for(3)  # the welcome emails: the delivery machinery is running
    await wait_until(lambda: _settled(db))
    [row] = await reminder_rows(db)
    assert (row["status"], row["last_error"]) == ("skipped", "read in app")
    assert message_emails(smtp_sink) == []


async def test_a_read_streak_is_not_reminded_when_a_new_streak_begins(
        client: Client, trio: tuple[Account, ...], db: Database, smtp_sink: SmtpSink):
    ada, grace, _ = trio
    cid = (await open_conversation(client, ada, grace))["id"]
    first = await send(client, ada, cid, "first streak")
    await read(client, grace, cid)
    second = await send(client, ada, cid, "second streak")  # the notification is unread again
    await send(client, ada, cid, "same streak")
    await db.execute("UPDATE outbox SET next_attempt_at = now() "
                     "WHERE payload->>'email_type' = 'message'")
    await wait_until(lambda: _has_message_emails(smtp_sink, 1))
    await wait_until(lambda: _settled(db))
    rows = await reminder_rows(db)
    assert [(row["idempotency_key"], row["status"]) for row in rows] == [
        (f"message-reminder:{cid}:{grace.id}:{first['id']}", "skipped"),
        (f"message-reminder:{cid}:{grace.id}:{second['id']}", "sent")]
    assert len(message_emails(smtp_sink)) == 1


async def test_every_message_is_pushed_with_the_conversations_topic(
        make_client: ClientFactory, push_service: PushService, db: Database):
    client = await make_client(push_endpoint_allowlist=(push_service.origin,),
                               vapid_private_key=new_vapid_key())
    ada = await register(client, first_name="Ada", last_name="Lovelace")
    grace = await register(client, first_name="Grace", last_name="Hopper")
    await subscribe(client, push_service, grace)
    cid = (await open_conversation(client, ada, grace))["id"]
    await send(client, ada, cid, "first")
    [first] = await push_service.wait_for(1)
    await send(client, ada, cid, "second")
    pushes = await push_service.wait_for(2)
    assert [push.payload["body"] for push in pushes] == ["Ada Lovelace: first",
                                                         "Ada Lovelace: second"]
    assert {push.topic for push in pushes} == {f"conversation-{cid}"}  # a newer one replaces
    assert {push.payload["type"] for push in pushes} == {"message"}
    assert {push.payload["url"] for push in pushes} == {f"http://hireme.test/conversations/{cid}"}
    assert pushes[0].payload["notification_id"] == pushes[1].payload["notification_id"]
    assert first.ttl > 0
    keys = await db.fetch_all("SELECT idempotency_key FROM outbox WHERE kind = 'push'")
    assert len({row["idempotency_key"] for row in keys}) == 2


# -- cost: statements per list, and index use on a large data set ---------------------------

async def test_lists_cost_the_same_statements_whatever_the_page_size(
        client: Client, user: Account, db: Database, make_client: ClientFactory,
        statement_counter: StatementCounter):
    others = await db.fetch_all_write(
        "INSERT INTO users (email, password_hash, first_name, last_name, role) "
        "SELECT 'other' || g || '@example.com', 'x', 'Other', 'User' || g, 'job_seeker' "
        "FROM generate_series(1, 50) AS g RETURNING id")
    cid = 0
    for other in others:
        response = await client.post(f"{API}/conversations", json={"user_id": other["id"]},
                                     headers=user.headers)
        cid = (await response.json())["id"]
        await send(client, user, cid, f"hello {other['id']}")
    for n in range(50):
        await send(client, user, cid, f"more {n}")
    # The measured app runs only these requests; its sweeper waits an hour after start-up.
    measured = await make_client(database_url=await statement_counter.start(),
                                 delivery_sweep_seconds=3600)

    async def statements(path: str, limit: int) -> list[str]:
        await get_json(measured, user, path, limit="1")  # warm: the token is cached
        statement_counter.queries.clear()
        page = await get_json(measured, user, path, limit=str(limit))
        assert len(page["items"]) == limit
        return [q for q in statement_counter.queries if "outbox" not in q]

    try:
        for path in ("/conversations", f"/conversations/{cid}/messages"):
            small, large = await statements(path, 1), await statements(path, 50)
            assert len(small) == len(large), (path, small, large)
        assert len(await statements("/conversations", 50)) == 1  # profiles come with the page
        assert len(await statements(f"/conversations/{cid}/messages", 50)) == 1
    finally:
        await measured.close()  # before the proxy under it stops


async def test_a_message_costs_six_statements_with_its_email_and_push(
        client: Client, user: Account, db: Database, make_client: ClientFactory,
        statement_counter: StatementCounter):
    other = await register(client)
    opened = await client.post(f"{API}/conversations", json={"user_id": other.id},
                               headers=user.headers)
    cid = (await opened.json())["id"]
    measured = await make_client(database_url=await statement_counter.start(),
                                 delivery_sweep_seconds=3600)
    try:
        await measured.get(f"{API}/me", headers=user.headers)  # warm: the token is cached
        statement_counter.queries.clear()
        sent = await send(measured, user, cid)
        # BEGIN with the conversation's lock, the message, the notification with its email
        # and push deliveries, the event ids, the events, COMMIT.
        statements = list(statement_counter.queries)
    finally:
        await measured.close()  # before the proxy under it stops
    assert len(statements) == 6, statements
    email = await db.fetch_one(
        "SELECT payload, idempotency_key FROM outbox WHERE kind = 'email' "
        "AND payload->>'email_type' = 'message' AND (payload->>'user_id')::bigint = %(id)s",
        {"id": other.id})
    assert email is not None
    assert email["payload"]["unread_message_id"] == sent["id"]
    assert email["idempotency_key"] == f"message-reminder:{cid}:{other.id}:{sent['id']}"


SEED_SQL = """
    SET session_replication_role = replica;  -- seeding only: skip the foreign-key triggers
    INSERT INTO users (email, password_hash, first_name, last_name, role)
    SELECT 'seed' || g || '@example.com', 'x', 'Seed', 'User' || g, 'job_seeker'
    FROM generate_series(1, 10000) AS g;
    -- 25,000 pairs: every user 1..5000 talks to five others.
    INSERT INTO conversations (user_low_id, user_high_id, created_at, updated_at)
    SELECT i, i + k * 997, now() - interval '90 days', now() - (i * 5 + k) * interval '1 minute'
    FROM generate_series(1, 5000) AS i, generate_series(1, 5) AS k;
    -- 10 messages each (250,000), alternating senders; the newest two still unread.
    INSERT INTO messages (conversation_id, sender_id, receiver_id, body, is_read, created_at)
    SELECT c.id,
           CASE WHEN n % 2 = 0 THEN c.user_low_id ELSE c.user_high_id END,
           CASE WHEN n % 2 = 0 THEN c.user_high_id ELSE c.user_low_id END,
           'message ' || n, n <= 8, c.updated_at - (10 - n) * interval '1 second'
    FROM conversations c, generate_series(1, 10) AS n;
    -- One long conversation (20,000 messages), whose pages must not sort the whole of it.
    INSERT INTO conversations (user_low_id, user_high_id) VALUES (9999, 10000);
    INSERT INTO messages (conversation_id, sender_id, receiver_id, body, is_read, created_at)
    SELECT c.id, 9999 + n % 2, 10000 - n % 2, 'long ' || n, true,
           now() - (20000 - n) * interval '1 second'
    FROM conversations c, generate_series(1, 20000) AS n
    WHERE c.user_low_id = 9999 AND c.user_high_id = 10000;
    -- 200,000 follows: every user follows twenty others, among them whom they talk to.
    INSERT INTO follows (follower_id, followed_id)
    SELECT i, (i + k * 997 - 1) % 10000 + 1
    FROM generate_series(1, 10000) AS i, generate_series(1, 20) AS k;
    UPDATE conversations c SET last_message_id = m.id
    FROM (SELECT conversation_id, max(id) AS id FROM messages GROUP BY conversation_id) AS m
    WHERE m.conversation_id = c.id;
    SET session_replication_role = DEFAULT;
"""


@pytest.fixture(scope="session")
def seeded_database_url(postgres_admin_url: str) -> Iterator[str]:
    """A separate database with 270,000 messages in 25,001 conversations, built once."""
    name = f"hireme_seeded_{uuid.uuid4().hex[:12]}"
    url = create_database(postgres_admin_url, name)
    try:
        asyncio.run(apply_migrations(url))
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute(SEED_SQL)
        conn.close()
        with contextlib.closing(psycopg2.connect(url)) as conn:
            conn.autocommit = True
            conn.cursor().execute("VACUUM ANALYZE")
        yield url
    finally:
        drop_database(postgres_admin_url, name)


def test_message_queries_use_indexes_on_a_large_data_set(seeded_database_url: str):
    url = seeded_database_url
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM messages")
        assert cur.fetchone()[0] >= 200_000
        cur.execute("SELECT count(*) FROM conversations")
        assert cur.fetchone()[0] >= 20_000
        cur.execute("SELECT updated_at, id FROM conversations WHERE user_low_id = 2500 "
                    "ORDER BY updated_at DESC, id DESC LIMIT 1")
        cursor_row = cur.fetchone()
        cur.execute("SELECT id FROM conversations WHERE user_low_id = 2500 LIMIT 1")
        conversation_id = cur.fetchone()[0]
        cur.execute("SELECT created_at, id FROM messages WHERE conversation_id = %s "
                    "ORDER BY created_at DESC, id DESC OFFSET 4 LIMIT 1", (conversation_id,))
        message_row = cur.fetchone()
        cur.execute("SELECT id FROM conversations WHERE user_low_id = 9999")
        long_conversation_id = cur.fetchone()[0]
    conn.close()
    user = {"user_id": 2500}
    first_page = {"before_updated_at": None, "before_id": None, "limit": 21}
    later_page = {"before_updated_at": cursor_row[0], "before_id": cursor_row[1], "limit": 21}
    in_conversation = {"conversation_id": conversation_id, "user_id": 2500, "limit": 21}
    cases = [
        (message_queries.LIST_CONVERSATIONS, user | first_page,
         {"conversations_low_updated_idx", "conversations_high_updated_idx", "messages_pkey",
          "messages_unread_idx", "users_pkey"}),
        (message_queries.LIST_CONVERSATIONS, user | later_page,
         {"conversations_low_updated_idx", "conversations_high_updated_idx"}),
        (message_queries.LIST_MESSAGES,
         in_conversation | {"before_created_at": None, "before_id": None},
         {"conversations_pkey", "messages_conversation_created_idx"}),
        (message_queries.LIST_MESSAGES,
         in_conversation | {"before_created_at": message_row[0], "before_id": message_row[1]},
         {"conversations_pkey", "messages_conversation_created_idx"}),
        (counters.SELECT_UNREAD_COUNTS, user, {"messages_unread_idx"}),
        (message_queries.MARK_CONVERSATION_READ,
         {"conversation_id": conversation_id, "user_id": 2500, "dedup_key": "message:1"},
         {"messages_unread_idx"}),
        (message_queries.INSERT_MESSAGE,
         {"conversation_id": conversation_id, "sender_id": 1, "receiver_id": 2500,
          "body": "hi"},
         {"messages_unread_idx", "conversations_pkey"}),
    ]
    # Prepared statements may run on a generic plan: it must use the same indexes.
    prepared = {message_queries.LIST_CONVERSATIONS, message_queries.LIST_MESSAGES,
                message_queries.INSERT_MESSAGE}
    plans = [(case, False) for case in cases] + [(case, True) for case in cases
                                                 if case[0] in prepared]
    for (query, params, expected_indexes), generic in plans:
        nodes = plan_nodes(url, query, params, generic=generic)
        scanned = {(node["Node Type"], node.get("Relation Name")) for node in nodes}
        assert ("Seq Scan", "messages") not in scanned, (query, scanned)
        assert ("Seq Scan", "conversations") not in scanned, (query, scanned)
        used = {node["Index Name"] for node in nodes if "Index Name" in node}
        assert expected_indexes <= used, (query, used)
    # Whether the caller follows each other user is one primary-key lookup per row, never a
    # read of the caller's whole follow list.
    for generic in (False, True):
        nodes = plan_nodes(url, message_queries.LIST_CONVERSATIONS, user | first_page,
                           generic=generic)
        follows = [node for node in nodes if node.get("Relation Name") == "follows"]
        assert follows and all(node.get("Index Name") == "follows_pkey"
                               and "followed_id" in node["Index Cond"] for node in follows), [
            (node.get("Index Name"), node.get("Index Cond")) for node in follows]
    # A page of a long conversation reads its rows in index order and stops at the limit.
    for generic in (False, True):
        nodes = plan_nodes(url, message_queries.LIST_MESSAGES, {
            "conversation_id": long_conversation_id, "user_id": 9999, "limit": 21,
            "before_created_at": None, "before_id": None}, generic=generic)
        assert ("Index Scan", "messages_conversation_created_idx") in {
            (node["Node Type"], node.get("Index Name")) for node in nodes}
        assert all(node["Plan Rows"] <= 21 for node in nodes if node["Node Type"] == "Sort")
