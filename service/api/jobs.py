"""/jobs and saved jobs: post, find, change, close, delete, save."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from aiohttp import web

from cache.jobs import invalidate_job_flags
from service.api.answers import job_answers, job_row_answers, seen_job_answer
from service.api.cached_jobs import PAGE_SIZE, first_page, read_job_row
from service.api.job_schemas import JobCreate, JobsQuery, JobUpdate
from service.api.posting import create_post_txn, remove_job_posts_txn
from service.api.schemas import Page, PageQuery
from service.appkeys import STORES
from service.authn import Principal, authenticate, require_employer
from service.errors import ApiError, Forbidden, NotFound, ValidationFailed
from service.paging import split_page
from service.responses import json_answer, no_content, read_body
from service.validation import decode_cursor, decode_query, path_id
from sql import jobs
from sql.db import ForeignKeyViolation
from tasks.jobs import enqueue_job_closed_txn
from tasks.work import unit_of_work

DEFAULT_LIFETIME = timedelta(days=30)


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
    stores = request.app[STORES]
    row = await read_job_row(stores.db, stores.cache, path_id(request))
    [answer] = await job_row_answers(stores.db, [row], principal.user_id)
    return json_answer(answer)


async def list_jobs(request: web.Request) -> web.Response:
    try:
        query = decode_query(request.query, JobsQuery)
    except ApiError:
        await authenticate(request)  # a caller without a valid token gets 401 first
        raise
    filters = {"category": query.category, "location": query.location,
               "employer_id": query.employer_id, "remote": query.remote, "q": query.q}
    cacheable = (query.status == "open" and query.cursor is None and query.limit == PAGE_SIZE
                 and all(value is None for name, value in filters.items() if name != "category"))
    if cacheable:
        return json_answer(await first_page(request, query.category))
    principal = await authenticate(request)
    # Searches page like every list, newest first: a cursor of the former
    # (rank, created_at, id) shape is malformed now, a 400.
    after = decode_cursor(query.cursor, datetime, int) if query.cursor else None
    db = request.app[STORES].db
    rows = await jobs.list_jobs(db, filters, status=query.status, after=after,
                                limit=query.limit + 1, viewer_id=principal.user_id)
    page, next_cursor = split_page(rows, query.limit, lambda row: (row["created_at"], row["id"]))
    items = [seen_job_answer(row) for row in page]
    return json_answer(Page(items=items, next_cursor=next_cursor))


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
    stores = request.app[STORES]
    try:
        created = await jobs.save_job(stores.db, principal.user_id, path_id(request))
    except ForeignKeyViolation:
        raise NotFound() from None
    await invalidate_job_flags(stores.cache, [principal.user_id])
    return web.Response(status=201 if created else 200)


async def unsave_job(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    stores = request.app[STORES]
    await jobs.unsave_job(stores.db, principal.user_id, path_id(request))
    await invalidate_job_flags(stores.cache, [principal.user_id])
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
