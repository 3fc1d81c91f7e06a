"""The Redis client behind a circuit breaker.

Redis holds copies, never the truth: when it is down every caller falls back to PostgreSQL.
The breaker keeps a dead Redis from costing each request a socket timeout: after a failure it
stays open for ``BREAKER_OPEN_SECONDS`` and calls answer "unavailable" at once. An invalidation
that failed leaves an epoch bump owed (cache/epoch.py), paid before anything else once Redis
answers; a background task keeps trying it while the breaker is open.

``redis+cluster://host:port`` (or ``rediss+cluster://``) names a Redis Cluster by any one of
its nodes: the client learns the others, sends each key to its slot's master, and splits a
plain pipeline per node. Nothing here uses MULTI/EXEC, and every Lua script touches keys of
one hash slot (cache/keys.py), so the same code runs on one Redis and on a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from cache.epoch import SETTLE_RETRY_SECONDS, EpochDebt
from cache.keys import EPOCH_TTL_SECONDS, Keys
from cache.windows import LocalRecentWrites, LocalWindows

log = logging.getLogger(__name__)

T = TypeVar("T")

SOCKET_TIMEOUT_SECONDS = 0.25
BREAKER_OPEN_SECONDS = 5.0
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
# What a failing Redis raises; the cluster client adds its own base class (e.g. no node of
# the cluster could be reached).
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException, OSError)
# Live-event messages waiting for Redis (cache/live.py); beyond this the oldest are dropped,
# and streams find those events at their next full check of PostgreSQL.
LIVE_BACKLOG_LIMIT = 1000


class CacheUnavailable(Exception):
    """Redis is down or the breaker is open; the caller uses PostgreSQL instead."""


class CircuitBreaker:
    def __init__(self, open_seconds: float = BREAKER_OPEN_SECONDS) -> None:
        self.open_seconds = open_seconds
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def trip(self) -> None:
        self._open_until = time.monotonic() + self.open_seconds

    def reset(self) -> None:
        self._open_until = 0.0


class Cache:
    """Redis with key builders, a breaker, and hit/miss counters for /metrics."""

    def __init__(self, url: str, prefix: str) -> None:
        self.redis = connect(url, socket_timeout=SOCKET_TIMEOUT_SECONDS,
                             socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
                             retry=Retry(NoBackoff(), 0),  # the breaker decides when to retry
                             decode_responses=True)
        self.keys = Keys(prefix)
        self.breaker = CircuitBreaker()
        self.debt = EpochDebt()
        self.local_windows = LocalWindows()  # rate limits while Redis is unavailable
        self.recent_writes = LocalRecentWrites()  # this process's read-your-writes memory
        self.live_backlog: deque[str] = deque(maxlen=LIVE_BACKLOG_LIMIT)
        self.hits = 0
        self.misses = 0
        self._settler: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background retry of an owed epoch bump (needs a running loop)."""
        self._settler = asyncio.create_task(self._settle_in_background(), name="cache-epoch")

    async def close(self) -> None:
        if self._settler is not None:
            self._settler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._settler
        await self.redis.aclose()

    def missed_invalidation(self) -> None:
        """An invalidation after commit could not be written: owe an epoch bump."""
        self.debt.incur()

    async def run(self, operation: Callable[[redis.Redis], Awaitable[T]]) -> T:
        """Run one Redis operation (ideally one pipeline); raise CacheUnavailable on failure."""
        if self.breaker.is_open:
            raise CacheUnavailable("circuit open")
        try:
            if self.debt.outstanding:
                await self._bump_epoch()
            result = await operation(self.redis)
        except REDIS_ERRORS as error:
            self.breaker.trip()
            log.warning("redis unavailable, using PostgreSQL for %.0fs: %s",
                        self.breaker.open_seconds, error)
            raise CacheUnavailable(str(error)) from error
        return result

    async def run_or(self, operation: Callable[[redis.Redis], Awaitable[T]], fallback: T) -> T:
        """Like ``run`` but answers ``fallback`` when Redis is unavailable."""
        try:
            return await self.run(operation)
        except CacheUnavailable:
            return fallback

    async def settle_debt(self) -> bool:
        """Bump an owed epoch now, ignoring the breaker; True when nothing is owed any more."""
        if not self.debt.outstanding:
            return True
        try:
            await self._bump_epoch()
        except REDIS_ERRORS:
            self.breaker.trip()
            return False
        self.breaker.reset()  # Redis answers again: stop reading PostgreSQL instead
        return True

    async def _bump_epoch(self) -> None:
        async with self.debt.lock:
            owed = self.debt.owed
            if owed <= self.debt.paid:
                return  # a concurrent caller paid it while this one waited
            epoch = self.keys.epoch()
            pipe = pipeline(self.redis)
            pipe.incr(epoch)
            pipe.expire(epoch, EPOCH_TTL_SECONDS)
            value, _ = await pipe.execute()
            self.debt.paid = owed
        log.warning("cache epoch bumped to %s: copies cached before Redis was unavailable "
                    "are ignored", value)

    async def _settle_in_background(self) -> None:
        while True:
            await asyncio.sleep(SETTLE_RETRY_SECONDS)
            try:
                await self.settle_debt()
            except Exception:  # never let the retry die: it is what makes revocations land
                log.exception("cache epoch bump failed; trying again")

    async def is_up(self) -> bool:
        """A real PING, ignoring the breaker: /health reports what Redis says now."""
        try:
            await self.redis.ping()
        except REDIS_ERRORS:
            self.breaker.trip()
            return False
        self.breaker.reset()
        return True

    def count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1


