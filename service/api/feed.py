"""GET /feed: the caller's and their followed authors' posts, newest first.

Which posts: the caller's Redis feed (cache/feeds.py) names the candidates, newest first; a
missing feed is rebuilt from PostgreSQL in one query. One query then hydrates them with their
authors' profiles, re-checks each against the follows as they are now (a primary-key lookup
per post), and adds the newest posts of the followed authors too big to fan out. Below the
cached ids (or with Redis down) the page comes from PostgreSQL by keyset, in the same order
and with the same columns, so paging is the same whichever way a page is answered.

Queries per page: 1 on a cache hit, 2 on a rebuild, 1 with Redis down; one more for a page
reaching past the cached ids. A cache hit is one Redis round trip in all: the feed is read in
the pipeline that checks the caller's token (two on a Redis Cluster, where one MGET cannot
span the slots).
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from cache.feeds import (
    FEED_SIZE,
    Entry,
    FeedSlice,
    created_at_of,
    entry_of,
    feed_slice_of,
    fill_feed,
    queue_feed_read,
    read_feed,
    remove_from_feed,
    slice_entries,
)
from service.api.answers import hydrated_post_page
from service.api.schemas import PageQuery
from service.appkeys import SETTINGS, STORES
from service.authn import authenticate, authenticate_pipelined
from service.errors import ApiError
from service.responses import json_answer
from service.validation import decode_cursor, decode_query
from sql import feeds
from sql.db import Row
from tasks.work import Stores

# Cached ids read beyond the page, so a few deleted or unfollowed ones rarely shorten it.
SLACK = 10


async def get_feed(request: web.Request) -> web.Response:
    try:
        query = decode_query(request.query, PageQuery)
        before = decode_cursor(query.cursor, datetime, int) if query.cursor else None
    except ApiError:
        await authenticate(request)  # a caller without a valid token gets 401 first
        raise
    stores = request.app[STORES]
    cursor = entry_of(*before) if before else None
    want = query.limit + 1
    count = want + SLACK
    # The cached page is read in the token's round trip: a warm page is one Redis round trip.
    principal, answers = await authenticate_pipelined(request, lambda user_id, pipe: (
        queue_feed_read(pipe, stores.cache, user_id, cursor, count)))
    cached: FeedSlice | None
    if answers is not None:
        cached = feed_slice_of(stores.cache, answers, cursor, count)
    else:  # not read with the token (its user hint was not the caller's), or Redis is down
        cached = await read_feed(stores.cache, principal.user_id, cursor, count)
    rows = await load_feed(stores, principal.user_id, before, want,
                           request.app[SETTINGS].feed_fanout_max_followers, cached)
    return json_answer(hydrated_post_page(rows, query.limit))


async def load_feed(stores: Stores, viewer_id: int, before: tuple[datetime, int] | None,
                    want: int, max_followers: int, cached: FeedSlice | None
                    ) -> list[Row]:
    """Up to ``want`` post rows of the feed older than ``before``, newest first, from the
    feed's ``cached`` slice (None when Redis is unavailable)."""
    cursor = entry_of(*before) if before else None
    if cached is None:
        return await feeds.feed_page(stores.db, viewer_id, before=before, limit=want)
    if cached.missing:
        cached = await _rebuild(stores, viewer_id, cached.generation, cursor, want + SLACK)
    if not cached.entries and not cached.complete:  # the page starts below the cached ids
        return await feeds.feed_page(stores.db, viewer_id, before=before, limit=want)
    return await _from_cached(stores, viewer_id, cached, cursor, want, max_followers)


async def _rebuild(stores: Stores, viewer_id: int, generation: str, cursor: Entry | None,
                   count: int) -> FeedSlice:
    rows = await feeds.rebuild_feed(stores.db, viewer_id, FEED_SIZE)
    entries = [entry_of(row["created_at"], row["id"]) for row in rows]
    complete = len(entries) < FEED_SIZE
    await fill_feed(stores.cache, viewer_id, generation, entries, complete)
    return slice_entries(entries, complete, cursor, count)


async def _from_cached(stores: Stores, viewer_id: int, cached: FeedSlice,
                       cursor: Entry | None, want: int, max_followers: int) -> list[Row]:
    ids = [post_id for _, post_id in cached.entries]
    before = None if cursor is None else (created_at_of(cursor), cursor[1])
    rows = await feeds.feed_candidates(stores.db, viewer_id, ids, before=before, limit=want,
                                       max_followers=max_followers)
    found = {row["id"] for row in rows}
    if deleted := [post_id for post_id in ids if post_id not in found]:
        await remove_from_feed(stores.cache, viewer_id, deleted, bump=False)
    rows = sorted((row for row in rows if row["in_feed"]), key=_entry, reverse=True)
    if cached.complete:
        return rows[:want]
    # Only down to the lowest cached id is the cache known to hold every post; below, ask
    # PostgreSQL for the rest of the page.
    lowest = cached.entries[-1]
    rows = [row for row in rows if _entry(row) >= lowest][:want]
    if len(rows) < want:
        rows += await feeds.feed_page(stores.db, viewer_id, limit=want - len(rows),
                                      before=(created_at_of(lowest), lowest[1]))
    return rows


def _entry(row: Row) -> Entry:
    return entry_of(row["created_at"], row["id"])
