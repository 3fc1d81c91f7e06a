"""Unread counts (notifications, messages) per user, as versioned cache entries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from cache.client import Cache
from cache.keys import UNREAD_COUNT_TTL_SECONDS
from cache.versioned import fill_versioned, invalidate_versioned, read_versioned

KINDS = ("notifications", "messages")

CountsLoader = Callable[[], Awaitable[dict[str, int]]]


async def get_unread_counts(cache: Cache, user_id: int, load: CountsLoader) -> dict[str, int]:
    """Both counts from Redis on a hit; else ``load()`` from PostgreSQL and fill."""
    keys = [cache.keys.unread(kind, user_id) for kind in KINDS]
    cached = await read_versioned(cache, keys)
    if cached is not None and all(entry.value is not None for entry in cached):
        return {kind: int(entry.value or 0) for kind, entry in zip(KINDS, cached, strict=True)}
    counts = await load()
    if cached is not None:
        for kind, key, entry in zip(KINDS, keys, cached, strict=True):
            await fill_versioned(cache, key, entry.generation, str(counts[kind]),
                                 UNREAD_COUNT_TTL_SECONDS)
    return counts


async def invalidate_unread_counts(cache: Cache, kind: str, user_ids: Iterable[int]) -> None:
    await invalidate_versioned(cache, [cache.keys.unread(kind, uid) for uid in set(user_ids)])
