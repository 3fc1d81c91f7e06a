"""The social graph: follows and blocks, with the followers/following counters kept in step.

A follow and a block of the same pair must never both stand. Follow and block therefore both
start by locking the two users' rows (in id order, so they cannot deadlock), and only then
read ``blocks``: whichever commits second sees the other's rows.
"""

from __future__ import annotations

from datetime import datetime

from sql.db import Cursor, Database, Row

Before = tuple[datetime, int] | None

LOCK_PAIR = """
    SELECT id FROM users
    WHERE id IN (%(user_id)s, %(other_id)s) AND suspended_at IS NULL
    ORDER BY id
    FOR NO KEY UPDATE
"""


async def lock_pair_txn(cur: Cursor, user_id: int, other_id: int) -> bool:
    """Lock both users' rows for the transaction; False when ``other_id`` is no live user."""
    rows = await cur.fetch_all(LOCK_PAIR, {"user_id": user_id, "other_id": other_id})
    return any(row["id"] == other_id for row in rows)


# Either user blocking the other, as a condition on two SQL expressions ``{a}`` and ``{b}``
# (posts, likes, comments and notifications put it in their WHERE). Each arm names both
# columns of the blocks primary key, so it is two primary-key lookups whichever way it goes.
BLOCKED_PAIR = """
    EXISTS (SELECT 1 FROM blocks b
            WHERE (b.blocker_id = {a} AND b.blocked_id = {b})
               OR (b.blocker_id = {b} AND b.blocked_id = {a}))
"""
SELECT_BLOCKED = f"SELECT {BLOCKED_PAIR.format(a='%(a)s', b='%(b)s')}"

# Whether ``{follower}`` follows ``{followed}`` (SQL expressions), as ``{alias}.yes`` (NULL when
# not), joined to each row of a page. A LATERAL with LIMIT is never flattened into a join, so
# it stays one primary-key lookup per row; a plain join, or an EXISTS in the select list, may
# be planned as a read of the follower's whole follow list into a hash.
FOLLOWS_LOOKUP = """
    LEFT JOIN LATERAL (
        SELECT true AS yes FROM follows f
        WHERE f.follower_id = {follower} AND f.followed_id = {followed}
        LIMIT 1
    ) AS {alias} ON true
"""


async def blocked_between_txn(cur: Cursor, a: int, b: int) -> bool:
    """Whether either user blocks the other (messages and comments check this too)."""
    return bool(await cur.fetch_value(SELECT_BLOCKED, {"a": a, "b": b}))


# The counters move only when a row was really inserted, in the same statement.
INSERT_FOLLOW = """
    WITH inserted AS (
        INSERT INTO follows (follower_id, followed_id)
        VALUES (%(follower_id)s, %(followed_id)s)
        ON CONFLICT DO NOTHING
        RETURNING follower_id, followed_id
    ), followed AS (
        UPDATE users SET followers_count = followers_count + 1
        WHERE id IN (SELECT followed_id FROM inserted)
    ), follower AS (
        UPDATE users SET following_count = following_count + 1
        WHERE id IN (SELECT follower_id FROM inserted)
    )
    SELECT count(*) > 0 FROM inserted
"""


async def insert_follow_txn(cur: Cursor, follower_id: int, followed_id: int) -> bool:
    """True when the follow is new, False when it already existed."""
    return bool(await cur.fetch_value(INSERT_FOLLOW, {"follower_id": follower_id,
                                                      "followed_id": followed_id}))


# One UPDATE per user with summed deltas: a block removes both directions, and one statement
# may not update the same users row twice.
DELETE_FOLLOWS = """
    WITH removed AS (
        DELETE FROM follows
        WHERE (follower_id = %(follower_id)s AND followed_id = %(followed_id)s)
           OR (%(both_ways)s AND follower_id = %(followed_id)s AND followed_id = %(follower_id)s)
        RETURNING follower_id, followed_id
    ), deltas AS (
        SELECT id, sum(lost_followers) AS lost_followers, sum(lost_following) AS lost_following
        FROM (SELECT followed_id AS id, 1 AS lost_followers, 0 AS lost_following FROM removed
              UNION ALL
              SELECT follower_id, 0, 1 FROM removed) AS d
        GROUP BY id
    ), changed AS (
        UPDATE users u SET followers_count = u.followers_count - d.lost_followers,
                           following_count = u.following_count - d.lost_following
        FROM deltas d WHERE u.id = d.id
        RETURNING u.id, u.followers_count
    )
    SELECT r.follower_id, r.followed_id, c.followers_count
    FROM removed r JOIN changed c ON c.id = r.followed_id
"""


