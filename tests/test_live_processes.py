"""Live events across real ``run.py serve`` processes: another server's writes, a resume while
events keep coming, a Redis that stops mid-stream, and an admin's suspension.

Every server here shares the test's database and Redis key prefix (so they stand for the
workers of one deployment); a client talks to each over HTTP as a browser would. Each test runs
under one ``asyncio.timeout``, so a stream that never ends fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sql.db import Database
from tests.conftest import API, PASSWORD, Account, register
from tests.processes import Server, start_server, stop_server, wait_until_healthy
from tests.servers import ThrowawayRedis
from tests.sse import Event, SseReader, stream

SERVER_VARIABLES = {
    "LOG_LEVEL": "WARNING",
    # Many registrations and messages from one address and token in a few seconds.
    "AUTH_RATE_LIMIT": "1000/60",
    "WRITE_RATE_LIMIT": "10000/60",
}
# What the receiver's stream carries for each message, in this order.
PER_MESSAGE = ["notification", "message", "unread"]
LIVE_SECONDS = 1.0  # the promise: an event committed anywhere reaches a stream within this
TEST_SECONDS = 60  # a bound on each test, servers' start included
RECOVERY_SECONDS = 3.0  # Redis stopped or back: streams catch up within this
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

Serve = Callable[..., Awaitable[list[Server]]]


@pytest.fixture
async def serve(tmp_path: Path, clean_database: str, redis_url: str,
                redis_prefix: str) -> AsyncIterator[Serve]:
    """Start ``run.py serve`` processes (name → workers) on this test's database and Redis
    prefix, together; each is stopped afterwards and must exit cleanly."""
    started: list[Server] = []

    async def start(redis: str = redis_url, **workers: int) -> list[Server]:
        servers = [start_server(tmp_path, name, DATABASE_URL=clean_database, REDIS_URL=redis,
                                REDIS_PREFIX=redis_prefix, WEB_CONCURRENCY=str(count),
                                **SERVER_VARIABLES)
                   for name, count in workers.items()]
        started.extend(servers)
        await asyncio.gather(*(wait_until_healthy(server, workers=count)
                               for server, count in zip(servers, workers.values(), strict=True)))
        return servers

    yield start
    codes = [await stop_server(server) for server in started]
    for server, code in zip(started, codes, strict=True):
        assert code == 0, server.log_text()


@pytest.fixture
def own_redis() -> Iterator[ThrowawayRedis]:
    """A Redis of this test's own, which it may stop (never the machine's)."""
    with ThrowawayRedis() as server:
        yield server


@asynccontextmanager
async def session(server: Server, **options: Any) -> AsyncIterator[aiohttp.ClientSession]:
    """A client of one server; no timeout of its own (each test has one)."""
    async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}",
                                     timeout=aiohttp.ClientTimeout(total=None),
                                     **options) as client:
        yield client


async def converse(client: aiohttp.ClientSession, sender: Account, receiver: Account) -> int:
    answer = await client.post(f"{API}/conversations", headers=sender.headers,
                               json={"user_id": receiver.id})
    assert answer.status in (200, 201), await answer.text()
    return int((await answer.json())["id"])


async def send(client: aiohttp.ClientSession, sender: Account, conversation_id: int,
               body: str) -> dict[str, Any]:
    answer = await client.post(f"{API}/conversations/{conversation_id}/messages",
                               headers=sender.headers, json={"body": body})
    assert answer.status == 201, await answer.text()
    sent: dict[str, Any] = await answer.json()
    return sent


def ids(events: list[Event]) -> list[int]:
    return [int(event.id or 0) for event in events]


def assert_once_each_in_order(events: list[Event], after: int, bodies: list[str]) -> None:
    """Exactly the events of messages ``bodies``, each once, numbered on from ``after``."""
    assert ids(events) == list(range(after + 1, after + 1 + len(events)))
    assert [event.kind for event in events] == PER_MESSAGE * len(bodies)
    assert [event.json["body"] for event in events if event.kind == "message"] == bodies


async def quiet(reader: SseReader, seconds: float = 0.3) -> None:
    """Nothing more comes on ``reader`` for ``seconds``."""
    with pytest.raises(TimeoutError):
        extra = await reader.next(timeout=seconds)
        raise AssertionError(f"an unexpected event: {extra}")


async def test_a_message_sent_through_one_server_reaches_streams_on_another_within_a_second(
        serve: Serve) -> None:
    async with asyncio.timeout(TEST_SECONDS):
        # A runs two workers (the streams land on either); B's process is neither of them.
        a, b = await serve(a=2, b=1)
        async with session(a) as on_a, session(b) as on_b:
            reader, sender = await register(on_a), await register(on_b)  # type: ignore[arg-type]
            conversation_id = await converse(on_b, sender, reader)
            async with stream(on_a, reader.headers) as first, \
                    stream(on_a, reader.headers) as second, \
                    stream(on_a, reader.headers) as third, \
                    stream(on_a, sender.headers) as echo:
                receivers = [first, second, third]
                for events in (*receivers, echo):
                    assert (await events.next()).kind == "unread"
                for n in range(5):
                    via = on_b if n % 2 == 0 else on_a  # B's process, or either of A's
                    sent = await send(via, sender, conversation_id, f"hello {n}")
                    async with asyncio.timeout(LIVE_SECONDS):
                        got = await asyncio.gather(*(events.take(3) for events in receivers))
                        echoed = await echo.next()
                    for events in got:
                        assert [event.kind for event in events] == PER_MESSAGE
                        assert events[1].json == sent
                    assert ids(got[0]) == ids(got[1]) == ids(got[2])
                    assert echoed.kind == "message" and echoed.json == sent


async def test_a_client_resuming_after_50_messages_gets_each_event_once_in_order_while_more_come(
        serve: Serve) -> None:
    missed, during = 50, 20
    async with asyncio.timeout(TEST_SECONDS):
        a, b = await serve(a=1, b=1)
        async with session(a) as on_a, session(b) as on_b:
            reader, sender = await register(on_a), await register(on_b)  # type: ignore[arg-type]
            conversation_id = await converse(on_b, sender, reader)
            async with stream(on_a, reader.headers) as events:
                last_seen = int((await events.next()).id or 0)
            # Disconnected: 50 messages, through both servers.
            for n in range(missed):
                await send(on_b if n % 2 else on_a, sender, conversation_id, f"m{n}")

            sent_more: list[int] = []

            async def send_more(first_sent: asyncio.Event) -> None:
                for n in range(missed, missed + during):
                    await send(on_b if n % 2 else on_a, sender, conversation_id, f"m{n}")
                    sent_more.append(n)
                    first_sent.set()

            first_sent = asyncio.Event()
            sending = asyncio.create_task(send_more(first_sent))
            try:
                await first_sent.wait()  # the replay starts with live events on the way
                async with stream(on_a, {**reader.headers,
                                         "Last-Event-ID": str(last_seen)}) as events:
                    # The stream is open (its headers come before the replay): the rest of
                    # the messages are sent while it replays and goes live.
                    sent_before_replay = len(sent_more)
                    got = await events.take(len(PER_MESSAGE) * (missed + during), timeout=20)
                    await sending
                    await quiet(events)
            finally:
                sending.cancel()
    assert not sending.cancelled()
    assert sent_before_replay < during
    assert_once_each_in_order(got, last_seen, [f"m{n}" for n in range(missed + during)])


async def test_a_stream_loses_nothing_while_redis_is_stopped_and_after_it_is_back(
        serve: Serve, own_redis: ThrowawayRedis) -> None:
    async with asyncio.timeout(TEST_SECONDS):
        # The stream on A; the messages through B, whose events reach A only by Redis or
        # by A's poll of PostgreSQL.
        a, b = await serve(redis=own_redis.url, a=1, b=1)
        async with session(a) as on_a, session(b) as on_b:
            reader, sender = await register(on_a), await register(on_b)  # type: ignore[arg-type]
            conversation_id = await converse(on_b, sender, reader)
            bodies = [f"m{n}" for n in range(9)]
            async with stream(on_a, reader.headers) as events:
                start = int((await events.next()).id or 0)
                got: list[Event] = []

                async def send_and_receive(sent: list[str]) -> None:
                    for body in sent:
                        await send(on_b, sender, conversation_id, body)
                    got.extend(await events.take(len(PER_MESSAGE) * len(sent),
                                                 timeout=RECOVERY_SECONDS))

                await send_and_receive(bodies[:3])
                await asyncio.to_thread(own_redis.stop)
                await send_and_receive(bodies[3:6])
                await asyncio.to_thread(own_redis.start)
                await send_and_receive(bodies[6:])
                await quiet(events)
    assert_once_each_in_order(got, start, bodies)



async def test_a_message_sent_while_redis_stalls_reaches_a_stream_on_another_server_soon_after(
        serve: Serve, own_redis: ThrowawayRedis) -> None:
    async with asyncio.timeout(TEST_SECONDS):
        a, b = await serve(redis=own_redis.url, a=1, b=1)
        async with session(a) as on_a, session(b) as on_b:
            reader, sender = await register(on_a), await register(on_b)  # type: ignore[arg-type]
            conversation_id = await converse(on_b, sender, reader)
            async with stream(on_a, reader.headers) as events:
                start = int((await events.next()).id or 0)
                # Too short for A's idle subscription to notice, so A does not poll; B cannot
                # publish the message's events (its Redis call times out, its breaker opens).
                own_redis.pause()
                try:
                    await send(on_b, sender, conversation_id, "during the stall")
                    await asyncio.sleep(0.5)
                finally:
                    own_redis.resume()
                got = await events.take(len(PER_MESSAGE), timeout=RECOVERY_SECONDS)
                await quiet(events)
    assert_once_each_in_order(got, start, ["during the stall"])

def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html[:500]
    return found.group(1)


async def sign_in_as_staff(client: aiohttp.ClientSession, account: Account) -> str:
    """Sign in through the admin console's form; the CSRF token of the pages that follow."""
    form = await client.get("/admin/login")
    assert form.status == 200
    answer = await client.post("/admin/login", data={
        "email": account.email, "password": PASSWORD, "csrf_token": csrf_of(await form.text())})
    assert answer.status == 200 and answer.url.path == "/admin/", await answer.text()
    return csrf_of(await answer.text())


