"""A short-lived copy of "which user does this token belong to".

Revocation writes a tombstone instead of deleting, and a fill never replaces a tombstone: a
request that read the token from PostgreSQL just before it was revoked cannot put it back into
the cache. Entries are stamped with the cache epoch (cache/epoch.py), read in the same round
trip: a tombstone Redis missed is made good by an epoch bump, after which the old entry is a
miss and PostgreSQL, where the token is gone, answers. The fill script touches the token's key
alone, so it runs unchanged on a Redis Cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis

from cache.client import Cache, CacheUnavailable, get_many, is_cluster, pipeline
from cache.epoch import stamp, unstamp
from cache.keys import TOKEN_TTL_SECONDS, VersionedKey, spread
from cache.live import publish_revoked
from cache.versioned import Cached, cached_entries, value_and_generation_names

REVOKED = "revoked"
# Longer than any request can run, so a slow reader's fill always meets the tombstone.
TOMBSTONE_TTL_SECONDS = 600

# KEYS: token. ARGV: epoch the reader saw, stamped value, ttl, REVOKED.
# Refused over a tombstone and over an entry of the reader's epoch. The epoch is not re-read
# here (it lives in another slot on a cluster): a fill made under an epoch bumped meanwhile
# carries the old stamp, so readers take it for a miss.
FILL_TOKEN = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[4] then return 0 end
if current and string.sub(current, 1, #ARGV[1] + 1) == ARGV[1] .. '/' then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


@dataclass(frozen=True)
class CachedToken:
    principal: dict[str, Any] | None = None  # None: a miss
    revoked: bool = False
    epoch: str | None = None  # the epoch to fill with; None: Redis unavailable, do not fill
    # The recent-write marker asked for (cache/recent_writes.py); None: not asked, or Redis
    # unavailable.
    wrote_recently: bool | None = None


async def get_cached_token(cache: Cache, token_hash_hex: str) -> CachedToken:
    """The cached principal or tombstone, with the epoch, in one round trip."""
    token, _, _ = await read_token_with(cache, token_hash_hex, ())
    return token


# Adds a request's other Redis reads to the token's pipeline.
QueueReads = Callable[[Any], None]


async def read_token_with(cache: Cache, token_hash_hex: str, keys: Sequence[VersionedKey],
                          marker: str | None = None, queue_reads: QueueReads | None = None
                          ) -> tuple[CachedToken, list[Cached] | None, list[Any] | None]:
    """The token's cached principal and, in the same round trip, the versioned ``keys`` the
    request will read (for the user the token names: see ``service.tokens.user_hint``),
    whether the recent-write ``marker`` is set, and the answers to the commands
    ``queue_reads`` adds; the last two are None when Redis is unavailable. Without
    ``queue_reads``, one MGET: nothing here needs MULTI."""
    names = [cache.keys.token(token_hash_hex), cache.keys.epoch(),
             *value_and_generation_names(keys)]
    if marker:
        names.append(marker)
    answers = await cache.run_or(lambda client: _get_many_and(client, names, queue_reads), None)
    if answers is None:
        cache.count(hit=False)
        return CachedToken(), None, None
    raw, more = answers
    wrote = raw.pop() is not None if marker else None
    value, epoch = raw[0], raw[1] or ""
    entries = cached_entries(cache, epoch, raw[2:])
    if value == REVOKED:
        cache.count(hit=True)
        return CachedToken(revoked=True, epoch=epoch, wrote_recently=wrote), entries, more
    payload = unstamp(value, epoch)
    cache.count(hit=payload is not None)
    return CachedToken(json.loads(payload) if payload else None, epoch=epoch,
                       wrote_recently=wrote), entries, more


async def _get_many_and(client: redis.Redis, names: list[str], queue_reads: QueueReads | None
                        ) -> tuple[list[str | None], list[Any] | None]:
    if queue_reads is None:
        return await get_many(client, names), None
    pipe = pipeline(client)
    if is_cluster(client):  # a cluster's MGET cannot span slots: the reads go on their own
        queue_reads(pipe)
        return await get_many(client, names), await pipe.execute()
    pipe.mget(names)
    queue_reads(pipe)
    first, *more = await pipe.execute()
    return first, more


async def fill_cached_token(cache: Cache, token_hash_hex: str, epoch: str,
                            principal: dict[str, Any]) -> None:
    """Store what PostgreSQL said, unless revoked meanwhile or the epoch moved."""
    key = cache.keys.token(token_hash_hex)
    value = stamp(epoch, json.dumps(principal))
    await cache.run_or(
        lambda client: client.eval(FILL_TOKEN, 1, key, epoch, value, spread(TOKEN_TTL_SECONDS),
                                   REVOKED),
        None,
    )


async def revoke_cached_tokens(cache: Cache, token_hashes_hex: Iterable[str]) -> None:
    """After commit: tombstones, and the notice that ends the tokens' live streams in every
    process; if Redis cannot take them, owe an epoch bump instead (the streams' own check of
    their tokens ends them then: service/live.py)."""
    hashes = list(token_hashes_hex)
    keys = [cache.keys.token(token_hash) for token_hash in hashes]
    if not keys:
        return

    async def write_tombstones(client: redis.Redis) -> None:
        pipe = pipeline(client)
        for key in keys:
            pipe.set(key, REVOKED, ex=TOMBSTONE_TTL_SECONDS)
        await pipe.execute()
        await publish_revoked(cache, client, hashes)

    try:
        await cache.run(write_tombstones)
    except CacheUnavailable:
        cache.missed_invalidation()
