"""Posts, likes and comments (the home feed's queries are in sql/feeds.py).

Counters (``likes_count``, ``comments_count``) move in the statement that inserts or deletes
the like or comment, only when a row really changed. Every list is keyset on
``(created_at, id)`` and reads one index range; ``liked_by_me`` is answered in the same query
by the ``post_likes`` primary key.
"""

from __future__ import annotations

from datetime import datetime

from sql.db import Cursor, Database, ForeignKeyViolation, Prepared, Row
from sql.social import BLOCKED_PAIR, FOLLOWS_LOOKUP
from sql.users import PROFILE_COLUMNS, prefixed_profile_columns

Before = tuple[datetime, int] | None


def post_columns(likes_count: str = "p.likes_count") -> str:
    """A post's columns; a statement that has just counted a like names the new count."""
    return f"""
        p.id, p.user_id, p.body, p.post_type, p.related_job_id, {likes_count} AS likes_count,
        p.comments_count, p.created_at
    """


POST_COLUMNS = post_columns()
LIKED_BY_ME = """
    EXISTS (SELECT 1 FROM post_likes l
            WHERE l.post_id = p.id AND l.user_id = %(viewer_id)s) AS liked_by_me
"""
# A block hides each one's posts from the other (API.md, "Follows"): their lists are empty,
# a single post of theirs is not found, and neither likes nor comments on the other's posts.
BLOCKED_VIEWER = BLOCKED_PAIR.format(a="p.user_id", b="%(viewer_id)s")
BEFORE = """
    (%(before_created_at)s::timestamptz IS NULL
     OR (p.created_at, p.id) < (%(before_created_at)s, %(before_id)s))
"""

# The author's public profile, prefixed, beside each post row; ``author_followed_by_me`` comes
# from the primary-key lookup in FOLLOWED_AUTHOR.
AUTHOR_PREFIX = "author_"
AUTHOR_COLUMNS = prefixed_profile_columns(AUTHOR_PREFIX, "u")
FOLLOWED_AUTHOR = f"""
    JOIN users u ON u.id = p.user_id
    {FOLLOWS_LOOKUP.format(follower="%(viewer_id)s", followed="p.user_id", alias="fa")}
"""
# A post as the viewer sees it, its author included (FROM posts p {FOLLOWED_AUTHOR}).
HYDRATED_COLUMNS = f"""
    {POST_COLUMNS}, {LIKED_BY_ME}, {AUTHOR_COLUMNS},
    fa.yes IS NOT NULL AS author_followed_by_me
"""

# A job post needs an existing job; the author's follower count decides the fan-out.
INSERT_POST = f"""
    WITH author AS (SELECT {PROFILE_COLUMNS} FROM users u WHERE u.id = %(author_id)s),
    inserted AS (
        INSERT INTO posts AS p (user_id, body, post_type, related_job_id)
        SELECT a.id, %(body)s, %(post_type)s, %(related_job_id)s
        FROM author a
        WHERE %(related_job_id)s::bigint IS NULL
           OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = %(related_job_id)s)
        RETURNING {POST_COLUMNS}
    )
    SELECT p.*, false AS liked_by_me, {AUTHOR_COLUMNS}, false AS author_followed_by_me,
           0 < u.followers_count AS has_followers
    FROM inserted p CROSS JOIN author u
"""

PREPARED_INSERT_POST = Prepared("insert_post", INSERT_POST)


async def insert_post_txn(cur: Cursor, *, author_id: int, body: str, post_type: str,
                          related_job_id: int | None) -> Row | None:
    """The new post as its author sees it (HYDRATED_COLUMNS), or None when
    ``related_job_id`` names no job."""
    try:
        return await cur.fetch_one(PREPARED_INSERT_POST, {
            "author_id": author_id, "body": body, "post_type": post_type,
            "related_job_id": related_job_id})
    except ForeignKeyViolation:  # the job was deleted while we inserted
        return None


DELETE_POST = """
    DELETE FROM posts p
    WHERE p.id = %(post_id)s AND (p.user_id = %(user_id)s OR %(is_admin)s)
    RETURNING p.id
"""


async def delete_post_txn(cur: Cursor, post_id: int, user_id: int, is_admin: bool) -> bool:
    """True when deleted; False when there is no such post or it is not the caller's."""
    return await cur.fetch_value(DELETE_POST, {"post_id": post_id, "user_id": user_id,
                                               "is_admin": is_admin}) is not None


DELETE_JOB_POSTS = "DELETE FROM posts WHERE related_job_id = %(job_id)s RETURNING id"


async def delete_job_posts_txn(cur: Cursor, job_id: int) -> list[int]:
    return [row["id"] for row in await cur.fetch_all(DELETE_JOB_POSTS, {"job_id": job_id})]


