"""GET /metrics: Prometheus text for every worker process of ``run.py serve`` together.

Under ``run.py serve`` the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker
exists; each worker writes its figures to files there and a scrape, answered by whichever
worker accepts it, merges every process's files (prometheus-client's multiprocess mode).
Without it (the in-process test client) a scrape reads this process's own registry.

prometheus-client picks how it stores values when it is first imported, so this module
imports it only on first use, never at import time: run.py imports the app before the
supervisor has set the variable.

Request counts are recorded by the access-log middleware (``record_request``). Everything else
already counted elsewhere (the pool, the delivery queue's ``stats``, the cache's hits and
misses) is read, not re-counted: ``MetricsExporter.sync`` copies those numbers into gauges and
counters every ``SYNC_SECONDS`` and before each scrape, so another worker's figures are at most
that old.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from cache.client import Cache
from service.appkeys import DELIVERY_RUNTIME, STORES
from service.live import STREAMS, LiveStats
from sql.db import Database, Pool
from tasks.background import cancel_until_done
from tasks.queue import OutboxQueue

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram
    from prometheus_client.metrics_core import Metric

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SYNC_SECONDS = 5.0
READ_ATTEMPTS = 5  # listings of the worker files one scrape may take
UNMATCHED = "unmatched"  # the route label of a path no route matches: never the raw path
OTHER_METHOD = "other"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class Instruments:
    requests: Counter
    latency: Histogram
    start_time: Gauge
    pool_connections: Gauge
    pool_wait: Histogram
    queue_depth: Gauge
    deliveries: Counter
    skipped: Counter
    lost_leases: Counter
    cache_lookups: Counter
    replica_lag: Gauge
    replica_healthy: Gauge
    live_streams: Gauge
    live_events: Counter


@functools.cache
def instruments() -> Instruments:
    """This process's metric objects, made on first use (see the module docstring)."""
    from prometheus_client import Counter, Gauge, Histogram

    made = Instruments(
        requests=Counter("hireme_http_requests_total", "HTTP requests answered",
                         ["route", "method", "status"]),
        latency=Histogram("hireme_http_request_duration_seconds",
                          "Time from request to answer", ["route", "method", "status"]),
        # "liveall": one series per live worker, labelled with its pid.
        start_time=Gauge("hireme_process_start_time_seconds",
                         "Start time of each worker process (unix seconds)",
                         multiprocess_mode="liveall"),
        pool_connections=Gauge("hireme_db_pool_connections",
                               "Database pool connections by state, summed over live workers",
                               ["pool", "state"], multiprocess_mode="livesum"),
        pool_wait=Histogram("hireme_db_pool_acquire_wait_seconds",
                            "Time spent waiting for a pooled database connection", ["pool"]),
        queue_depth=Gauge("hireme_delivery_queue_depth",
                          "Deliveries waiting in the workers' in-process queues",
                          multiprocess_mode="livesum"),
        deliveries=Counter("hireme_deliveries_total",
                           "Delivery attempts recorded, by outcome", ["outcome"]),
        skipped=Counter("hireme_deliveries_skipped_total",
                        "Deliveries skipped, by reason", ["reason"]),
        lost_leases=Counter("hireme_delivery_lost_leases_total",
                            "Deliveries dropped because another process took the row over"),
        cache_lookups=Counter("hireme_cache_lookups_total",
                              "Cache lookups, by cache and result", ["cache", "result"]),
        # Each worker measures every replica itself; the worst figure is the one to see.
        replica_lag=Gauge("hireme_db_replica_lag_seconds",
                          "How far each read replica is behind the primary, as last checked "
                          "(0: it has replayed all the primary had written)", ["pool"],
                          multiprocess_mode="livemax"),
        replica_healthy=Gauge("hireme_db_replica_healthy",
                              "1 while a replica gets reads (answering, lag within "
                              "REPLICA_MAX_LAG_SECONDS), else 0", ["pool"],
                              multiprocess_mode="livemin"),
        live_streams=Gauge("hireme_live_streams", "Open live event streams, over live workers",
                           multiprocess_mode="livesum"),
        live_events=Counter("hireme_live_events_sent_total",
                            "Live events written to streams (replays included)"),
    )
    made.start_time.set(_process_start_time())
    return made


def _process_start_time() -> float:
    from prometheus_client.process_collector import ProcessCollector

    for family in ProcessCollector(registry=None).collect():
        if family.name == "process_start_time":
            return float(family.samples[0].value)
    return 0.0


def record_request(request: web.Request, status: int, seconds: float) -> None:
    """Count one answered request under its route name (never the path, which holds ids)."""
    route = request.match_info.route.name or UNMATCHED
    method = request.method if request.method in KNOWN_METHODS else OTHER_METHOD
    made = instruments()
    labels = (route, method, str(status))
    made.requests.labels(*labels).inc()
    made.latency.labels(*labels).observe(seconds)


