"""The reports queue: open reports oldest first; resolve one, or act on its target."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from service.admin import actions
from service.admin.render import PAGE_SIZE, cursor_param, page_of, redirect, render
from service.admin.security import STAFF_KEY
from service.appkeys import STORES
from service.errors import BadRequest
from service.validation import path_id
from sql.moderation import list_open_reports


async def reports_page(request: web.Request) -> web.Response:
    after = cursor_param(request, datetime, int)
    rows = await list_open_reports(request.app[STORES].db, after=after,
                                   limit=PAGE_SIZE + 1)
    reports, next_page = page_of(request, rows, lambda row: (row["created_at"], row["id"]))
    return render(request, "reports.html", {
        "reports": reports, "next_page": next_page,
        "actions": {kind: actions.actions_for(kind)
                    for kind in ("user", "post", "comment", "job")}})


async def resolve_report(request: web.Request) -> web.Response:
    await actions.resolve_report(request.app[STORES], request[STAFF_KEY].id,
                                 path_id(request))
    return redirect("/admin/reports")


async def act_on_report(request: web.Request) -> web.Response:
    action = (await request.post()).get("action")
    if not isinstance(action, str) or action not in actions.TARGET_ACTIONS:
        raise BadRequest("Unknown action.")
    await actions.act_on_report(request.app[STORES], request[STAFF_KEY].id,
                                path_id(request), action)
    return redirect("/admin/reports")
