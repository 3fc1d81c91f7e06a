"""Fixed-window rate limits shared by every process through Redis.

When Redis is unavailable (down, stalled past the socket timeout, breaker open) each process
counts in its own memory instead and allows its share of the limit, the limit divided by the
number of processes (at least 1): never unlimited, and per subject, so nobody else is locked
out. A window that straddles the outage may allow up to the limit plus one share.
"""

from __future__ import annotations

import time

import redis.asyncio as redis

from cache.client import Cache, CacheUnavailable, pipeline


async def hit_rate_limit(cache: Cache, scope: str, subject: str, count: int, window: int,
                         processes: int = 1) -> int | None:
    """Count one attempt; answer the seconds to wait when over the limit, else None."""
    now = int(time.time())
    window_start = now - now % window
    key = cache.keys.rate_limit(scope, subject, window_start)

    async def incr(client: redis.Redis) -> int:
        pipe = pipeline(client)
        pipe.incr(key)
        pipe.expire(key, window + 1)
        attempts, _ = await pipe.execute()
        return int(attempts)

    try:
        attempts = await cache.run(incr)
    except CacheUnavailable:
        attempts = cache.local_windows.hit(scope, subject, window_start)
        count = max(1, count // processes)
    if attempts <= count:
        return None
    return max(1, window_start + window - now)
