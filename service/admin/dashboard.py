"""The dashboard: totals and today's counts, and the live figures behind /metrics (every
process's) with the last hour of each drawn as a small SVG line, rendered on the server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from service.admin.figures import FIGURES
from service.admin.render import render
from service.appkeys import STORES
from sql.dashboard import COUNTED_TABLES, get_today_counts, get_totals
from sql.db import Row
from sql.figures import list_samples

LABELS = {"users": "Users", "jobs": "Jobs", "job_applications": "Applications",
          "posts": "Posts", "messages": "Messages"}
HOUR = timedelta(hours=1)
CHART_WIDTH, CHART_HEIGHT = 240, 48


@dataclass(frozen=True)
class Figure:
    label: str
    unit: str
    latest: float | None  # None: not sampled yet
    points: str  # the SVG polyline's points over the last hour
    peak: float


async def dashboard_page(request: web.Request) -> web.Response:
    db = request.app[STORES].db
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    totals = await get_totals(db)
    today = await get_today_counts(db, midnight.isoformat())
    counts = [(LABELS[name], totals.get(name, 0), today.get(name, 0))
              for name in COUNTED_TABLES]
    samples = await list_samples(db, [name for name, _, _ in FIGURES], now - HOUR)
    return render(request, "dashboard.html", {
        "counts": counts, "figures": figures_of(samples, now),
        "chart": {"width": CHART_WIDTH, "height": CHART_HEIGHT}})


def figures_of(samples: list[Row], now: datetime) -> list[Figure]:
    by_figure: dict[str, list[Row]] = {}
    for row in samples:
        by_figure.setdefault(row["figure"], []).append(row)
    figures = []
    for name, label, unit in FIGURES:
        rows = by_figure.get(name, [])
        peak = max((row["value"] for row in rows), default=0.0)
        figures.append(Figure(label, unit, rows[-1]["value"] if rows else None,
                              _points(rows, now, peak), peak))
    return figures


def _points(rows: list[Row], now: datetime, peak: float) -> str:
    """x: minutes across the last hour; y: the value against the hour's peak (0 at the
    bottom, the peak one pixel below the top)."""
    start = now - HOUR
    points = []
    for row in rows:
        x = CHART_WIDTH * (row["taken_at"] - start) / HOUR
        y = CHART_HEIGHT - 1 - (CHART_HEIGHT - 2) * (row["value"] / peak if peak else 0)
        points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points)
