"""Home feeds in Redis: one sorted set of post ids per user, newest first, capped.

Score = the post's ``created_at`` in epoch microseconds (exact in a double), member = the post
id zero-padded to 19 digits, so Redis's own order (score, then member bytes) is exactly the
API's ``(created_at, id)`` order, ties included.

The invariant every write keeps: a feed holds *every* post of its authors that is at least as
new as its lowest entry (fan-out skips authors merged at read time). Below that the service
reads PostgreSQL. A feed that holds its whole history carries ``COMPLETE`` (score -inf, so
the cap trims it first), which also lets an empty feed exist. Entries are added only when
not below the lowest entry of an incomplete feed, and trimming only removes the oldest.

Writes never create a feed; they bump its generation, so a rebuild that read PostgreSQL
before the write cannot store its older result afterwards (``FILL`` refuses). Entries of a
deleted post or of an author no longer followed may linger: the service filters every page
through PostgreSQL, so they are never shown, and a removal Redis missed is harmless.

An addition Redis missed is not: the post would stay out of the feed until its TTL. So a
failed addition owes a cache epoch bump (cache/epoch.py), and a feed records the epoch it was
rebuilt under (``feed_epoch`` key): once the epoch moves the feed reads as missing and is
rebuilt from PostgreSQL, replacing the old set. Fan-outs are also retried through the outbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as redis

from cache.client import Cache, CacheUnavailable, is_cluster, pipeline
from cache.epoch import split_version, version_of
from cache.keys import FEED_TTL_SECONDS, spread

FEED_SIZE = 800  # entries per feed, COMPLETE included
COMPLETE = "0" * 19  # no post has id 0
# Outlives any rebuild in flight (PostgreSQL's statement timeout is far shorter).
GENERATION_TTL_SECONDS = 600
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

Entry = tuple[int, int]  # (created_at in epoch microseconds, post id); tuples sort like the API

# KEYS: feed, generation. ARGV: size, generation ttl, COMPLETE, then score, member pairs.
ADD_ENTRIES = """
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local lowest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local complete = lowest[1] == ARGV[3]
local floor = tonumber(lowest[2])
local accepted = {}
for i = 4, #ARGV, 2 do
    local score = tonumber(ARGV[i])
    if complete or score > floor or (score == floor and ARGV[i + 1] >= lowest[1]) then
        accepted[#accepted + 1] = ARGV[i]
        accepted[#accepted + 1] = ARGV[i + 1]
    end
end
if #accepted > 0 then
    redis.call('ZADD', KEYS[1], unpack(accepted))
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[1]) + 1))
end
return #accepted / 2
"""

# KEYS: feed, generation, feed epoch (one hash slot). ARGV: generation and epoch seen before
# reading PostgreSQL, ttl, '1' when the entries are the whole history, COMPLETE, then score,
# member pairs. A feed of another epoch is replaced; one of the reader's epoch is kept. The
# cache epoch itself is not re-read here (another slot on a cluster): a rebuild racing a bump
# records the old epoch, so readers take the feed for missing and rebuild it again.
FILL = """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
local epoch = ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 1 and (redis.call('GET', KEYS[3]) or '') == epoch then
    return 0
