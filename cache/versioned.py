"""Cache-aside with a generation per entry, so a slow reader never refills a stale value.

A reader notes the entry's generation with its cache miss, reads PostgreSQL, and fills only
if the generation is unchanged (atomically, in a Lua script). A writer, after commit, bumps
the generation and deletes the value in one round trip. A fill racing an invalidation is
therefore refused instead of putting the old value back.

Values are stamped with the version they were filled under: the cache epoch (cache/epoch.py)
and the generation, both read in the same round trip as the value. An invalidation Redis
missed is made good by an epoch bump, after which older values are misses, and so are fills
made by readers that saw the old epoch. Because the generation is in the stamp too, several
values may share one generation (every cached jobs page, a user's job flags per category):
one bump makes all of them misses without naming them. Readers get epoch and generation as
one opaque ``version`` string to fill with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis

from cache.client import Cache, CacheUnavailable, get_many, pipeline
from cache.epoch import SEPARATOR, version_of
from cache.keys import VersionedKey

GENERATION_TTL_SECONDS = 86_400  # outlives every value it guards

# KEYS: value, generation (one hash slot, cache/keys.py). ARGV: generation the reader saw,
# value, ttl. The value carries the version the reader saw (``stored``), so a fill racing an
# epoch bump stores a copy readers take for a miss.
FILL_IF_CURRENT = """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Cached:
    value: str | None  # None: a miss (absent, or filled under an older version)
    version: str  # the version to fill with: epoch and generation as read


async def read_versioned(cache: Cache, keys: Sequence[VersionedKey]) -> list[Cached] | None:
    """Values and versions for ``keys`` in one round trip; None when Redis is down."""

    names = [cache.keys.epoch(), *value_and_generation_names(keys)]
    raw = await cache.run_or(lambda client: get_many(client, names), None)
    if raw is None:
        return None
    return cached_entries(cache, raw[0] or "", raw[1:])


def value_and_generation_names(keys: Sequence[VersionedKey]) -> list[str]:
    """The Redis keys to read for ``keys``, in the order ``cached_entries`` takes them."""
    return [name for key in keys for name in (key.value, key.generation)]


def cached_entries(cache: Cache, epoch: str, raw: Sequence[str | None]) -> list[Cached]:
    """(value, generation) pairs as read → entries, each a hit only when stored under the
    version read now."""
    entries = []
    for i in range(0, len(raw), 2):
        version = version_of(epoch, raw[i + 1] or "")
        value = raw[i]
        prefix = version + SEPARATOR
        hit = value is not None and value.startswith(prefix)
        cache.count(hit=hit)
        entries.append(Cached(value[len(prefix):] if hit and value else None, version))
    return entries


def stored(version: str, payload: str) -> str:
    """A value as stored: the version it was filled under, then the payload."""
    return f"{version}{SEPARATOR}{payload}"


async def invalidate_versioned(cache: Cache, keys: Sequence[VersionedKey]) -> None:
    """After commit: bump each generation and drop each value, one round trip. If Redis
    cannot take it, the process owes an epoch bump, which makes the old values misses."""
    if not keys:
        return

    async def bump(client: redis.Redis) -> None:
        pipe = pipeline(client)
        queue_invalidation(pipe, keys)
        await pipe.execute()

    try:
        await cache.run(bump)
    except CacheUnavailable:
        cache.missed_invalidation()


def queue_invalidation(pipe: Any, keys: Sequence[VersionedKey]) -> None:
    """Add the invalidation of ``keys`` to ``pipe`` (whose caller owes an epoch bump with
    ``cache.missed_invalidation()`` if the pipeline fails)."""
    for key in keys:
        pipe.incr(key.generation)
        pipe.expire(key.generation, GENERATION_TTL_SECONDS)
        pipe.delete(key.value)
