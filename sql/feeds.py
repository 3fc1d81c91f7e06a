"""The home feed's queries: rebuilding a cached feed, pages from PostgreSQL, hydration.

Every query reads posts through posts_user_created_idx, one range per author, so a feed costs
what the followed authors' newest posts cost, never a scan of posts.
"""

from __future__ import annotations

from functools import cache

from sql.db import Cursor, Database, Prepared, Row
from sql.posts import BEFORE, BLOCKED_VIEWER, FOLLOWED_AUTHOR, HYDRATED_COLUMNS, Before

# Whose posts a feed shows: the viewer's own and those of everyone they follow. A block
# removes follows both ways and forbids new ones, so blocked authors are never in this set.
FEED_AUTHORS = """
    (SELECT %(viewer_id)s::bigint AS user_id
     UNION ALL
     SELECT f.followed_id FROM follows f WHERE f.follower_id = %(viewer_id)s) AS a
"""
# At most `limit` posts per author, each from one index range, then the newest `limit` overall.
FEED_ENTRIES = f"""
    SELECT p.id, p.created_at
    FROM {FEED_AUTHORS}
    CROSS JOIN LATERAL (
        SELECT p.id, p.created_at FROM posts p
        WHERE p.user_id = a.user_id AND {BEFORE}
        ORDER BY p.created_at DESC, p.id DESC
        LIMIT %(limit)s
    ) AS p
    ORDER BY p.created_at DESC, p.id DESC
    LIMIT %(limit)s
"""
REBUILD_FEED = FEED_ENTRIES
FEED_PAGE = f"""
    SELECT {HYDRATED_COLUMNS}
    FROM ({FEED_ENTRIES}) AS e
    JOIN posts p ON p.id = e.id
    {FOLLOWED_AUTHOR}
    ORDER BY p.created_at DESC, p.id DESC
"""


# One post as the viewer sees it, author included; absent for a blocked pair.
HYDRATED_POST = f"""
    SELECT {HYDRATED_COLUMNS}
    FROM posts p
    {FOLLOWED_AUTHOR}
    WHERE p.id = %(post_id)s AND NOT {BLOCKED_VIEWER}
"""


async def hydrated_post(db: Database, post_id: int, viewer_id: int) -> Row | None:
    """A post with its author's profile as ``author_`` columns, in one query."""
    return await db.fetch_one(HYDRATED_POST, {"post_id": post_id, "viewer_id": viewer_id})


async def rebuild_feed(db: Database, viewer_id: int, limit: int) -> list[Row]:
    """The feed's newest ``(id, created_at)`` from PostgreSQL, in one query."""
    return await db.fetch_all(REBUILD_FEED, {"viewer_id": viewer_id, "limit": limit,
                                             "before_created_at": None, "before_id": None})


async def feed_page(db: Database, viewer_id: int, *, before: Before, limit: int) -> list[Row]:
    """A page of the feed straight from PostgreSQL (Redis down, or beyond the cached ids)."""
    before_created_at, before_id = before or (None, None)
    return await db.fetch_all(FEED_PAGE, {
        "viewer_id": viewer_id, "limit": limit, "before_created_at": before_created_at,
        "before_id": before_id})


# A cached page in one query: the cached ids, plus the newest posts of followed authors too
# big to fan out (merged at read time), with their authors and ``liked_by_me``. Each row's
# follow is re-checked by its primary key (``in_feed``: a lingering entry of an author no
# longer followed is not shown); a cached id without a row was deleted. The big authors are
# the few users above the limit (users_followers_count_idx), each checked against follows by
# its primary key, so neither part reads the viewer's whole follow list; the merge is bounded
# by the page.
#
# Prepared: planning it cost as much as running it. So that one generic plan fits every
# viewer, the follower limit (a setting) is written into the text, where the planner sees how
# few users are above it, and a first page and a later one are separate statements.
@cache
def feed_candidates_query(max_followers: int, *, later_page: bool) -> Prepared:
    before = ("AND (p.created_at, p.id) < (%(before_created_at)s, %(before_id)s)"
              if later_page else "")
    return Prepared(f"feed_candidates_{int(max_followers)}_{'later' if later_page else 'first'}",
                    f"""
    SELECT {HYDRATED_COLUMNS}, (p.user_id = %(viewer_id)s OR fa.yes IS NOT NULL) AS in_feed
    FROM posts p
    {FOLLOWED_AUTHOR}
    WHERE p.id IN (
        SELECT unnest(%(ids)s::bigint[])
        UNION ALL
        (SELECT c.id
         FROM users big
         CROSS JOIN LATERAL (
             SELECT p.id, p.created_at FROM posts p
             WHERE p.user_id = big.id {before}
             ORDER BY p.created_at DESC, p.id DESC
             LIMIT %(limit)s
         ) AS c
         CROSS JOIN LATERAL (
             SELECT FROM follows f
             WHERE f.follower_id = %(viewer_id)s AND f.followed_id = big.id
             LIMIT 1
         ) AS followed
         WHERE big.followers_count > {int(max_followers)}
         ORDER BY c.created_at DESC, c.id DESC
         LIMIT %(limit)s))
""")


async def feed_candidates(db: Database, viewer_id: int, ids: list[int], *, before: Before,
                          limit: int, max_followers: int) -> list[Row]:
    query = feed_candidates_query(max_followers, later_page=before is not None)
    before_created_at, before_id = before or (None, None)
    return await db.fetch_all(query, {
        "viewer_id": viewer_id, "ids": ids, "before_created_at": before_created_at,
        "before_id": before_id, "limit": limit})


# One author's newest posts (or just one of them) with the author's follower count: what a
# fan-out or a new follow puts into feeds, and what an unfollow takes out.
AUTHOR_ENTRIES = """
    SELECT p.id, p.created_at, u.followers_count
    FROM users u
    JOIN LATERAL (
        SELECT p.id, p.created_at FROM posts p
        WHERE p.user_id = u.id AND (%(post_id)s::bigint IS NULL OR p.id = %(post_id)s)
        ORDER BY p.created_at DESC, p.id DESC
        LIMIT %(limit)s
    ) AS p ON true
    WHERE u.id = %(author_id)s
"""


async def author_entries(source: Cursor | Database, author_id: int, *, post_id: int | None,
                         limit: int) -> list[Row]:
    return await source.fetch_all(AUTHOR_ENTRIES, {"author_id": author_id, "post_id": post_id,
                                                   "limit": limit})
