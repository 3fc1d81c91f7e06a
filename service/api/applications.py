"""Applications: apply, the employer's and the applicant's lists, status changes, withdraw."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from service.api.answers import job_answers
from service.api.job_schemas import (
    Application,
    ApplicationCreate,
    ApplicationsQuery,
    ApplicationUpdate,
    ApplicationWithApplicant,
    ApplicationWithHistory,
    ApplicationWithJob,
    StatusChange,
)
from service.api.schemas import Page, PageQuery, PublicProfile
from service.appkeys import STORES
from service.authn import authenticate
from service.errors import Conflict, Forbidden, NotFound, ValidationFailed
from service.paging import split_page
from service.responses import from_row, json_answer, no_content, read_body
from service.validation import decode_cursor, decode_query, path_id
from sql import applications, jobs
from sql.applications import FINAL_STATUSES
from sql.db import Cursor, Row
from sql.users import get_profiles
from tasks.jobs import notify_application_received_txn, notify_application_status_txn
from tasks.work import unit_of_work


async def apply(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    if principal.role != "job_seeker":
        raise Forbidden("Only job seekers can apply.")
    job_id = path_id(request)
    body = await read_body(request, ApplicationCreate)
    async with unit_of_work(request.app[STORES], "apply") as work:
        row = await applications.insert_application_txn(
            work.cur, job_id=job_id, applicant_id=principal.user_id,
            cover_letter=body.cover_letter, resume_url=body.resume_url)
        if row is None:
            obstacle = await applications.get_apply_obstacle_txn(work.cur, job_id,
                                                                 principal.user_id)
            if not obstacle["job_exists"]:
                raise NotFound()
            if obstacle["applied"]:
                raise Conflict("You have already applied to this job.")
            raise ValidationFailed({"job_id": "the job is closed"})
        await applications.record_application_txn(work.cur, row)
        job = await jobs.lock_job_txn(work.cur, job_id)
        assert job is not None
        await notify_application_received_txn(work, row, job)
        work.job_changed(job_id)  # its applications_count changed
    return json_answer(from_row(row, Application), status=201)


async def list_for_job(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    job_id = path_id(request)
    query = decode_query(request.query, ApplicationsQuery)
    db = request.app[STORES].db
    job = await jobs.get_job(db, job_id, stale_ok=False)
    if job is None:
        raise NotFound()
    if job["employer_id"] != principal.user_id:
        raise Forbidden("Only the employer who posted this job can see its applications.")
    after = decode_cursor(query.cursor, datetime, int) if query.cursor else None
    rows = await applications.list_for_job(db, job_id, query.status, after, query.limit + 1)
    page, next_cursor = split_page(rows, query.limit, _created_key)
    profiles = await get_profiles(db, {row["applicant_id"] for row in page}, principal.user_id)
    items = [from_row({**row, "applicant": from_row(profiles[row["applicant_id"]],
                                                    PublicProfile)}, ApplicationWithApplicant)
             for row in page if row["applicant_id"] in profiles]
    return json_answer(Page(items=items, next_cursor=next_cursor))


async def list_mine(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    query = decode_query(request.query, PageQuery)
    db = request.app[STORES].db
    after = decode_cursor(query.cursor, datetime, int) if query.cursor else None
    rows = await applications.list_for_applicant(db, principal.user_id, after, query.limit + 1)
    page, next_cursor = split_page(rows, query.limit, _created_key)
    job_rows = await jobs.get_jobs(db, [row["job_id"] for row in page])
    answers = {job.id: job for job in await job_answers(db, job_rows, principal.user_id)}
    items = [from_row({**row, "job": answers[row["job_id"]]}, ApplicationWithJob)
             for row in page if row["job_id"] in answers]
    return json_answer(Page(items=items, next_cursor=next_cursor))


def _created_key(row: Row) -> tuple[object, ...]:
    return row["created_at"], row["id"]


async def get_application(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    application_id = path_id(request)
    db = request.app[STORES].db
    row = await applications.get_visible_application(db, application_id, principal.user_id)
    if row is None:
        raise NotFound()
    history = [from_row(entry, StatusChange)
               for entry in await applications.get_history(db, application_id)]
    return json_answer(from_row({**row, "history": history}, ApplicationWithHistory))


async def change_status(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    application_id = path_id(request)
    body = await read_body(request, ApplicationUpdate)
    async with unit_of_work(request.app[STORES], "change_application_status") as work:
        row = await _lock_changeable(work.cur, application_id, principal.user_id, owner=True)
        if row["status"] == body.status:
            return json_answer(from_row(row, Application))
        changed = await applications.change_status_txn(work.cur, application_id, body.status,
                                                       principal.user_id)
        await notify_application_status_txn(work, changed, row["job_title"], principal.user_id,
                                            f"{application_id}:{changed['updated_at']}")
    return json_answer(from_row(changed, Application))


async def withdraw(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    application_id = path_id(request)
    async with unit_of_work(request.app[STORES], "withdraw_application") as work:
        await _lock_changeable(work.cur, application_id, principal.user_id, owner=False)
        await applications.change_status_txn(work.cur, application_id, "withdrawn",
                                             principal.user_id)
    return no_content()


async def _lock_changeable(cur: Cursor, application_id: int, user_id: int, *,
                           owner: bool) -> Row:
    """The application, locked, if ``user_id`` may change it now; else the right error."""
    row = await applications.lock_visible_application_txn(cur, application_id, user_id)
    if row is None:
        raise NotFound()
    may = row["employer_id"] == user_id if owner else row["applicant_id"] == user_id
    if not may:
        raise Forbidden("The job's employer changes the status; the applicant withdraws.")
    if row["status"] in FINAL_STATUSES:
        raise ValidationFailed({"status": f"the application is already {row['status']}"})
    return row
