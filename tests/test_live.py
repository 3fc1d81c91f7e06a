"""Live events in one process: what a stream carries, resuming, tickets, limits, revocation.

Across real processes, and with Redis stopped: tests/test_live_processes.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service import live
from sql.db import Database
from sql.events import prune_events
from tests.conftest import API, Account, register
from tests.sse import SseReader, stream

Client = TestClient[Any, Any]


async def converse(client: Client, sender: Account, receiver: Account) -> int:
    answer = await client.post(f"{API}/conversations", headers=sender.headers,
                               json={"user_id": receiver.id})
    assert answer.status in (200, 201)
    return int((await answer.json())["id"])


async def send(client: Client, sender: Account, conversation_id: int, body: str) -> dict[str, Any]:
    answer = await client.post(f"{API}/conversations/{conversation_id}/messages",
                               headers=sender.headers, json={"body": body})
    assert answer.status == 201
    result: dict[str, Any] = await answer.json()
    return result


async def test_a_new_stream_starts_with_retry_and_the_unread_counts(client: Client,
                                                                     user: Account) -> None:
    other = await register(client)
    await send(client, other, await converse(client, other, user), "hello")
    async with stream(client, user.headers) as events:
        assert events.response.headers["Content-Type"] == "text/event-stream"
        first = await events.next()
        assert events.retry == 3000
        assert first.kind == "unread"
        assert first.json == {"notifications": 1, "messages": 1}
        assert first.id is not None and int(first.id) > 0


async def test_messages_reach_both_and_match_what_the_lists_show(client: Client,
                                                                 user: Account) -> None:
    other = await register(client)
    conversation_id = await converse(client, other, user)
    async with stream(client, user.headers) as mine, stream(client, other.headers) as theirs:
        await mine.next(), await theirs.next()
        sent = await send(client, other, conversation_id, "hi there")
        got = await mine.take(3)
        assert [event.kind for event in got] == ["notification", "message", "unread"]
        ids = [int(event.id or 0) for event in got]
        assert ids == sorted(ids) and len(set(ids)) == 3
        assert got[1].json == sent
        listed = await (await client.get(f"{API}/notifications", headers=user.headers)).json()
        assert got[0].json == listed["items"][0]
        assert got[2].json == {"notifications": 1, "messages": 1}
        echoed = await theirs.next()
        assert echoed.kind == "message" and echoed.json == sent
        # Reads change the counts: an unread event follows.
        await client.post(f"{API}/conversations/{conversation_id}/read", headers=user.headers)
        read = await mine.next()
        assert read.kind == "unread" and read.json == {"notifications": 0, "messages": 0}


async def test_resuming_replays_in_order_then_goes_live(client: Client, user: Account) -> None:
    other = await register(client)
    conversation_id = await converse(client, other, user)
    async with stream(client, user.headers) as events:
        start = await events.next()
    for n in range(5):
        await send(client, other, conversation_id, f"m{n}")
    async with stream(client, {**user.headers, "Last-Event-ID": start.id or ""}) as events:
        missed = await events.take(15)
        assert [int(e.id or 0) for e in missed] == list(range(int(start.id or 0) + 1,
                                                                int(start.id or 0) + 16))
        assert [e.json["body"] for e in missed if e.kind == "message"] == [
            f"m{n}" for n in range(5)]
        await send(client, other, conversation_id, "live")
        assert [e.kind for e in await events.take(3)] == ["notification", "message", "unread"]


async def test_a_bad_or_future_last_event_id_starts_afresh_and_misses_nothing(
        client: Client, user: Account) -> None:
    other = await register(client)
    conversation_id = await converse(client, other, user)
    await send(client, other, conversation_id, "before")
    for bad in ("abc", "-1", "1" * 30):
        async with stream(client, {**user.headers, "Last-Event-ID": bad}) as events:
            assert (await events.next()).kind == "unread"
    async with stream(client, {**user.headers, "Last-Event-ID": "999999"}) as events:
        await send(client, other, conversation_id, "after")
        got = await events.take(3)
        assert [e.kind for e in got] == ["notification", "message", "unread"]
        assert got[1].json["body"] == "after"


async def test_a_ticket_opens_one_stream_once(client: Client, user: Account,
                                              db: Database) -> None:
    answer = await client.post(f"{API}/events/ticket", headers=user.headers)
    assert answer.status == 201
    body = await answer.json()
    assert body["expires_in"] == 60 and len(body["ticket"]) >= 40
    async with stream(client, ticket=body["ticket"]) as events:
        assert (await events.next()).kind == "unread"
    again = await client.get(f"{API}/events", params={"ticket": body["ticket"]})
    assert again.status == 401
    assert (await again.json())["error"]["code"] == "unauthorized"
    late = (await (await client.post(f"{API}/events/ticket", headers=user.headers)).json())
    await db.execute("UPDATE event_tickets SET expires_at = now() - interval '1 second'")
    assert (await client.get(f"{API}/events", params={"ticket": late["ticket"]})).status == 401
    assert (await client.get(f"{API}/events")).status == 401
    assert (await client.get(f"{API}/events", params={"ticket": "nope"})).status == 401


async def test_a_sixth_stream_closes_the_oldest(client: Client, user: Account) -> None:
    readers = []
    try:
        for _ in range(6):
            response = await client.get(f"{API}/events", headers=user.headers)
            reader = SseReader(response)
            await reader.next()
            readers.append(reader)
        assert await readers[0].end() == []
        for reader in readers[1:]:  # the other five stay open
            with pytest.raises(TimeoutError):
                await reader.next(timeout=0.3)
    finally:
        for reader in readers:
            reader.response.close()


async def test_logout_and_password_change_end_streams_with_revoked(client: Client,
                                                                    user: Account) -> None:
    login = await client.post(f"{API}/auth/login", json={
        "email": user.email, "password": "correct horse battery"})
    second = {"Authorization": f"Bearer {(await login.json())['token']}"}
    ticket = (await (await client.post(f"{API}/events/ticket", headers=second)).json())["ticket"]
    async with stream(client, user.headers) as kept, stream(client, second) as ended, \
            stream(client, ticket=ticket) as by_ticket:
        for reader in (kept, ended, by_ticket):
            await reader.next()
        answer = await client.post(f"{API}/auth/password", headers=user.headers, json={
            "current_password": "correct horse battery", "new_password": "another one here"})
        assert answer.status == 204
        assert [e.kind for e in await ended.end()] == ["revoked"]
        assert [e.kind for e in await by_ticket.end()] == ["revoked"]
        with pytest.raises(TimeoutError):
            await kept.next(timeout=0.3)
        assert (await client.post(f"{API}/auth/logout", headers=user.headers)).status == 204
        assert [e.kind for e in await kept.end()] == ["revoked"]


async def test_keepalive_comments_come_on_an_idle_stream(
        client: Client, user: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "KEEPALIVE_SECONDS", 0.5)
    async with stream(client, user.headers) as events:
        await events.next()
        with pytest.raises(TimeoutError):
            await events.next(timeout=2.5)
        assert events.comments.count("keepalive") >= 2


def figure(text: str, name: str) -> float:
    return next(float(line.split()[1]) for line in text.splitlines()
                if line.startswith(name + " "))


async def test_metrics_count_open_streams_and_events_sent(client: Client,
                                                         user: Account) -> None:
    before = figure(await (await client.get("/metrics")).text(), "hireme_live_events_sent_total")
    async with stream(client, user.headers) as events:
        await events.next()
        text = await (await client.get("/metrics")).text()
        assert figure(text, "hireme_live_streams") == 1
        assert figure(text, "hireme_live_events_sent_total") == before + 1


async def test_retention_keeps_a_day_or_the_newest_thousand(db: Database, user: Account) -> None:
    await db.execute("""
        INSERT INTO event_counters (user_id, last_id) VALUES (%(u)s, 1500);
        INSERT INTO events (user_id, id, kind, data, created_at)
        SELECT %(u)s, g, 'unread', '{}', now() - interval '2 days' FROM generate_series(1, 1500) g;
        UPDATE events SET created_at = now() WHERE id > 1400;
    """, {"u": user.id})
    assert await prune_events(db, limit=100) == 100
    assert await prune_events(db) == 400
    assert await prune_events(db) == 0
    remaining = await db.fetch_one("SELECT min(id) AS low, count(*) AS n FROM events")
    assert remaining == {"low": 501, "n": 1000}


async def test_shutdown_ends_the_streams(client: Client, user: Account) -> None:
    async with stream(client, user.headers) as events:
        await events.next()
        client.app[live.STREAMS].close_all()
        assert await events.end(timeout=2) == []
        await asyncio.sleep(0)
