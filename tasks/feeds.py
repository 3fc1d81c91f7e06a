"""Putting posts into home feeds, and taking them out: the writes behind ``cache.feeds``.

A new post is one ``fanout`` outbox row in the post's transaction; the queue then adds it to
the Redis feed of each follower seen in the last ``FEED_ACTIVE_DAYS``, a batch at a time (the
followers read in the batch's transaction, Redis written after its commit). Authors with more
than ``FEED_FANOUT_MAX_FOLLOWERS`` followers are not fanned out: readers merge their posts in.
The author's own feed gets the post right after the request commits.

Redis writes never fail the request that made the change: Redis holds copies, and each feed
page is checked against PostgreSQL anyway, so a removal Redis missed is harmless. An addition
it missed is not: it owes a cache epoch bump (cache/feeds.py), after which feeds are rebuilt,
and a fan-out batch that Redis could not take fails, so the outbox retries it with backoff.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from cache.client import CacheUnavailable
from cache.feeds import FEED_SIZE, Entry, add_to_feeds, entry_of, remove_from_feed
from sql import feeds
from sql.db import Row
from sql.social import list_active_followers_txn
from tasks.fanout import enqueue_fanout_txn
from tasks.work import Stores, Work

log = logging.getLogger(__name__)

FEED_FANOUT = "feed"


async def publish_post_txn(work: Work, post: Row) -> None:
    """Queue the fan-out to followers' feeds; the author's own feed right after commit."""
    if post.get("has_followers", True):
        await enqueue_fanout_txn(work, FEED_FANOUT,
                                 {"author_id": post["user_id"], "post_id": post["id"]},
                                 f"feed:post:{post['id']}")
    entry = entry_of(post["created_at"], post["id"])
    work.after_commit(partial(_quietly, add_to_feeds, work.stores.cache, [post["user_id"]],
                              [entry]))


async def enqueue_author_merge_txn(work: Work, author_id: int) -> None:
    """Put the author's recent posts into every active follower's feed (an author who just
    fell to the fan-out limit: posts made above it were merged at read time, not fanned out)."""
    await enqueue_fanout_txn(work, FEED_FANOUT, {"author_id": author_id},
                             f"feed:author:{author_id}:{uuid.uuid4().hex}")


class FeedFanout:
    """The ``feed`` fan-out handler: one batch of followers per call."""

    def __init__(self, max_followers: int, active_days: int) -> None:
        self.max_followers = max_followers
        self.active_days = active_days

    async def __call__(self, work: Work, args: dict[str, Any], after: Any,
                       batch_size: int) -> Any:
        post_id = args.get("post_id")
        rows = await feeds.author_entries(work.cur, args["author_id"], post_id=post_id,
                                          limit=FEED_SIZE)
        if not rows:
            return None  # the post was deleted meanwhile
        if post_id is not None and rows[0]["followers_count"] > self.max_followers:
            return None  # merged at read time instead
        position = None if after is None else (datetime.fromisoformat(after[0]), after[1])
        followers = await list_active_followers_txn(
            work.cur, args["author_id"], after=position, active_days=self.active_days,
            limit=batch_size)
        # Written before the batch's progress commits, so a batch Redis could not take raises
        # (CacheUnavailable) and is retried; the transaction has only read, and holds no lock.
        await add_to_feeds(work.stores.cache, [row["follower_id"] for row in followers],
                           _entries(rows))
        if len(followers) < batch_size:
            return None
        return [followers[-1]["created_at"].isoformat(), followers[-1]["follower_id"]]


def merge_author_after_commit(work: Work, follower_id: int, author_id: int) -> None:
    """A new follow: the author's recent posts join the follower's feed."""
    work.after_commit(partial(_quietly, _merge_author, work.stores, follower_id, author_id))


async def follows_removed_txn(work: Work, removed: Sequence[Row], max_followers: int) -> None:
    """Unfollow or block: the author's posts leave the ex-follower's feed after commit."""
    for row in removed:
        work.after_commit(partial(_quietly, _drop_author, work.stores, row["follower_id"],
                          row["followed_id"]))
        if row["followers_count"] == max_followers:  # just fell back to fan-out
            await enqueue_author_merge_txn(work, row["followed_id"])


def _entries(rows: Sequence[Row]) -> list[Entry]:
    return [entry_of(row["created_at"], row["id"]) for row in rows]


async def _merge_author(stores: Stores, follower_id: int, author_id: int) -> None:
    rows = await feeds.author_entries(stores.db, author_id, post_id=None, limit=FEED_SIZE)
    await add_to_feeds(stores.cache, [follower_id], _entries(rows))


async def _drop_author(stores: Stores, follower_id: int, author_id: int) -> None:
    if stores.cache.breaker.is_open:
        return  # a removal Redis misses is harmless: pages are filtered through PostgreSQL
    rows = await feeds.author_entries(stores.db, author_id, post_id=None, limit=FEED_SIZE)
    await remove_from_feed(stores.cache, follower_id, [row["id"] for row in rows])


async def _quietly(action: Callable[..., Awaitable[None]], *args: Any) -> None:
    """Feeds are copies: a failure after commit is logged, never the committed write's error.
    Redis being unavailable is expected, and already made good by the epoch bump owed."""
    try:
        await action(*args)
    except CacheUnavailable:
        log.info("feed update %s deferred: Redis unavailable", action.__name__)
    except Exception:
        log.exception("feed update %s failed after commit", action.__name__)
