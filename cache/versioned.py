"""Cache-aside with a generation per entry, so a slow reader never refills a stale value.

A reader notes the entry's generation with its cache miss, reads PostgreSQL, and fills only
if the generation is unchanged (atomically, in a Lua script). A writer, after commit, bumps
the generation and deletes the value in one round trip. A fill racing an invalidation is
therefore refused instead of putting the old value back.

Values are also stamped with the cache epoch they were filled under (cache/epoch.py), read in
the same round trip: an invalidation Redis missed is made good by an epoch bump, after which
older values are misses, and so are fills made by readers that saw the old epoch. Readers
get both as one opaque ``version`` string to fill with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as redis

from cache.client import Cache, CacheUnavailable, pipeline
from cache.epoch import split_version, stamp, unstamp, version_of
from cache.keys import VersionedKey

GENERATION_TTL_SECONDS = 86_400  # outlives every value it guards

# KEYS: value, generation (one hash slot, cache/keys.py). ARGV: generation the reader saw,
# value, ttl. The value carries the epoch the reader saw (stamped, or inside it for job pages),
# so a fill racing an epoch bump stores a copy readers take for a miss.
FILL_IF_CURRENT = """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Cached:
    value: str | None  # None: a miss (absent, or filled under an older epoch)
    generation: str  # the version to fill with: epoch and generation as read


async def read_versioned(cache: Cache, keys: Sequence[VersionedKey]) -> list[Cached] | None:
    """Values and versions for ``keys`` in one round trip; None when Redis is down."""

    async def read(client: redis.Redis) -> list[str | None]:
        pipe = pipeline(client)
        pipe.get(cache.keys.epoch())
        for key in keys:
            pipe.get(key.value)
            pipe.get(key.generation)
        result: list[str | None] = await pipe.execute()
        return result

    raw = await cache.run_or(read, None)
    if raw is None:
        return None
    epoch = raw[0] or ""
    entries = [Cached(unstamp(raw[i], epoch), version_of(epoch, raw[i + 1] or ""))
               for i in range(1, len(raw), 2)]
    for entry in entries:
        cache.count(hit=entry.value is not None)
    return entries


async def fill_if_current(cache: Cache, key: VersionedKey, version: str, value: str,
                          ttl: int) -> None:
    """Store ``value`` as is, unless the generation moved since ``version``; ``value`` must
    carry the version's epoch so that readers of a later epoch take it for a miss."""
    generation = split_version(version)[1]
    await cache.run_or(
        lambda client: client.eval(FILL_IF_CURRENT, 2, key.value, key.generation, generation,
                                   value, ttl),
        None,
    )


async def fill_versioned(cache: Cache, key: VersionedKey, version: str, value: str,
                         ttl: int) -> None:
    await fill_if_current(cache, key, version, stamp(split_version(version)[0], value), ttl)


async def invalidate_versioned(cache: Cache, keys: Sequence[VersionedKey]) -> None:
    """After commit: bump each generation and drop each value, one round trip. If Redis
    cannot take it, the process owes an epoch bump, which makes the old values misses."""
    if not keys:
        return

    async def bump(client: redis.Redis) -> None:
        pipe = pipeline(client)
        for key in keys:
            pipe.incr(key.generation)
            pipe.expire(key.generation, GENERATION_TTL_SECONDS)
            pipe.delete(key.value)
        await pipe.execute()

    try:
        await cache.run(bump)
    except CacheUnavailable:
        cache.missed_invalidation()
