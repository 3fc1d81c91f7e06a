"""The Redis side of live events: one pub/sub channel, and each user's open streams.

Redis is only the fast path here: event ids and data live in PostgreSQL, so a message this
channel loses is found by the streams' next replay or poll. Every worker process holds one
subscription (``Subscription``) and fans out in memory. Messages on the channel are JSON:

- ``{"events": [{"user_id", "id", "kind", "data"}, …]}``: events just committed;
- ``{"revoked": [token hash hex, …]}``: streams opened with these tokens end;
- ``{"evicted": [stream id, …]}``: streams closed to keep a user within the stream limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from cache.client import (
    REDIS_ERRORS,
    SOCKET_TIMEOUT_SECONDS,
    Cache,
    CacheUnavailable,
    connect_subscriber,
    is_cluster,
    pipeline,
)
from cache.keys import LIVE_STREAMS_TTL_SECONDS, VersionedKey
from cache.versioned import queue_invalidation

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 0.5  # first wait before subscribing again; doubles up to the max
RECONNECT_MAX_SECONDS = 2.0
# How long a read waits for a message before checking the connection again.
READ_SECONDS = 1.0
HEALTH_CHECK_SECONDS = 5

# KEYS: the user's streams. ARGV: stream id, now (ms), limit, ttl, channel.
# Adds the stream, trims the set to the newest ``limit`` and tells every process which
# streams it dropped; returns them.
CLAIM_SLOT = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if over <= 0 then return {} end
local evicted = redis.call('ZRANGE', KEYS[1], 0, over - 1)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
redis.call('PUBLISH', ARGV[5], cjson.encode({evicted = evicted}))
return evicted
"""


async def publish_events(cache: Cache, events: Sequence[dict[str, Any]],
                         stale: Sequence[VersionedKey] = ()) -> None:
    """After commit, in one round trip: invalidate the ``stale`` cache entries
    (cache/versioned.py), then tell every process's streams, so that a client re-reading a
    count when an event arrives never finds the stale copy. If Redis cannot take them now
    (down, stalled, or this process's breaker still open), the process owes an epoch bump for
    the entries, and the events wait in the backlog: a process whose subscription never
    dropped, or that subscribed again already, does not poll, and would otherwise only find
    them at its streams' next full check."""
    if not events and not stale:
        return
    payload = _encode({"events": list(events)}) if events else None

    async def send(client: redis.Redis) -> None:
        # redis-py refuses PUBLISH in a cluster's pipeline: there it follows on its own.
        apart = is_cluster(client)
        pipe = pipeline(client)
        queue_invalidation(pipe, stale)
        if payload is not None and not apart:
            pipe.publish(cache.keys.live_channel(), payload)
        await pipe.execute()
        if payload is not None and apart:
            await client.publish(cache.keys.live_channel(), payload)

    try:
        await cache.run(send)
    except CacheUnavailable:
        if stale:
            cache.missed_invalidation()
        if payload is not None:
            cache.live_backlog.append(payload)


async def publish(cache: Cache, message: dict[str, Any]) -> None:
    payload = _encode(message)
    published = await cache.run_or(
        lambda client: client.publish(cache.keys.live_channel(), payload), None)
    if published is None:
        cache.live_backlog.append(payload)


def _encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


async def publish_backlog(cache: Cache) -> None:
    """Publish what waits in the backlog, oldest first, until Redis fails again. The breaker is
    not asked: it stays open for seconds after Redis is back, and these events are late
    already (a stream drops what it has sent and fills a gap from PostgreSQL)."""
    channel = cache.keys.live_channel()
    while cache.live_backlog:
        try:
            await cache.redis.publish(channel, cache.live_backlog[0])
        except REDIS_ERRORS:
            return
        cache.live_backlog.popleft()


async def publish_revoked(cache: Cache, client: redis.Redis,
                          token_hashes_hex: Sequence[str]) -> None:
    """The notice that ends the tokens' streams, on the connection writing their tombstones
    (a command of its own: a cluster pipeline cannot carry PUBLISH)."""
    await client.publish(cache.keys.live_channel(),
                         json.dumps({"revoked": list(token_hashes_hex)}))


async def claim_stream_slot(cache: Cache, user_id: int, stream_id: str, limit: int) -> list[str]:
    """Count a new stream against the user's limit; the ids of streams it pushed out.

    Raises CacheUnavailable when Redis is down (the caller then limits per process).
    """
    now_ms = int(time.time() * 1000)
    evicted = await cache.run(lambda client: client.eval(
        CLAIM_SLOT, 1, cache.keys.live_streams(user_id), stream_id, now_ms, limit,
        LIVE_STREAMS_TTL_SECONDS, cache.keys.live_channel()))
    return [str(stream) for stream in evicted or []]


async def release_stream_slot(cache: Cache, user_id: int, stream_id: str) -> None:
    await cache.run_or(lambda client: client.zrem(cache.keys.live_streams(user_id), stream_id),
                       None)


async def renew_stream_slots(cache: Cache, user_ids: Iterable[int]) -> None:
    """Keep the open streams' sets alive (they expire once no process renews them)."""
    keys = [cache.keys.live_streams(user_id) for user_id in user_ids]

    async def renew(client: redis.Redis) -> None:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.expire(key, LIVE_STREAMS_TTL_SECONDS)
        await pipe.execute()

    if keys:
        await cache.run_or(renew, None)


class Subscription:
    """This process's one subscription to the channel, kept up in the background.

    ``on_message`` gets each decoded message; ``on_state(True)`` is called once subscribed
    (after a reconnect too: the caller then catches up from PostgreSQL), ``on_state(False)``
    when the connection is lost.
    """

    def __init__(self, url: str, channel: str,
                 on_message: Callable[[dict[str, Any]], None],
                 on_state: Callable[[bool], Awaitable[None]]) -> None:
        # Its own connection: a subscribed connection cannot run commands, and an idle
        # subscription must not hit the cache's short socket timeout.
        self.client = connect_subscriber(
            url, socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            health_check_interval=HEALTH_CHECK_SECONDS, decode_responses=True)
        self.channel = channel
        self.on_message = on_message
        self.on_state = on_state
        self._task: asyncio.Task[None] | None = None
        self._subscribed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-subscription")

    async def close(self) -> None:
        task = self._task
        while task is not None and not task.done():  # a read may swallow one cancel
            task.cancel()
            await asyncio.wait([task], timeout=0.1)
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(1):
                await self.client.aclose()

    async def _run(self) -> None:
        wait = RECONNECT_SECONDS
        while True:
            self._subscribed = False
            try:
                await self._listen()
            except (RedisError, OSError, CacheUnavailable) as error:
                log.warning("live events subscription lost (%s); streams poll PostgreSQL", error)
            except Exception:  # never let the subscription die: streams would only poll
                log.exception("live events subscription failed; subscribing again")
            await self.on_state(False)
            wait = RECONNECT_SECONDS if self._subscribed else min(wait * 2, RECONNECT_MAX_SECONDS)
            await asyncio.sleep(wait * random.uniform(0.8, 1.2))

    async def _listen(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self._subscribed = True
            await self.on_state(True)
            while True:
                message = await pubsub.get_message(timeout=READ_SECONDS)
                if message is not None and message["type"] == "message":
                    self._deliver(message["data"])
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    def _deliver(self, data: str) -> None:
        try:
            decoded = json.loads(data)
        except ValueError:
            log.warning("ignoring a live events message that is not JSON")
            return
        if isinstance(decoded, dict):
            self.on_message(decoded)