async def delete_follows_txn(cur: Cursor, follower_id: int, followed_id: int, *,
                             both_ways: bool = False) -> list[Row]:
    """Remove the follow (and the reverse one with ``both_ways``); the removed pairs, each
    with the followed user's new ``followers_count``."""
    return await cur.fetch_all(DELETE_FOLLOWS, {
        "follower_id": follower_id, "followed_id": followed_id, "both_ways": both_ways})


INSERT_BLOCK = """
    INSERT INTO blocks (blocker_id, blocked_id) VALUES (%(blocker_id)s, %(blocked_id)s)
    ON CONFLICT DO NOTHING
    RETURNING blocker_id
"""


async def insert_block_txn(cur: Cursor, blocker_id: int, blocked_id: int) -> bool:
    """True when the block is new."""
    return await cur.fetch_value(INSERT_BLOCK, {"blocker_id": blocker_id,
                                                "blocked_id": blocked_id}) is not None


DELETE_BLOCK = """
    DELETE FROM blocks WHERE blocker_id = %(blocker_id)s AND blocked_id = %(blocked_id)s
"""


async def delete_block(db: Database, blocker_id: int, blocked_id: int) -> None:
    await db.execute(DELETE_BLOCK, {"blocker_id": blocker_id, "blocked_id": blocked_id})


# People lists, newest first on (created_at, other user's id), served by
# follows_followed_created_idx / follows_follower_created_idx / blocks_blocker_created_idx.
# The owner is the outer row, so an unknown owner (404) and an empty page differ.
PEOPLE_PAGE = """
    SELECT o.id AS owner_id, x.user_id, x.created_at
    FROM users o
    LEFT JOIN LATERAL (
        SELECT t.{other} AS user_id, t.created_at
        FROM {table} t
        JOIN users v ON v.id = t.{other} AND v.suspended_at IS NULL
        WHERE t.{owner} = o.id
          AND (%(before_created_at)s::timestamptz IS NULL
               OR (t.created_at, t.{other}) < (%(before_created_at)s, %(before_id)s))
        ORDER BY t.created_at DESC, t.{other} DESC
        LIMIT %(limit)s
    ) AS x ON true
    WHERE o.id = %(owner_id)s AND o.suspended_at IS NULL
"""
LIST_FOLLOWERS = PEOPLE_PAGE.format(table="follows", owner="followed_id", other="follower_id")
LIST_FOLLOWING = PEOPLE_PAGE.format(table="follows", owner="follower_id", other="followed_id")
LIST_BLOCKED = PEOPLE_PAGE.format(table="blocks", owner="blocker_id", other="blocked_id")
PEOPLE_LISTS = {"followers": LIST_FOLLOWERS, "following": LIST_FOLLOWING,
                "blocks": LIST_BLOCKED}


async def list_people(db: Database, which: str, owner_id: int, *, before: Before,
                      limit: int, stale_ok: bool = True) -> list[Row] | None:
    """A page of ``(user_id, created_at)`` of ``which`` list; None when the owner is unknown."""
    before_created_at, before_id = before or (None, None)
    rows = await db.fetch_all(PEOPLE_LISTS[which], {
        "owner_id": owner_id, "before_created_at": before_created_at, "before_id": before_id,
        "limit": limit}, stale_ok=stale_ok)
    if not rows:
        return None
    return [row for row in rows if row["user_id"] is not None]


# Fan-out targets: the author's followers seen lately, in the followers index's order, so each
# batch continues from the last (created_at, follower_id) it reached.
SELECT_ACTIVE_FOLLOWERS = """
    SELECT f.follower_id, f.created_at
    FROM follows f
    JOIN users u ON u.id = f.follower_id
    WHERE f.followed_id = %(author_id)s
      AND (%(after_created_at)s::timestamptz IS NULL
           OR (f.created_at, f.follower_id) < (%(after_created_at)s, %(after_id)s))
      AND u.last_seen_at > now() - make_interval(days => %(active_days)s)
    ORDER BY f.created_at DESC, f.follower_id DESC
    LIMIT %(limit)s
"""


async def list_active_followers_txn(cur: Cursor, author_id: int, *, after: Before,
                                    active_days: int, limit: int) -> list[Row]:
    after_created_at, after_id = after or (None, None)
    return await cur.fetch_all(SELECT_ACTIVE_FOLLOWERS, {
        "author_id": author_id, "after_created_at": after_created_at, "after_id": after_id,
        "active_days": active_days, "limit": limit})
