"""The dashboard's live figures: read from the same merged registry /metrics serves, once a
minute by every worker, and kept as one sample per figure and minute in PostgreSQL.

Rates need two readings: each worker keeps its previous reading of the merged counters, so
the figures a worker writes cover the minute since its last one, across every process.
A worker that has no previous reading yet (just started) writes nothing that minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from service.appkeys import STORES
from service.metrics import METRICS, merged_families
from sql.db import Database, DatabaseUnavailable
from sql.figures import insert_samples
from tasks.background import cancel_until_done

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 60
# name, label, unit; in the order the dashboard shows them.
FIGURES = (
    ("request_rate", "Requests", "/s"),
    ("p95_latency_ms", "p95 latency", " ms"),
    ("error_rate", "Errors (5xx)", " %"),
    ("db_pool_use", "DB pool in use", " %"),
    ("queue_depth", "Delivery queue", ""),
    ("cache_hit_rate", "Cache hits", " %"),
    ("deliveries_sent", "Deliveries sent", "/min"),
    ("deliveries_retried", "Deliveries retried", "/min"),
    ("deliveries_dead", "Deliveries dead", "/min"),
)


@dataclass(frozen=True)
class Reading:
    """Cumulative counters and current gauges of every process, at ``at`` (monotonic)."""

    at: float
    requests: float
    errors: float
    buckets: dict[float, float]  # latency histogram: upper bound → cumulative count
    hits: float
    misses: float
    deliveries: dict[str, float]
    pool_in_use: float
    pool_size: float
    queue_depth: float


def read_figures() -> Reading:
    sums: dict[str, float] = defaultdict(float)
    buckets: dict[float, float] = defaultdict(float)
    for family in merged_families():
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "hireme_http_requests_total":
                sums["requests"] += sample.value
                if labels.get("status", "").startswith("5"):
                    sums["errors"] += sample.value
            elif sample.name == "hireme_http_request_duration_seconds_bucket":
                buckets[float(labels["le"])] += sample.value
            elif sample.name == "hireme_cache_lookups_total":
                sums[labels.get("result", "")] += sample.value
            elif sample.name == "hireme_deliveries_total":
                sums["delivery:" + labels.get("outcome", "")] += sample.value
            elif sample.name == "hireme_db_pool_connections" and labels.get("pool") == "primary":
                sums["pool:" + labels.get("state", "")] += sample.value
            elif sample.name == "hireme_delivery_queue_depth":
                sums["queue"] += sample.value
    return Reading(
        at=time.monotonic(), requests=sums["requests"], errors=sums["errors"],
        buckets=dict(buckets), hits=sums["hit"], misses=sums["miss"],
        deliveries={outcome: sums["delivery:" + outcome]
                    for outcome in ("sent", "retried", "dead")},
        pool_in_use=sums["pool:in_use"], pool_size=sums["pool:size"], queue_depth=sums["queue"])


def figures_between(before: Reading, after: Reading) -> dict[str, float]:
    """The minute's figures. Counters that went backwards (every worker restarted) count 0."""
    seconds = max(after.at - before.at, 1.0)
    requests = max(after.requests - before.requests, 0.0)
    lookups = max(after.hits + after.misses - before.hits - before.misses, 0.0)
    per_minute = 60.0 / seconds
    return {
        "request_rate": requests / seconds,
        "p95_latency_ms": 1000 * p95(before.buckets, after.buckets),
        "error_rate": 100 * max(after.errors - before.errors, 0.0) / requests if requests else 0,
        "db_pool_use": 100 * after.pool_in_use / after.pool_size if after.pool_size else 0,
        "queue_depth": after.queue_depth,
        "cache_hit_rate": 100 * max(after.hits - before.hits, 0.0) / lookups if lookups else 0,
        **{f"deliveries_{outcome}": per_minute * max(
            after.deliveries[outcome] - before.deliveries[outcome], 0.0)
           for outcome in ("sent", "retried", "dead")},
    }


def p95(before: dict[float, float], after: dict[float, float]) -> float:
    """The 95th percentile of the requests between two readings of a cumulative histogram,
    interpolated within its bucket (as PromQL's histogram_quantile does); 0 with none."""
    bounds = sorted(after)
    counts = [max(after[b] - before.get(b, 0.0), 0.0) for b in bounds]
    if not counts or counts[-1] == 0:
        return 0.0
    rank = 0.95 * counts[-1]
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower  # beyond the last finite bucket: its bound is all we know
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


@dataclass
class FigureSampler:
    """One per worker: each minute, read the merged figures and offer the minute's sample."""

    db: Database
    previous: Reading | None = None

    async def sample(self, minute: datetime) -> None:
        reading = await asyncio.to_thread(read_figures)
        previous, self.previous = self.previous, reading
        if previous is not None:
            await insert_samples(self.db, minute, figures_between(previous, reading))


SAMPLER = web.AppKey("figure_sampler", FigureSampler)


async def figures_ctx(app: web.Application) -> AsyncIterator[None]:
    """In the main application's cleanup_ctx, after the metrics exporter (and so stopped
    before it, the cache and the database)."""
    sampler = FigureSampler(app[STORES].db)
    app[SAMPLER] = sampler
    task = asyncio.create_task(_sample_every_minute(app, sampler), name="admin-figures")
    yield
    await cancel_until_done(task)


async def _sample_every_minute(app: web.Application, sampler: FigureSampler) -> None:
    while True:
        now = datetime.now(UTC)
        minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        await asyncio.sleep((minute - now).total_seconds())
        exporter = app.get(METRICS)
        if exporter is not None:
            exporter.sync()
        try:
            await sampler.sample(minute)
        except DatabaseUnavailable as error:
            log.warning("admin figures not sampled: %s", error)
        except Exception:
            log.exception("admin figures not sampled")