# Likes and comments notify with the post as related_id; they go with the post.
DELETE_POST_NOTIFICATIONS = """
    DELETE FROM notifications
    WHERE related_id = ANY(%(post_ids)s::bigint[])
      AND notification_type IN ('post_like', 'post_comment')
    RETURNING user_id, is_read
"""


async def delete_post_notifications_txn(cur: Cursor, post_ids: list[int]) -> set[int]:
    """Remove the posts' like and comment notifications; users whose unread count fell."""
    rows = await cur.fetch_all(DELETE_POST_NOTIFICATIONS, {"post_ids": post_ids})
    return {row["user_id"] for row in rows if not row["is_read"]}


POST_EXISTS = "SELECT EXISTS (SELECT 1 FROM posts WHERE id = %(post_id)s)"


async def post_exists(db: Database, post_id: int) -> bool:
    return bool(await db.fetch_value(POST_EXISTS, {"post_id": post_id}))


# The author is the outer row, so an unknown author (404) and an empty page differ; a block
# either way is an empty page. The block test names no column of p: a one-time filter.
LIST_USER_POSTS = f"""
    SELECT u.id AS owner_id, x.*
    FROM users u
    LEFT JOIN LATERAL (
        SELECT {POST_COLUMNS}, {LIKED_BY_ME}
        FROM posts p
        WHERE p.user_id = u.id AND {BEFORE}
          AND NOT {BLOCKED_PAIR.format(a="u.id", b="%(viewer_id)s")}
        ORDER BY p.created_at DESC, p.id DESC
        LIMIT %(limit)s
    ) AS x ON true
    WHERE u.id = %(author_id)s AND u.suspended_at IS NULL
"""


async def list_user_posts(db: Database, author_id: int, viewer_id: int, *, before: Before,
                          limit: int) -> list[Row] | None:
    """A page of the author's posts, newest first; None when the author is unknown."""
    before_created_at, before_id = before or (None, None)
    rows = await db.fetch_all(LIST_USER_POSTS, {
        "author_id": author_id, "viewer_id": viewer_id, "before_created_at": before_created_at,
        "before_id": before_id, "limit": limit}, stale_ok=True)
    if not rows:
        return None
    return [row for row in rows if row["id"] is not None]


# -- likes ----------------------------------------------------------------------------------

# ON CONFLICT DO NOTHING makes two concurrent likes one row: the second waits for the first
# to commit and then inserts nothing, so only one of them counts and notifies. Nothing is
# inserted when either user blocks the other (``blocked``: the caller answers 403).
# The post as the liker sees it comes back with the like: the count is the one this
# statement wrote (the rest of a statement sees the rows as they were before it).
INSERT_LIKE = f"""
    WITH target AS (
        SELECT p.id, p.user_id, {BLOCKED_PAIR.format(a="p.user_id", b="%(viewer_id)s")} AS blocked
        FROM posts p WHERE p.id = %(post_id)s
    ), liked AS (
        INSERT INTO post_likes (post_id, user_id)
        SELECT t.id, %(viewer_id)s::bigint FROM target t WHERE NOT t.blocked
        ON CONFLICT DO NOTHING
        RETURNING post_id
    ), counted AS (
        UPDATE posts SET likes_count = likes_count + 1
        WHERE id IN (SELECT post_id FROM liked)
        RETURNING likes_count
    )
    SELECT t.blocked, EXISTS (SELECT 1 FROM liked) AS inserted,
           {post_columns("coalesce((SELECT likes_count FROM counted), p.likes_count)")},
           true AS liked_by_me, {AUTHOR_COLUMNS}, fa.yes IS NOT NULL AS author_followed_by_me
    FROM target t
    JOIN posts p ON p.id = t.id
    {FOLLOWED_AUTHOR}
"""


PREPARED_INSERT_LIKE = Prepared("insert_like", INSERT_LIKE)


async def insert_like_txn(cur: Cursor, post_id: int, user_id: int) -> Row | None:
    """The post as the liker sees it (HYDRATED_COLUMNS), ``blocked`` and whether the like is
    new (``inserted``); None when there is no post."""
    try:
        return await cur.fetch_one(PREPARED_INSERT_LIKE, {"post_id": post_id,
                                                          "viewer_id": user_id})
    except ForeignKeyViolation:  # the post was deleted meanwhile
        return None


DELETE_LIKE = """
    WITH unliked AS (
        DELETE FROM post_likes WHERE post_id = %(post_id)s AND user_id = %(user_id)s
        RETURNING post_id
    ), counted AS (
        UPDATE posts SET likes_count = likes_count - 1
        WHERE id IN (SELECT post_id FROM unliked)
    )
    SELECT EXISTS (SELECT 1 FROM posts WHERE id = %(post_id)s) AS post_exists
"""


