"""The one cache-aside read: read, on a miss load from PostgreSQL, fill unless a write moved on.

A handler declares what it reads as ``CachedValue``s (a versioned key, the msgspec type of
the value, its TTL) and makes one call, ``read_through``, with a loader for the misses; it
never sees how values are stored. The entries may already have been read in the request's
authentication round trip (``service.authn.authenticate_reading``): then answering a hit
costs no further Redis call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as redis

from cache.client import Cache
from cache.epoch import split_version
from cache.keys import VersionedKey
from cache.versioned import FILL_IF_CURRENT, Cached, read_versioned, stored

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class CachedValue:
    """Something a handler reads through the cache."""

    key: VersionedKey
    type: Any  # the msgspec type the value decodes to (int, a Struct, list[...])
    ttl: int


Loader = Callable[[], Awaitable[Sequence[Any]]]


async def read_through(cache: Cache, values: Sequence[CachedValue], load: Loader,
                       prefetched: Sequence[Cached] | None = None,
                       usable: Callable[[list[Any]], bool] | None = None) -> list[Any]:
    """Every value, typed: from Redis when all are there (and ``usable`` says they still
    serve, e.g. no cached job has expired since), else ``load()`` (which answers all of them,
    in order) and a fill, refused if a write moved on since."""
    cached = prefetched if prefetched is not None else await read_versioned(
        cache, [value.key for value in values])
    if cached is not None and all(entry.value is not None for entry in cached):
        try:
            hits = [msgspec.json.decode(entry.value or "", type=value.type)
                    for entry, value in zip(cached, values, strict=True)]
        except msgspec.DecodeError:
            hits = None  # a value of an older shape: load and refill it like a miss
        if hits is not None and (usable is None or usable(hits)):
            return hits
    loaded = list(await load())
    if cached is not None:
        await _fill(cache, values, cached, loaded)
    return loaded


async def _fill(cache: Cache, values: Sequence[CachedValue], cached: Sequence[Cached],
                loaded: Sequence[Any]) -> None:
    """One round trip: each fill a script that checks the version it read (cache/versioned)."""
    async def fill(client: redis.Redis) -> None:
        pipe = client.pipeline(transaction=False)
        for value, entry, data in zip(values, cached, loaded, strict=True):
            payload = stored(entry.version, _encoder.encode(data).decode())
            pipe.eval(FILL_IF_CURRENT, 2, value.key.value, value.key.generation,
                      split_version(entry.version)[1], payload, value.ttl)
        await pipe.execute()

    await cache.run_or(fill, None)
