"""Unread counts (notifications, messages) per user, as versioned cache entries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from cache.client import Cache
from cache.keys import UNREAD_COUNT_TTL_SECONDS, VersionedKey
from cache.readthrough import CachedValue, read_through

KINDS = ("notifications", "messages")

CountsLoader = Callable[[], Awaitable[dict[str, int]]]


def unread_count_value(cache: Cache, kind: str, user_id: int) -> CachedValue:
    return CachedValue(cache.keys.unread(kind, user_id), int, UNREAD_COUNT_TTL_SECONDS)


async def get_unread_counts(cache: Cache, user_id: int, load: CountsLoader) -> dict[str, int]:
    """Both counts from Redis on a hit; else ``load()`` from PostgreSQL and fill."""

    async def load_in_order() -> list[int]:
        counts = await load()
        return [counts[kind] for kind in KINDS]

    values = [unread_count_value(cache, kind, user_id) for kind in KINDS]
    return dict(zip(KINDS, await read_through(cache, values, load_in_order), strict=True))


def unread_count_keys(cache: Cache, kind: str, user_ids: Iterable[int]) -> list[VersionedKey]:
    """What a change of these users' unread ``kind`` makes stale."""
    return [cache.keys.unread(kind, uid) for uid in sorted(set(user_ids))]


def own_user_keys(cache: Cache, user_ids: Iterable[int]) -> list[VersionedKey]:
    """What a write that changes what GET /me shows of these users makes stale."""
    return [cache.keys.own_user(uid) for uid in sorted(set(user_ids))]