async def delete_like(db: Database, post_id: int, user_id: int) -> bool:
    """Unlike (one atomic statement); False when there is no such post."""
    row = await db.fetch_one_write(DELETE_LIKE, {"post_id": post_id, "user_id": user_id})
    return bool(row and row["post_exists"])


# -- comments -------------------------------------------------------------------------------

COMMENT_COLUMNS = "c.id, c.post_id, c.user_id, c.body, c.created_at"

# Refused (no row) when the post author and the commenter block each other either way; the
# caller tells 403 from 404.
INSERT_COMMENT = f"""
    WITH target AS (
        SELECT p.id, p.user_id FROM posts p
        WHERE p.id = %(post_id)s
          AND NOT {BLOCKED_PAIR.format(a="p.user_id", b="%(user_id)s")}
    ), inserted AS (
        INSERT INTO post_comments AS c (post_id, user_id, body)
        SELECT id, %(user_id)s, %(body)s FROM target
        RETURNING {COMMENT_COLUMNS}
    ), counted AS (
        UPDATE posts SET comments_count = comments_count + 1
        WHERE id IN (SELECT post_id FROM inserted)
    )
    SELECT i.*, t.user_id AS post_author_id FROM inserted i JOIN target t ON t.id = i.post_id
"""


async def insert_comment_txn(cur: Cursor, post_id: int, user_id: int, body: str) -> Row | None:
    try:
        return await cur.fetch_one(INSERT_COMMENT, {"post_id": post_id, "user_id": user_id,
                                                    "body": body})
    except ForeignKeyViolation:
        return None


# Allowed to the comment's author, the post's author and admins.
DELETE_COMMENT = """
    WITH removed AS (
        DELETE FROM post_comments c
        USING posts p
        WHERE c.id = %(comment_id)s AND p.id = c.post_id
          AND (c.user_id = %(user_id)s OR p.user_id = %(user_id)s OR %(is_admin)s)
        RETURNING c.id, c.post_id, p.user_id AS post_author_id
    ), counted AS (
        UPDATE posts SET comments_count = comments_count - 1
        WHERE id IN (SELECT post_id FROM removed)
    )
    SELECT * FROM removed
"""


async def delete_comment_txn(cur: Cursor, comment_id: int, user_id: int,
                             is_admin: bool) -> Row | None:
    return await cur.fetch_one(DELETE_COMMENT, {"comment_id": comment_id, "user_id": user_id,
                                                "is_admin": is_admin})


# Each comment notifies under its own dedup key; the notification goes with the comment.
DELETE_COMMENT_NOTIFICATION = """
    DELETE FROM notifications WHERE user_id = %(user_id)s AND dedup_key = %(dedup_key)s
    RETURNING is_read
"""


async def delete_comment_notification_txn(cur: Cursor, user_id: int, dedup_key: str) -> bool:
    """True when an unread notification was removed (the unread count changed)."""
    row = await cur.fetch_one(DELETE_COMMENT_NOTIFICATION, {"user_id": user_id,
                                                            "dedup_key": dedup_key})
    return row is not None and not row["is_read"]


COMMENT_EXISTS = "SELECT EXISTS (SELECT 1 FROM post_comments WHERE id = %(comment_id)s)"


async def comment_exists(db: Database, comment_id: int) -> bool:
    return bool(await db.fetch_value(COMMENT_EXISTS, {"comment_id": comment_id}))


# Oldest first, served by post_comments_post_created_idx; the post is the outer row (404,
# also for a post the viewer may not see because of a block).
LIST_COMMENTS = f"""
    SELECT p.id AS owner_id, c.*
    FROM posts p
    LEFT JOIN LATERAL (
        SELECT {COMMENT_COLUMNS}
        FROM post_comments c
        WHERE c.post_id = p.id
          AND (%(after_created_at)s::timestamptz IS NULL
               OR (c.created_at, c.id) > (%(after_created_at)s, %(after_id)s))
        ORDER BY c.created_at, c.id
        LIMIT %(limit)s
    ) AS c ON true
    WHERE p.id = %(post_id)s AND NOT {BLOCKED_VIEWER}
"""


async def list_comments(db: Database, post_id: int, viewer_id: int, *, after: Before,
                        limit: int) -> list[Row] | None:
    """A page of the post's comments, oldest first; None when there is no such post (or the
    viewer and its author block each other)."""
    after_created_at, after_id = after or (None, None)
    rows = await db.fetch_all(LIST_COMMENTS, {
        "post_id": post_id, "viewer_id": viewer_id, "after_created_at": after_created_at,
        "after_id": after_id, "limit": limit}, stale_ok=True)
    if not rows:
        return None
    return [row for row in rows if row["id"] is not None]
