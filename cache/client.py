"""The Redis client behind a circuit breaker.

Redis holds copies, never the truth: when it is down every caller falls back to PostgreSQL.
The breaker keeps a dead Redis from costing each request a socket timeout: after a failure it
stays open for ``BREAKER_OPEN_SECONDS`` and calls answer "unavailable" at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from cache.keys import Keys

log = logging.getLogger(__name__)

T = TypeVar("T")

SOCKET_TIMEOUT_SECONDS = 0.25
BREAKER_OPEN_SECONDS = 5.0


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
        self.redis: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),  # the breaker decides when to try again
            decode_responses=True,
        )
        self.keys = Keys(prefix)
        self.breaker = CircuitBreaker()
        self.hits = 0
        self.misses = 0

    async def close(self) -> None:
        await self.redis.aclose()

    async def run(self, operation: Callable[[redis.Redis], Awaitable[T]]) -> T:
        """Run one Redis operation (ideally one pipeline); raise CacheUnavailable on failure."""
        if self.breaker.is_open:
            raise CacheUnavailable("circuit open")
        try:
            result = await operation(self.redis)
        except (RedisError, OSError) as error:
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

    async def is_up(self) -> bool:
        """A real PING, ignoring the breaker: /health reports what Redis says now."""
        try:
            await self.redis.ping()
        except (RedisError, OSError):
            self.breaker.trip()
            return False
        self.breaker.reset()
        return True

    def count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1


def pipeline(client: redis.Redis) -> Any:
    """A transactional pipeline: one round trip for a request's Redis work."""
    return client.pipeline(transaction=True)
