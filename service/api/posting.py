"""What happens when posts are created or removed, in the writer's unit of work.

A post is a row, a fan-out into followers' feeds (tasks/feeds.py) and, when removed, the
end of the like and comment notifications about it. Handlers (posts, jobs, admin) all go
through here, so each rule is written once.
"""

from __future__ import annotations

from sql import posts
from sql.db import Row
from tasks.feeds import publish_post_txn
from tasks.work import Work


async def create_post_txn(work: Work, *, author_id: int, body: str, post_type: str,
                          related_job_id: int | None) -> Row | None:
    """Insert a post and publish it; the post as its author sees it (HYDRATED_COLUMNS), or
    None (nothing written) when the job does not exist."""
    post = await posts.insert_post_txn(work.cur, author_id=author_id, body=body,
                                       post_type=post_type, related_job_id=related_job_id)
    if post is not None:
        await publish_post_txn(work, post)
    return post


async def posts_removed_txn(work: Work, post_ids: list[int]) -> None:
    """Deleted posts: their like and comment notifications go too (feeds drop them on read)."""
    if post_ids:
        users = await posts.delete_post_notifications_txn(work.cur, post_ids)
        work.unread_count_changed("notifications", *users)


async def remove_job_posts_txn(work: Work, job_id: int) -> list[int]:
    """For a job's deletion: delete its posts with their notifications, before the job."""
    post_ids = await posts.delete_job_posts_txn(work.cur, job_id)
    await posts_removed_txn(work, post_ids)
    return post_ids
