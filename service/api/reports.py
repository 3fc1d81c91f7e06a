"""POST /reports: flag a user, post, comment or job for the admins' review queue."""

from __future__ import annotations

from aiohttp import web

from service.api.report_schemas import Report, ReportCreate
from service.appkeys import STORES
from service.authn import authenticate
from service.errors import NotFound, ValidationFailed
from service.responses import from_row, json_answer, read_body
from sql import reports
from tasks.work import unit_of_work


async def create_report(request: web.Request) -> web.Response:
    """201 with the new report; 200 with the same one while it is open; 404 for a target
    that is missing or hidden from the reporter (existence is never leaked)."""
    principal = await authenticate(request)
    body = await read_body(request, ReportCreate)
    if body.target_type == "user" and body.target_id == principal.user_id:
        raise ValidationFailed({"target_id": "you cannot report yourself"})
    async with unit_of_work(request.app[STORES], "create_report") as work:
        report, created = await reports.insert_report_txn(
            work.cur, reporter_id=principal.user_id, target_type=body.target_type,
            target_id=body.target_id, reason=body.reason)
    if report is None:
        raise NotFound()
    return json_answer(from_row(report, Report), 201 if created else 200)
