"""Fixed-window rate limits shared by every process through Redis.

When Redis is down the limit is not enforced (fail open): refusing every login because the
cache is down would turn a cache outage into a full outage. The breaker logs it.
"""

from __future__ import annotations

import time

import redis.asyncio as redis

from cache.client import Cache, CacheUnavailable, pipeline


async def hit_rate_limit(cache: Cache, scope: str, subject: str, count: int,
                         window: int) -> int | None:
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
        return None
    if attempts <= count:
        return None
    return max(1, window_start + window - now)
