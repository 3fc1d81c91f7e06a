"""The dashboard: totals and today's counts."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from service.admin.render import render
from service.appkeys import DATABASE
from sql.dashboard import COUNTED_TABLES, get_today_counts, get_totals

LABELS = {"users": "Users", "jobs": "Jobs", "job_applications": "Applications",
          "posts": "Posts", "messages": "Messages"}


async def dashboard_page(request: web.Request) -> web.Response:
    db = request.app[DATABASE]
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    totals = await get_totals(db)
    today = await get_today_counts(db, midnight.isoformat())
    counts = [(LABELS[name], totals.get(name, 0), today.get(name, 0))
              for name in COUNTED_TABLES]
    return render(request, "dashboard.html", {"counts": counts})
