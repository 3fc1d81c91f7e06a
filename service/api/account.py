"""The caller's own answers, read through the cache: their account (GET /me) and unread counts.

Each is declared once as the cached values it reads (``*_values``), so a handler can hand the
declaration to ``authenticate_reading`` and get them in the token's round trip: a warm
``GET /me`` or unread count is one Redis round trip and no PostgreSQL query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from cache.client import Cache
from cache.counters import KINDS, unread_count_value
from cache.keys import OWN_USER_TTL_SECONDS
from cache.readthrough import CachedValue, read_through
from cache.versioned import Cached
from service.api.schemas import Count, MeAnswer, OwnUser
from service.appkeys import STORES
from service.authn import authenticate_reading
from service.errors import NotFound
from service.responses import from_row, json_answer
from sql import counters, users
from sql.db import Database


def unread_values(cache: Cache, user_id: int, kinds: Sequence[str] = KINDS
                  ) -> list[CachedValue]:
    return [unread_count_value(cache, kind, user_id) for kind in kinds]


def me_values(cache: Cache, user_id: int) -> list[CachedValue]:
    # as_raw: a warm answer carries the account's JSON as cached, neither decoded nor encoded
    own = CachedValue(cache.keys.own_user(user_id), OwnUser, OWN_USER_TTL_SECONDS, as_raw=True)
    return [own, *unread_values(cache, user_id)]


async def read_unread_counts(db: Database, cache: Cache, user_id: int,
                             kinds: Sequence[str] = KINDS,
                             prefetched: Sequence[Cached] | None = None) -> list[int]:
    """The user's unread counts of ``kinds``, in order."""

    async def load() -> list[int]:
        counts = await counters.get_unread_counts(db, user_id)
        return [getattr(counts, kind) for kind in kinds]

    return await read_through(cache, unread_values(cache, user_id, kinds), load, prefetched)


async def read_me(db: Database, cache: Cache, user_id: int,
                  prefetched: Sequence[Cached] | None = None) -> MeAnswer:
    """GET /me's answer (its user an ``OwnUser``, or when warm the same JSON as cached); 404
    when the user is gone."""

    async def load() -> list[Any]:
        user = await users.get_own_user(db, user_id)
        if user is None:
            raise NotFound()
        counts = await counters.get_unread_counts(db, user_id)
        return [from_row(user, OwnUser), counts.notifications, counts.messages]

    user, notifications, messages = await read_through(cache, me_values(cache, user_id), load,
                                                       prefetched)
    return MeAnswer(user=user, unread_notifications=notifications, unread_messages=messages)


async def unread_count_answer(request: web.Request, kind: str) -> web.Response:
    """``GET /{kind}/unread_count``: one Redis round trip when warm, the token and the count
    read together."""
    cache = request.app[STORES].cache
    principal, prefetched = await authenticate_reading(
        request, lambda user_id: unread_values(cache, user_id, (kind,)))
    (count,) = await read_unread_counts(request.app[STORES].db, cache, principal.user_id,
                                        (kind,), prefetched)
    return json_answer(Count(count=count))
