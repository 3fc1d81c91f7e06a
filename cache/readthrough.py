"""The one cache-aside read: read, on a miss load from PostgreSQL, fill unless a write moved on.

A handler declares what it reads as ``CachedValue``s (a versioned key, the msgspec type of
the value, its TTL) and makes one call, ``read_through``, with a loader for the misses; it
never sees how values are stored. The entries may already have been read in the request's
authentication round trip (``service.authn.authenticate_reading``): then answering a hit
costs no further Redis call.

Each value is stored behind a fingerprint of its type's JSON schema. A value filled under
another shape (by the other side of a rolling deploy) is a miss, so a hit is known to be of
the current shape without decoding it: a value read ``as_raw`` goes into the answer as the
bytes it was stored as (``msgspec.Raw``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from hashlib import blake2s
from typing import Any

import msgspec
import redis.asyncio as redis

from cache.client import Cache
from cache.epoch import SEPARATOR, split_version
from cache.keys import VersionedKey, spread
from cache.versioned import FILL_IF_CURRENT, Cached, read_versioned, stored

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class CachedValue:
    """Something a handler reads through the cache."""

    key: VersionedKey
    type: Any  # the msgspec type the value decodes to (int, a Struct, list[...])
    ttl: int
    as_raw: bool = False  # a hit is its stored JSON as msgspec.Raw, not a decoded value


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
            hits = [_hit(entry.value or "", value)
                    for entry, value in zip(cached, values, strict=True)]
        except (_OtherShape, msgspec.DecodeError):
            hits = None  # load and refill it like a miss
        if hits is not None and (usable is None or usable(hits)):
            return hits
    loaded = list(await load())
    if cached is not None:
        await _fill(cache, values, cached, loaded)
    return loaded


class _OtherShape(Exception):
    """A value stored under another shape of its type."""


def _hit(stored_value: str, value: CachedValue) -> Any:
    shape = _shape_prefix(value.type)
    if not stored_value.startswith(shape):
        raise _OtherShape
    payload = stored_value[len(shape):]
    return msgspec.Raw(payload) if value.as_raw else msgspec.json.decode(payload,
                                                                         type=value.type)


@cache
def _shape_prefix(value_type: Any) -> str:
    """A fingerprint of the type's JSON schema (its fields, their types and order)."""
    schema = msgspec.json.encode(msgspec.json.schema(value_type))
    return blake2s(schema, digest_size=4).hexdigest() + SEPARATOR


async def _fill(cache: Cache, values: Sequence[CachedValue], cached: Sequence[Cached],
                loaded: Sequence[Any]) -> None:
    """One round trip: each fill a script that checks the version it read (cache/versioned)."""
    async def fill(client: redis.Redis) -> None:
        pipe = client.pipeline(transaction=False)
        for value, entry, data in zip(values, cached, loaded, strict=True):
            payload = stored(entry.version,
                             _shape_prefix(value.type) + _encoder.encode(data).decode())
            pipe.eval(FILL_IF_CURRENT, 2, value.key.value, value.key.generation,
                      split_version(entry.version)[1], payload, spread(value.ttl))
        await pipe.execute()

    await cache.run_or(fill, None)
