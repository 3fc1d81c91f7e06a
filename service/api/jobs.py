"""/jobs and saved jobs: post, find, change, close, delete, save."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from aiohttp import web

from cache.jobs import fill_job, fill_job_page, read_job, read_job_page
from service.api.answers import job_answers
from service.api.job_schemas import JobCreate, JobsQuery, JobUpdate
from service.api.posting import create_post_txn, remove_job_posts_txn
from service.api.schemas import Page, PageQuery
from service.appkeys import STORES
from service.authn import Principal, authenticate, require_employer
from service.errors import Forbidden, NotFound, ValidationFailed
from service.paging import split_page
from service.responses import json_answer, no_content, read_body
from service.validation import decode_cursor, decode_query, path_id
from sql import jobs
from sql.db import ForeignKeyViolation
from tasks.jobs import enqueue_job_closed_txn
from tasks.work import unit_of_work

DEFAULT_LIFETIME = timedelta(days=30)
CACHED_PAGE_SIZE = 20


async def create_job(request: web.Request) -> web.Response:
    principal = await require_employer(request)
    body = await read_body(request, JobCreate)
    async with unit_of_work(request.app[STORES], "create_job") as work:
        row = await jobs.insert_job_txn(work.cur, {**msgspec.structs.asdict(body),
                                                   "employer_id": principal.user_id})
        # Its followers see the new job in their feeds, as a post of the employer's.
        await create_post_txn(work, author_id=principal.user_id, post_type="job",
                              body=f"We are hiring: {row['title']}", related_job_id=row["id"])
        work.job_changed(row["id"])
    [answer] = await job_answers(request.app[STORES].db, [row], principal.user_id)
    return json_answer(answer, status=201)


async def get_job(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    job_id = path_id(request)
    cache = request.app[STORES].cache
    row, generation = await read_job(cache, job_id)
    if row is None or _expired_while_cached(row):
        row = await jobs.get_job(request.app[STORES].db, job_id)
        if row is None:
            raise NotFound()
        if generation is not None:
            await fill_job(cache, job_id, generation, row)
    [answer] = await job_answers(request.app[STORES].db, [row], principal.user_id)
    return json_answer(answer)


def _expired_while_cached(row: dict[str, Any]) -> bool:
    """A cached open job whose expiry has passed must be read again (it is closed now)."""
    expires_at = row["expires_at"]
    if isinstance(expires_at, str):
        expires_at = datetime.fromisoformat(expires_at)
    return bool(row["status"] == "open" and expires_at <= datetime.now(UTC))


async def list_jobs(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    query = decode_query(request.query, JobsQuery)
    filters = {"category": query.category, "location": query.location,
               "employer_id": query.employer_id, "remote": query.remote, "q": query.q}
    cacheable = (query.status == "open" and query.cursor is None
                 and query.limit == CACHED_PAGE_SIZE
                 and all(value is None for name, value in filters.items() if name != "category"))
    rows = await (_cached_first_page(request, query.category) if cacheable
                  else _query_jobs(request, query, filters))
    page, next_cursor = split_page(rows, query.limit, lambda row: (row["created_at"], row["id"]))
    items = await job_answers(request.app[STORES].db, page, principal.user_id)
    return json_answer(Page(items=items, next_cursor=next_cursor))


async def _query_jobs(request: web.Request, query: JobsQuery,
                      filters: dict[str, Any]) -> list[dict[str, Any]]:
    # Searches page like every list, newest first: a cursor of the former
    # (rank, created_at, id) shape is malformed now, a 400.
    after = decode_cursor(query.cursor, datetime, int) if query.cursor else None
    return await jobs.list_jobs(request.app[STORES].db, filters, status=query.status,
                                after=after, limit=query.limit + 1)


async def _cached_first_page(request: web.Request, category: str | None) -> list[dict[str, Any]]:
    cache = request.app[STORES].cache
    rows, generation = await read_job_page(cache, category)
    if rows is not None and not any(_expired_while_cached(row) for row in rows):
        return [_typed(row) for row in rows]
    rows = await jobs.list_jobs(request.app[STORES].db, {"category": category}, status="open",
                                after=None, limit=CACHED_PAGE_SIZE + 1)
    await fill_job_page(cache, category, generation, rows)
    return rows


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    """A cached row's timestamps back as datetimes (the cursor is built from them)."""
    return {**row, "created_at": datetime.fromisoformat(row["created_at"])}


async def update_job(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    job_id = path_id(request)
    body = await read_body(request, JobUpdate)
    changes = {name: value for name, value in msgspec.structs.asdict(body).items()
               if value is not msgspec.UNSET}
    async with unit_of_work(request.app[STORES], "update_job") as work:
        job = await jobs.lock_job_txn(work.cur, job_id)
        if job is None:
            raise NotFound()
        _check_owner(job, principal)
        _check_salaries({**job, **changes})
        if changes.get("status") == "open" and job["expires_at"] <= datetime.now(UTC):
            changes.setdefault("expires_at", datetime.now(UTC) + DEFAULT_LIFETIME)
        row = await jobs.update_job_txn(work.cur, job_id, changes) if changes else job
        if job["status"] == "open" and row["status"] == "closed" and "status" in changes:
            await enqueue_job_closed_txn(work, row)
        work.job_changed(job_id)
    [answer] = await job_answers(request.app[STORES].db, [row], principal.user_id)
    return json_answer(answer)


def _check_owner(job: dict[str, Any], principal: Principal) -> None:
    if job["employer_id"] != principal.user_id:
        raise Forbidden("Only the employer who posted this job can change it.")


def _check_salaries(merged: dict[str, Any]) -> None:
    low, high = merged.get("salary_min"), merged.get("salary_max")
    if low is not None and high is not None and low > high:
        raise ValidationFailed({"salary_min": "must not exceed salary_max"})


async def delete_job(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    job_id = path_id(request)
    async with unit_of_work(request.app[STORES], "delete_job") as work:
        job = await jobs.lock_job_txn(work.cur, job_id)
        if job is None:
            raise NotFound()
        if not principal.is_admin:
            _check_owner(job, principal)
        await remove_job_posts_txn(work, job_id)
        await jobs.delete_job_txn(work.cur, job_id)
        work.job_changed(job_id)
    return no_content()


async def save_job(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    try:
        created = await jobs.save_job(request.app[STORES].db, principal.user_id, path_id(request))
    except ForeignKeyViolation:
        raise NotFound() from None
    return web.Response(status=201 if created else 200)


async def unsave_job(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    await jobs.unsave_job(request.app[STORES].db, principal.user_id, path_id(request))
    return no_content()


async def list_saved_jobs(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    query = decode_query(request.query, PageQuery)
    after = decode_cursor(query.cursor, datetime, int) if query.cursor else None
    rows = await jobs.list_saved_jobs(request.app[STORES].db, principal.user_id, after,
                                      query.limit + 1)
    page, next_cursor = split_page(rows, query.limit, lambda row: (row["saved_at"], row["id"]))
    items = await job_answers(request.app[STORES].db, page, principal.user_id)
    return json_answer(Page(items=items, next_cursor=next_cursor))