def node_url(url: str) -> tuple[str, bool]:
    """``url`` with a ``+cluster`` scheme made plain (the node it names), and whether it
    named a cluster."""
    scheme, separator, rest = url.partition("://")
    if separator and scheme in CLUSTER_SCHEMES:
        return f"{CLUSTER_SCHEMES[scheme]}://{rest}", True
    return url, False


def connect(url: str, **options: Any) -> redis.Redis:
    """A client for ``url``: one Redis, or a cluster for the ``+cluster`` schemes.

    The cluster client offers the same command, pipeline and script API, so callers type it
    as ``redis.Redis``."""
    plain, cluster = node_url(url)
    if cluster:
        return cast(redis.Redis, RedisCluster.from_url(plain, **options))
    return redis.Redis.from_url(plain, **options)


def connect_subscriber(url: str, **options: Any) -> redis.Redis:
    """A plain client for pub/sub on ``url``, one Redis even when it names a cluster.

    A cluster broadcasts every classic PUBLISH to all its nodes, so a subscriber on the node
    the URL names hears the whole channel. If that node is down the subscription retries it
    and live streams poll PostgreSQL meanwhile (see cache/live.py)."""
    return redis.Redis.from_url(node_url(url)[0], **options)


def is_cluster(client: redis.Redis) -> bool:
    return isinstance(client, RedisCluster)


async def get_many(client: redis.Redis, keys: Sequence[str]) -> list[str | None]:
    """The values of ``keys`` in one round trip and one command: MGET (per slot on a cluster,
    those sent together). A pipeline of GETs costs redis-py several times the Python work."""
    if is_cluster(client):
        return await client.mget_nonatomic(keys)  # type: ignore[no-any-return, attr-defined]
    return await client.mget(keys)  # type: ignore[return-value]  # decode_responses


def pipeline(client: redis.Redis) -> Any:
    """A plain pipeline (no MULTI/EXEC): one round trip for a request's Redis work.

    Nothing the cache writes needs the commands to be atomic together (each script is atomic
    on its own), and a cluster can only run MULTI/EXEC over keys of one slot."""
    return client.pipeline(transaction=False)
