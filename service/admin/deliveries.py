"""Deliveries: pending, failed and dead emails and pushes with their last error; retry a
dead one, or every dead one."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from aiohttp import web

from service.admin import actions
from service.admin.render import PAGE_SIZE, choice_param, cursor_param, page_of, redirect, render
from service.admin.security import STAFF_KEY
from service.appkeys import STORES
from service.validation import path_id
from sql.deliveries import STATE_FILTERS, list_deliveries

STATES = ("dead", "failed", "pending")
KINDS = ("any", "email", "push")


async def deliveries_page(request: web.Request) -> web.Response:
    state = choice_param(request, "state", STATES)
    kind = choice_param(request, "kind", KINDS)
    before = cursor_param(request, datetime, int)
    rows = await list_deliveries(request.app[STORES].db, state,
                                 kind=None if kind == "any" else kind,
                                 before=before, limit=PAGE_SIZE + 1)
    deliveries, next_page = page_of(request, rows, lambda row: (row["created_at"], row["id"]))
    retried = request.query.get("retried", "")
    return render(request, "deliveries.html", {
        "deliveries": deliveries, "next_page": next_page, "state": state, "kind": kind,
        "states": [s for s in STATES if s in STATE_FILTERS], "kinds": KINDS,
        "retried": int(retried) if retried.isascii() and retried.isdigit() else None})


async def retry_delivery(request: web.Request) -> web.Response:
    retried = await actions.retry_delivery(request.app[STORES], request[STAFF_KEY].id,
                                           path_id(request))
    return redirect(f"/admin/deliveries?{urlencode({'retried': int(retried)})}")


async def retry_dead_deliveries(request: web.Request) -> web.Response:
    count = await actions.retry_dead_deliveries(request.app[STORES], request[STAFF_KEY].id)
    return redirect(f"/admin/deliveries?{urlencode({'retried': count})}")
