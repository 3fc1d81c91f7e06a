"""The audit log: every admin action (who, what, target, when), newest first, filterable."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from service.admin.render import PAGE_SIZE, cursor_param, int_param, page_of, render, text_param
from service.appkeys import STORES
from sql.audit import list_audit_entries


async def audit_page(request: web.Request) -> web.Response:
    filters = {"action": text_param(request, "action"),
               "admin_id": int_param(request, "admin_id"),
               "target_type": text_param(request, "target_type"),
               "target_id": int_param(request, "target_id")}
    before = cursor_param(request, datetime, int)
    rows = await list_audit_entries(request.app[STORES].db, **filters,  # type: ignore[arg-type]
                                    before=before, limit=PAGE_SIZE + 1)
    entries, next_page = page_of(request, rows, lambda row: (row["created_at"], row["id"]))
    return render(request, "audit.html", {
        "entries": entries, "next_page": next_page,
        "filters": {name: "" if value is None else value for name, value in filters.items()}})
