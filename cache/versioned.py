"""Cache-aside with a generation per entry, so a slow reader never refills a stale value.

A reader notes the entry's generation with its cache miss, reads PostgreSQL, and fills only
if the generation is unchanged (atomically, in a Lua script). A writer, after commit, bumps
the generation and deletes the value in one round trip. A fill racing an invalidation is
therefore refused instead of putting the old value back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as redis

from cache.client import Cache, pipeline
from cache.keys import VersionedKey

GENERATION_TTL_SECONDS = 86_400  # outlives every value it guards

FILL_IF_GENERATION = """
local generation = redis.call('GET', KEYS[2]) or ''
if generation == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
    return 1
end
return 0
"""


@dataclass(frozen=True)
class Cached:
    value: str | None  # None: a miss
    generation: str


async def read_versioned(cache: Cache, keys: Sequence[VersionedKey]) -> list[Cached] | None:
    """Values and generations for ``keys`` in one round trip; None when Redis is down."""

    async def read(client: redis.Redis) -> list[str | None]:
        pipe = pipeline(client)
        for key in keys:
            pipe.get(key.value)
            pipe.get(key.generation)
        result: list[str | None] = await pipe.execute()
        return result

    raw = await cache.run_or(read, None)
    if raw is None:
        return None
    entries = [Cached(raw[i], raw[i + 1] or "") for i in range(0, len(raw), 2)]
    for entry in entries:
        cache.count(hit=entry.value is not None)
    return entries


async def fill_versioned(cache: Cache, key: VersionedKey, generation: str, value: str,
                         ttl: int) -> None:
    await cache.run_or(
        lambda client: client.eval(FILL_IF_GENERATION, 2, key.value, key.generation,
                                   generation, value, ttl),
        None,
    )


async def invalidate_versioned(cache: Cache, keys: Sequence[VersionedKey]) -> None:
    """After commit: bump each generation and drop each value, one round trip."""
    if not keys:
        return

    async def bump(client: redis.Redis) -> None:
        pipe = pipeline(client)
        for key in keys:
            pipe.incr(key.generation)
            pipe.expire(key.generation, GENERATION_TTL_SECONDS)
            pipe.delete(key.value)
        await pipe.execute()

    await cache.run_or(bump, None)