end
redis.call('DEL', KEYS[1])
if ARGV[4] == '1' then redis.call('ZADD', KEYS[1], '-inf', ARGV[5]) end
if #ARGV > 5 then redis.call('ZADD', KEYS[1], unpack(ARGV, 6)) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[3], epoch, 'EX', ARGV[3])
return 1
"""


def entry_of(created_at: datetime, post_id: int) -> Entry:
    return (created_at - EPOCH) // MICROSECOND, post_id


def created_at_of(entry: Entry) -> datetime:
    return EPOCH + entry[0] * MICROSECOND


def _member(post_id: int) -> str:
    return f"{post_id:019d}"


def _pairs(entries: Iterable[Entry]) -> list[str]:
    return [value for score, post_id in entries for value in (str(score), _member(post_id))]


@dataclass(frozen=True)
class FeedSlice:
    """Up to ``count`` entries before the cursor, newest first."""

    entries: list[Entry]
    complete: bool  # nothing older exists: no need to look in PostgreSQL
    missing: bool = False  # no current cached feed: rebuild it, filling with ``generation``
    generation: str = ""  # the version (epoch and generation) to fill with


def slice_entries(entries: Sequence[Entry], complete: bool, before: Entry | None,
                  count: int) -> FeedSlice:
    """The slice of a newest-first list (e.g. a fresh rebuild) that a page reads."""
    older = [entry for entry in entries if before is None or entry < before]
    return FeedSlice(older[:count], complete and len(older) <= count)


async def read_feed(cache: Cache, user_id: int, before: Entry | None,
                    count: int) -> FeedSlice | None:
    """One round trip; None when Redis is unavailable."""

    async def read(client: redis.Redis) -> list[Any]:
        pipe = pipeline(client)
        queue_feed_read(pipe, cache, user_id, before, count)
        result: list[Any] = await pipe.execute()
        return result

    try:
        raw = await cache.run(read)
    except CacheUnavailable:
        return None
    return feed_slice_of(cache, raw, before, count)


def queue_feed_read(pipe: Any, cache: Cache, user_id: int, before: Entry | None,
                    count: int) -> None:
    """The commands that read a feed page, added to ``pipe`` (``feed_slice_of`` reads their
    answers). A plain pipeline, no MULTI/EXEC: a write landing between these reads is
    harmless, as every page is re-checked in PostgreSQL, and a fill is refused unless the
    generation and epoch read here are still current."""
    key = cache.keys.feed(user_id)
    pipe.exists(key.value)
    pipe.get(key.generation)
    pipe.get(cache.keys.epoch())
    pipe.get(cache.keys.feed_epoch(user_id))
    if before is None:
        pipe.zrevrangebyscore(key.value, "+inf", "-inf", start=0, num=count + 1,
                              withscores=True)
    else:  # the cursor's own score (ties, usually just the cursor's post), then older
        pipe.zrevrangebyscore(key.value, before[0], before[0], withscores=True)
        pipe.zrevrangebyscore(key.value, f"({before[0]}", "-inf", start=0, num=count + 1,
                              withscores=True)


def feed_slice_of(cache: Cache, raw: Sequence[Any], before: Entry | None,
                  count: int) -> FeedSlice:
    """The page that the answers to ``queue_feed_read``'s commands hold."""
    epoch = raw[2] or ""
    current = bool(raw[0]) and (raw[3] or "") == epoch
    cache.count(hit=current)
    if not current:
        return FeedSlice([], False, missing=True, generation=version_of(epoch, raw[1] or ""))
    entries: list[Entry] = []
    complete = False
    for member, score in (pair for part in raw[4:] for pair in part):
        if member == COMPLETE:
            complete = True
            break
        entries.append((int(score), int(member)))
    return slice_entries(entries, complete, before, count)


async def fill_feed(cache: Cache, user_id: int, version: str, entries: Sequence[Entry],
                    complete: bool) -> None:
    """Store a rebuild, unless the feed changed (or was filled) since ``version`` was read."""
    key = cache.keys.feed(user_id)
    ttl = spread(FEED_TTL_SECONDS, 0.9, 1.1)
    epoch, generation = split_version(version)
    args: list[str | int] = [generation, epoch, ttl, "1" if complete else "0", COMPLETE,
                             *_pairs(entries)]
    keys = [key.value, key.generation, cache.keys.feed_epoch(user_id)]
    await cache.run_or(lambda client: client.register_script(FILL)(keys=keys, args=args), None)


async def add_to_feeds(cache: Cache, user_ids: Iterable[int], entries: Sequence[Entry]) -> None:
    """Add the entries to each existing feed (one round trip), capped at ``FEED_SIZE``.

    Raises CacheUnavailable when Redis cannot take them, having noted the epoch bump owed."""
    users = list(user_ids)
    if not users or not entries:
        return
    args: list[str | int] = [FEED_SIZE, GENERATION_TTL_SECONDS, COMPLETE, *_pairs(entries)]

    async def add(client: redis.Redis) -> None:
        # redis-py's cluster pipeline refuses EVALSHA, so there each feed's call carries the
        # script (the node compiles it once and caches it); one Redis gets it loaded once.
        cluster = is_cluster(client)
        sha = "" if cluster else await client.script_load(ADD_ENTRIES)
        async with pipeline(client) as pipe:
            for user_id in users:
                key = cache.keys.feed(user_id)
                if cluster:
                    pipe.eval(ADD_ENTRIES, 2, key.value, key.generation, *args)
                else:
                    pipe.evalsha(sha, 2, key.value, key.generation, *args)
            await pipe.execute()

    try:
        await cache.run(add)
    except CacheUnavailable:
        cache.missed_invalidation()
        raise


async def remove_from_feed(cache: Cache, user_id: int, post_ids: Iterable[int], *,
                           bump: bool = True) -> None:
    """Take posts out of a feed. ``bump=False`` only for posts that no longer exist, which no
    concurrent rebuild can bring back into a page."""
    members = [_member(post_id) for post_id in post_ids]
    key = cache.keys.feed(user_id)

    async def remove(client: redis.Redis) -> None:
        pipe = pipeline(client)
        if bump:
            pipe.incr(key.generation)
            pipe.expire(key.generation, GENERATION_TTL_SECONDS)
        if members:
            pipe.zrem(key.value, *members)
        await pipe.execute()

    if members or bump:
        await cache.run_or(remove, None)