async def test_an_admins_suspension_on_another_server_ends_the_users_streams_with_revoked(
        serve: Serve, db: Database) -> None:
    async with asyncio.timeout(TEST_SECONDS):
        a, b = await serve(a=1, b=1)
        # The console's cookies are for 127.0.0.1, which aiohttp's default jar refuses.
        async with session(a) as on_a, session(b, cookie_jar=aiohttp.CookieJar(unsafe=True)) \
                as on_b:
            suspended, bystander = await register(on_a), await register(on_a)  # type: ignore[arg-type]
            admin = await register(on_b)  # type: ignore[arg-type]
            await db.execute("UPDATE users SET is_admin = true WHERE id = %(id)s",
                             {"id": admin.id})
            csrf = await sign_in_as_staff(on_b, admin)
            ticket = await on_a.post(f"{API}/events/ticket", headers=suspended.headers)
            assert ticket.status == 201
            async with stream(on_a, suspended.headers) as by_token, \
                    stream(on_a, ticket=(await ticket.json())["ticket"]) as by_ticket, \
                    stream(on_a, bystander.headers) as other:
                for events in (by_token, by_ticket, other):
                    assert (await events.next()).kind == "unread"
                answer = await on_b.post(f"/admin/users/{suspended.id}/suspend",
                                         data={"csrf_token": csrf})
                assert answer.status == 200 and answer.url.path == f"/admin/users/{suspended.id}"
                for events in (by_token, by_ticket):
                    assert [event.kind for event in await events.end(timeout=2)] == ["revoked"]
                await quiet(other)
            # The client stops there: its token is refused on every server.
            for client in (on_a, on_b):
                again = await client.get(f"{API}/events", headers=suspended.headers)
                assert again.status == 401


async def open_streams(client: aiohttp.ClientSession) -> float:
    """The server's ``hireme_live_streams`` gauge, from /metrics (loopback may read it)."""
    text = await (await client.get("/metrics")).text()
    [value] = [line.split()[-1] for line in text.splitlines()
               if line.startswith("hireme_live_streams ")]
    return float(value)


async def test_a_stream_whose_client_went_away_ends_in_seconds_not_at_the_keepalive(
        serve: Serve) -> None:
    """aiohttp does not cancel the handler of a client that left, and the stream's next write
    (the keep-alive) is 20 s away: the maintenance loop sees the closed connection instead."""
    async with asyncio.timeout(TEST_SECONDS):
        (a,) = await serve(a=1)
        async with session(a) as on_a:
            user = await register(on_a)  # type: ignore[arg-type]
            async with stream(on_a, user.headers) as events:
                await events.next()
                assert await open_streams(on_a) == 1
            left = time.monotonic()
            while await open_streams(on_a) != 0:
                assert time.monotonic() - left < 5, "the gone client's stream is still open"
                await asyncio.sleep(0.1)
