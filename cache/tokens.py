"""A short-lived copy of "which user does this token belong to".

Revocation writes a tombstone instead of deleting, and fills use SET NX: a request that read
the token from PostgreSQL just before it was revoked cannot put it back into the cache.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis.asyncio as redis

from cache.client import Cache, pipeline
from cache.keys import TOKEN_TTL_SECONDS

REVOKED = "revoked"
# Longer than any request can run, so a slow reader's fill always meets the tombstone.
TOMBSTONE_TTL_SECONDS = 600


async def get_cached_token(cache: Cache, token_hash_hex: str) -> dict[str, Any] | str | None:
    """The cached principal, ``REVOKED``, or None on a miss (or Redis down)."""
    raw = await cache.run_or(lambda client: client.get(cache.keys.token(token_hash_hex)), None)
    cache.count(hit=raw is not None)
    if raw is None or raw == REVOKED:
        return raw
    value: dict[str, Any] = json.loads(raw)
    return value


async def fill_cached_token(cache: Cache, token_hash_hex: str, principal: dict[str, Any]) -> None:
    key = cache.keys.token(token_hash_hex)
    await cache.run_or(
        lambda client: client.set(key, json.dumps(principal), ex=TOKEN_TTL_SECONDS, nx=True),
        None,
    )


async def revoke_cached_tokens(cache: Cache, token_hashes_hex: Iterable[str]) -> None:
    keys = [cache.keys.token(token_hash) for token_hash in token_hashes_hex]
    if not keys:
        return

    async def write_tombstones(client: redis.Redis) -> None:
        pipe = pipeline(client)
        for key in keys:
            pipe.set(key, REVOKED, ex=TOMBSTONE_TTL_SECONDS)
        await pipe.execute()

    await cache.run_or(write_tombstones, None)
