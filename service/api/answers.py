"""Rows → the API's answer objects, for every handler that shows them.

Each kind of object is answered by one function here, so a job, a post or a notification
looks the same in every list, page and live event, and a page costs a fixed number of
queries whatever its size: the rows in one, what they refer to (authors, employers, the
caller's saved flags) in one more, or none when the rows carry it as prefixed columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from service.api.job_schemas import Job, JobRow
from service.api.schemas import Notification, OwnUser, Page, PublicProfile
from service.api.social_schemas import Post
from service.paging import split_page
from service.responses import from_prefixed, from_row
from sql import jobs, users
from sql.db import Database, Row
from sql.jobs import EMPLOYER_PREFIX
from sql.notifications import ACTOR_PREFIX
from sql.posts import AUTHOR_PREFIX


async def job_answers(db: Database, rows: list[Row], viewer_id: int) -> list[Job]:
    """Job rows → answers: employers and the caller's saved flags in one query."""
    return await job_row_answers(db, [from_row(row, JobRow) for row in rows], viewer_id)


async def job_row_answers(db: Database, job_rows: list[JobRow], viewer_id: int) -> list[Job]:
    """``job_answers`` for rows already typed (read from the cache)."""
    profiles, saved = await jobs.get_viewer_parts(
        db, viewer_id, {row.employer_id for row in job_rows}, [row.id for row in job_rows])
    return [job_answer(row, from_row(profiles[row.employer_id], PublicProfile), row.id in saved)
            for row in job_rows if row.employer_id in profiles]


def seen_job_answer(row: Row) -> Job:
    """A job row that carries what its viewer sees of it (sql.jobs.seen_by_viewer): the
    employer as ``employer_`` columns and ``saved_by_me``."""
    return job_answer(from_row(row, JobRow), from_prefixed(row, PublicProfile, EMPLOYER_PREFIX),
                      row["saved_by_me"])


def job_answer(row: JobRow, employer: PublicProfile, saved_by_me: bool) -> Job:
    return Job(id=row.id, employer=employer, title=row.title, description=row.description,
               category=row.category, location=row.location,
               employment_type=row.employment_type, remote=row.remote,
               salary_min=row.salary_min, salary_max=row.salary_max, status=row.status,
               expires_at=row.expires_at, applications_count=row.applications_count,
               saved_by_me=saved_by_me, created_at=row.created_at, updated_at=row.updated_at)


# OwnUser extends PublicProfile, so its fields begin with PublicProfile's, in their order.
_PUBLIC_FIELDS = len(PublicProfile.__struct_fields__)
_FOLLOWED_BY_ME = PublicProfile.__struct_fields__.index("followed_by_me")


def public_profile(user: OwnUser, followed_by_me: bool) -> PublicProfile:
    """What anyone may see of a user's own account answer (cached as GET /me's). A jobs page
    makes twenty: by position, not by name, each is a quarter of the cost (0.3 µs, not 1.4)."""
    values = list(msgspec.structs.astuple(user)[:_PUBLIC_FIELDS])
    values[_FOLLOWED_BY_ME] = followed_by_me
    return PublicProfile(*values)


async def hydrate_posts(db: Database, rows: list[Row], viewer_id: int) -> list[Post]:
    """Post rows (with ``liked_by_me``) as ``Post`` answers; authors in one query."""
    authors = await users.get_profiles(db, {row["user_id"] for row in rows}, viewer_id)
    return [_post(row, from_row(authors[row["user_id"]], PublicProfile))
            for row in rows if row["user_id"] in authors]


async def post_page(db: Database, rows: list[Row], limit: int, viewer_id: int) -> Page[Post]:
    """``limit + 1`` rows, newest first → a page whose cursor is the last ``(created_at, id)``."""
    page, next_cursor = split_page(rows, limit, _position)
    return Page(items=await hydrate_posts(db, page, viewer_id), next_cursor=next_cursor)


def hydrated_post_page(rows: list[Row], limit: int) -> Page[Post]:
    """Like ``post_page``, for rows that carry their author's profile as ``author_`` columns
    (sql.feeds), so the page needs no query of its own."""
    page, next_cursor = split_page(rows, limit, _position)
    return Page(items=[hydrated_post(row) for row in page], next_cursor=next_cursor)


def hydrated_post(row: Row) -> Post:
    """A post row that carries its author as ``author_`` columns (sql.feeds) as a ``Post``."""
    return _post(row, from_prefixed(row, PublicProfile, AUTHOR_PREFIX))


def _position(row: Row) -> tuple[datetime, int]:
    return row["created_at"], row["id"]


def _post(row: Row, author: PublicProfile) -> Post:
    return Post(id=row["id"], author=author, body=row["body"], post_type=row["post_type"],
                related_job_id=row["related_job_id"], likes_count=row["likes_count"],
                comments_count=row["comments_count"], liked_by_me=row["liked_by_me"],
                created_at=row["created_at"])


def notification_answer(row: Row) -> Notification:
    """``row`` as ``sql/notifications.py`` lists it (the actor's columns prefixed ``actor_``)."""
    actor = None if row["actor_id"] is None else from_prefixed(row, PublicProfile, ACTOR_PREFIX)
    return Notification(id=row["id"], type=row["type"], actor=actor,
                        related_id=row["related_id"], data=row["data"], is_read=row["is_read"],
                        created_at=row["created_at"])


def stored_notification_answer(copy: Mapping[str, Any]) -> Notification:
    """A stored event's JSON copy of such a row (sql/events.py), its timestamps as text."""
    actor = None
    if copy["actor_id"] is not None:
        actor = {field: copy[ACTOR_PREFIX + field] for field in PublicProfile.__struct_fields__}
    return from_row({"id": copy["id"], "type": copy["type"], "actor": actor,
                     "related_id": copy["related_id"], "data": copy["data"],
                     "is_read": copy["is_read"], "created_at": copy["created_at"]},
                    Notification)
