"""/job_alerts: saved job searches that email new matching jobs daily or weekly."""

from __future__ import annotations

import msgspec
from aiohttp import web

from service.api.job_schemas import JobAlert, JobAlertCreate, JobAlertList
from service.appkeys import STORES
from service.authn import authenticate
from service.errors import NotFound, ValidationFailed
from service.responses import from_row, json_answer, no_content, read_body
from service.validation import path_id
from sql import alerts
from tasks.work import unit_of_work

MAX_ALERTS_PER_USER = 20


async def create_alert(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_body(request, JobAlertCreate)
    async with unit_of_work(request.app[STORES], "create_job_alert") as work:
        row = await alerts.insert_alert_within_limit_txn(
            work.cur, principal.user_id, msgspec.structs.asdict(body), MAX_ALERTS_PER_USER)
    if row is None:
        raise ValidationFailed(
            {"job_alerts": f"at most {MAX_ALERTS_PER_USER} per user; delete one first"},
            f"You already have {MAX_ALERTS_PER_USER} job alerts.")
    return json_answer(from_row(row, JobAlert), status=201)


async def list_alerts(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    rows = await alerts.list_alerts(request.app[STORES].db, principal.user_id)
    return json_answer(JobAlertList(items=[from_row(row, JobAlert) for row in rows]))


async def delete_alert(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    if not await alerts.delete_alert(request.app[STORES].db, principal.user_id, path_id(request)):
        raise NotFound()
    return no_content()