@dataclass
class MetricsExporter:
    """Copies one app's pool, queue and cache figures into this process's metrics."""

    database: Database
    cache: Cache
    queue: OutboxQueue
    live: LiveStats | None = None
    _exported: dict[tuple[str, ...], int] = field(default_factory=dict)

    def attach(self) -> None:
        """Have every pool report its acquire waits to the histogram."""
        for name, pool in self.pools():
            pool.on_acquire_wait = instruments().pool_wait.labels(name).observe

    def pools(self) -> list[tuple[str, Pool]]:
        replicas = [(f"replica{n}", pool) for n, pool in enumerate(self.database.replicas)]
        return [("primary", self.database.primary), *replicas]

    def sync(self) -> None:
        made = instruments()
        for name, pool in self.pools():
            made.pool_connections.labels(name, "size").set(pool.size)
            made.pool_connections.labels(name, "in_use").set(pool.in_use)
            made.pool_connections.labels(name, "free").set(pool.size - pool.in_use)
        for replica in self.database.replica_set.replicas:
            made.replica_lag.labels(replica.name).set(replica.lag_seconds)
            made.replica_healthy.labels(replica.name).set(1 if replica.healthy else 0)
        made.queue_depth.set(self.queue.depth)
        stats = self.queue.stats
        for outcome in ("sent", "retried", "dead"):
            self._add(made.deliveries.labels(outcome), ("deliveries", outcome),
                      getattr(stats, outcome))
        for reason, count in list(stats.skipped.items()):
            self._add(made.skipped.labels(reason), ("skipped", reason), count)
        self._add(made.lost_leases, ("lost_leases",), stats.lost_leases)
        self._add(made.cache_lookups.labels("redis", "hit"), ("hit",), self.cache.hits)
        self._add(made.cache_lookups.labels("redis", "miss"), ("miss",), self.cache.misses)
        if self.live is not None:
            made.live_streams.set(self.live.open)
            self._add(made.live_events, ("live_events",), self.live.sent)

    def _add(self, counter: Counter, key: tuple[str, ...], total: int) -> None:
        """Counters only go up: add what was counted since the last sync."""
        delta = total - self._exported.get(key, 0)
        if delta > 0:
            counter.inc(delta)
            self._exported[key] = total


METRICS = web.AppKey("metrics", MetricsExporter)


async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the database, cache and deliveries are up: export their figures until shutdown."""
    exporter = MetricsExporter(app[STORES].db, app[STORES].cache, app[DELIVERY_RUNTIME].queue,
                               app[STREAMS].stats if STREAMS in app else None)
    exporter.attach()
    app[METRICS] = exporter
    task = asyncio.create_task(_sync_every(exporter, SYNC_SECONDS), name="metrics-sync")
    yield
    await cancel_until_done(task)
    exporter.sync()  # what this worker counted last outlives it in the merged totals


async def _sync_every(exporter: MetricsExporter, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        exporter.sync()


async def metrics(request: web.Request) -> web.Response:
    instruments()  # made here, not in render's thread: a first scrape still lists this worker
    exporter = request.app.get(METRICS)
    if exporter is not None:
        exporter.sync()  # this worker's own figures are current in the answer
    body, content_type = await asyncio.to_thread(render)
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


def render() -> tuple[bytes, str]:
    """Every worker's figures merged when under run.py serve, else this process's."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(_Snapshot(merged_families())), CONTENT_TYPE_LATEST


def merged_families() -> list[Metric]:
    """Every worker's figures merged when under run.py serve, else this process's (a scrape
    and the admin dashboard's samples read the same).

    Workers come and go while a scrape reads their files: a new worker's file is empty for a
    moment after it is created (it has nothing to add yet, so it is left out), and the
    supervisor removes an exited worker's gauge files, maybe between the listing and the
    read (then the scrape lists the files again).
    """
    from prometheus_client import REGISTRY
    from prometheus_client.multiprocess import MultiProcessCollector

    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return list(REGISTRY.collect())
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            return list(MultiProcessCollector.merge(  # type: ignore[no-untyped-call]
                _written_files(Path(directory)), accumulate=True))
        except FileNotFoundError:
            if attempt == READ_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _written_files(directory: Path) -> list[str]:
    files = []
    for path in directory.glob("*.db"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size > 0:
                files.append(str(path))
    return files


class _Snapshot:
    """Families already collected, in the shape ``generate_latest`` reads."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def mark_process_dead(pid: int) -> None:
    """In the supervisor, for a worker that exited: drop its live gauges (pool, queue, start
    time) from the merged figures; its counters stay in the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
