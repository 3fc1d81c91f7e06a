"""This process's live streams: who is connected, and what reaches them.

One Redis subscription per process (cache/live.py) feeds ``Streams.receive``, which puts each
event, rendered once, into the inbox of every stream of its user here; each stream's own
handler (service/api/events.py) writes what it gets, in id order, and fills any gap from
PostgreSQL. One maintenance loop per process writes the keep-alives, renews the stream
limit's Redis entries, checks that the streams' tokens are still valid, and, while the
subscription is down, polls PostgreSQL for every user with a stream here in one query; it also
publishes the events this process committed while Redis could not take them, once it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from cache.client import Cache
from cache.live import Subscription, publish_backlog, renew_stream_slots
from service.api.answers import stored_notification_answer
from service.api.social_schemas import Message
from service.appkeys import SETTINGS, STORES
from service.responses import from_row
from sql.db import Database, DatabaseUnavailable
from sql.events import list_events_after_each, list_live_tokens
from tasks.background import cancel_until_done

log = logging.getLogger(__name__)

MAX_STREAMS_PER_USER = 5
KEEPALIVE_SECONDS = 20.0  # API.md promises at least every 25 s
POLL_SECONDS = 1.0  # while the subscription is down
# A stream whose client reads slower than events come is closed past this many waiting
# items; it reconnects with Last-Event-ID and loses nothing.
INBOX_LIMIT = 1000
KEEPALIVE = b": keepalive\n\n"
# Each stream claims and releases its slot with a Redis command of its own. When thousands of
# streams end at once (a keep-alive round finding their clients gone, a shutdown) those
# commands wait their turn here: all at once they overran the Redis pool (100 connections),
# whose "Too many connections" opened the cache's breaker for the whole process (issue 14's
# live benchmark: 2,500 streams ending per worker).
SLOT_COMMANDS_AT_ONCE = 32
REVOKED = b"event: revoked\ndata: {}\n\n"
Rendered = tuple[int, bytes]  # an event's id and its lines


@dataclass(frozen=True)
class Close:
    """An inbox item: end the stream, writing ``last`` first (the ``revoked`` event)."""

    last: bytes = b""


Item = list[Rendered] | bytes | Close


@dataclass
class LiveStats:
    open: int = 0
    sent: int = 0


@dataclass(eq=False, slots=True)
class Stream:
    """One open stream: its inbox, and the last event id its client has been sent."""

    user_id: int
    token_hash: bytes
    stats: LiveStats
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    inbox: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)
    last_id: int = 0
    ready: bool = False  # the first replay is done: the poll may take over from here
    opened: float = field(default_factory=time.monotonic)
    task: asyncio.Task[Any] | None = field(default_factory=asyncio.current_task)
    # The client's connection, once the answer has started: aiohttp does not cancel a
    # handler whose client left, so the maintenance loop looks here (``end_gone``).
    transport: asyncio.BaseTransport | None = None

    def put(self, item: Item) -> None:
        if self.inbox.qsize() >= INBOX_LIMIT and self.task is not None:
            log.info("closing a live stream whose client reads too slowly")
            self.task.cancel()
            return
        self.inbox.put_nowait(item)

    async def send(self, response: web.StreamResponse, event_id: int, lines: bytes) -> None:
        await response.write(lines)
        self.last_id = event_id
        self.stats.sent += 1


def render(row: Mapping[str, Any]) -> bytes:
    """One stored event as SSE lines; its data exactly as the API lists it elsewhere."""
    kind, data = row["kind"], row["data"]
    if kind == "notification":
        value: Any = stored_notification_answer(data)
    elif kind == "message":
        value = from_row(data, Message)
    else:
        value = data
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (row["id"], kind.encode(),
                                                 msgspec.json.encode(value))


class Streams:
    """Every open stream of this process, by user and by id."""

    def __init__(self, db: Database, cache: Cache) -> None:
        self.db = db
        self.cache = cache
        self.by_user: dict[int, dict[str, Stream]] = defaultdict(dict)
        self.by_id: dict[str, Stream] = {}
        self.subscribed = False
        self.stats = LiveStats()
        self.slot_commands = asyncio.Semaphore(SLOT_COMMANDS_AT_ONCE)

    def open(self, user_id: int, token_hash: bytes) -> Stream:
        """Register before the replay: what is published meanwhile waits in the inbox."""
        stream = Stream(user_id, token_hash, self.stats)
        self.by_user[user_id][stream.id] = stream
        self.by_id[stream.id] = stream
        self.stats.open += 1
        own = sorted(self.by_user[user_id].values(), key=lambda s: s.opened)
        for oldest in own[:-MAX_STREAMS_PER_USER]:  # the limit, even without Redis
            oldest.put(Close())
        return stream

    def forget(self, stream: Stream) -> None:
        if self.by_id.pop(stream.id, None) is None:
            return
        self.stats.open -= 1
        own = self.by_user[stream.user_id]
        own.pop(stream.id, None)
        if not own:
            del self.by_user[stream.user_id]

    def receive(self, message: dict[str, Any]) -> None:
        """A message from the channel (cache/live.py lists the kinds)."""
        if isinstance(events := message.get("events"), list):
            self.deliver(events)
        if isinstance(revoked := message.get("revoked"), list):
            self.revoke({bytes.fromhex(h) for h in revoked if isinstance(h, str)})
        if isinstance(evicted := message.get("evicted"), list):
            for stream_id in evicted:
                if (stream := self.by_id.get(str(stream_id))) is not None:
                    stream.put(Close())

    def deliver(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Events for any users: rendered once, then into each stream of their user here."""
        by_user: dict[int, list[Rendered]] = defaultdict(list)
        for row in rows:
            if row.get("user_id") in self.by_user:
                by_user[row["user_id"]].append((int(row["id"]), render(row)))
        for user_id, rendered in by_user.items():
            for stream in list(self.by_user.get(user_id, {}).values()):
                stream.put(rendered)

    def revoke(self, token_hashes: set[bytes]) -> None:
        for stream in list(self.by_id.values()):
            if stream.token_hash in token_hashes:
                stream.put(Close(REVOKED))

    def close_all(self) -> None:
        """Shutdown: every stream ends now, so clients reconnect to another worker."""
        for stream in list(self.by_id.values()):
            stream.put(Close())

    async def on_subscription(self, up: bool) -> None:
        """Once (re)subscribed, catch up on what the channel carried while it was down."""
        self.subscribed = up
        if up:
            await self.reconcile()

    async def reconcile(self) -> None:
        """One query for every user's missed events, one for every stream's token."""
        ready = [stream for stream in self.by_id.values() if stream.ready]
        if not ready:
            return
        after: dict[int, int] = {}
        for stream in ready:
            after[stream.user_id] = min(after.get(stream.user_id, stream.last_id),
                                        stream.last_id)
        try:
            self.deliver(await list_events_after_each(self.db, after))
            live = await list_live_tokens(self.db, list({s.token_hash for s in ready}))
        except DatabaseUnavailable as error:
            log.warning("live streams cannot reach PostgreSQL to catch up: %s", error)
            return
        self.revoke({stream.token_hash for stream in ready} - live)

    def end_gone(self) -> None:
        """End the streams whose clients have gone, rather than at their next write (the
        keep-alive): their memory and their slot in the user's limit come back at once."""
        for stream in list(self.by_id.values()):
            if stream.transport is not None and stream.transport.is_closing():
                stream.transport = None  # one Close is enough
                stream.put(Close())

    async def maintain(self) -> None:
        """The one loop: keep-alives, slot renewal and the token check every
        KEEPALIVE_SECONDS; a poll every POLL_SECONDS while the subscription is down; and
        every POLL_SECONDS, the streams whose clients went away and this process's events
        that Redis could not take, once it can."""
        loop = asyncio.get_running_loop()
        last_keepalive = loop.time()
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                self.end_gone()
                await publish_backlog(self.cache)
                if loop.time() - last_keepalive >= KEEPALIVE_SECONDS:
                    last_keepalive = loop.time()
                    for stream in list(self.by_id.values()):
                        stream.put(KEEPALIVE)
                    await renew_stream_slots(self.cache, list(self.by_user))
                    await self.reconcile()
                elif not self.subscribed:
                    await self.reconcile()
            except Exception:  # the loop must outlive any one failure
                log.exception("live streams maintenance failed; trying again")


STREAMS = web.AppKey("live_streams", Streams)


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the database and cache: the subscription and the maintenance loop."""
    streams = Streams(app[STORES].db, app[STORES].cache)
    app[STREAMS] = streams
    settings = app[SETTINGS]
    subscription = Subscription(settings.redis_url, app[STORES].cache.keys.live_channel(),
                                streams.receive, streams.on_subscription)
    subscription.start()
    maintenance = asyncio.create_task(streams.maintain(), name="live-maintenance")
    yield
    streams.close_all()
    await cancel_until_done(maintenance)
    await subscription.close()


async def close_streams(app: web.Application) -> None:
    """``on_shutdown``: runs before aiohttp waits for handlers, so streams do not hold it."""
    with contextlib.suppress(KeyError):
        app[STREAMS].close_all()
