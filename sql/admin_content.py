"""Posts and comments as the admin console lists them: newest first, all or one author's."""

from __future__ import annotations

from datetime import datetime

from sql.db import Database, Row

Before = tuple[datetime, int] | None

# posts_user_created_idx with an author, posts_created_idx without.
LIST_POSTS = """
    SELECT p.id, p.user_id, p.body, p.post_type, p.likes_count, p.comments_count,
           p.created_at, u.email AS author_email
    FROM posts p
    JOIN users u ON u.id = p.user_id
    WHERE (%(author_id)s::bigint IS NULL OR p.user_id = %(author_id)s)
      AND (%(before_created_at)s::timestamptz IS NULL
           OR (p.created_at, p.id) < (%(before_created_at)s, %(before_id)s))
    ORDER BY p.created_at DESC, p.id DESC
    LIMIT %(limit)s
"""

# post_comments_user_created_idx with an author, post_comments_created_idx without (0004).
LIST_COMMENTS = """
    SELECT c.id, c.post_id, c.user_id, c.body, c.created_at, u.email AS author_email
    FROM post_comments c
    JOIN users u ON u.id = c.user_id
    WHERE (%(author_id)s::bigint IS NULL OR c.user_id = %(author_id)s)
      AND (%(before_created_at)s::timestamptz IS NULL
           OR (c.created_at, c.id) < (%(before_created_at)s, %(before_id)s))
    ORDER BY c.created_at DESC, c.id DESC
    LIMIT %(limit)s
"""
LISTS = {"posts": LIST_POSTS, "comments": LIST_COMMENTS}


async def list_content(db: Database, which: str, *, author_id: int | None, before: Before,
                       limit: int) -> list[Row]:
    before_created_at, before_id = before or (None, None)
    return await db.fetch_all(LISTS[which], {
        "author_id": author_id, "before_created_at": before_created_at, "before_id": before_id,
        "limit": limit})
