"""GET /metrics: Prometheus text, per route name, merged over every worker of run.py serve."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from service import metrics
from service.appkeys import DELIVERY_RUNTIME, STORES
from tests.conftest import API, Account
from tests.helpers import wait_until
from tests.processes import Server, start_server, stop_server, wait_until_healthy
from tests.smtp_sink import SmtpSink

Client = TestClient[web.Request, web.Application]
REQUESTS = "hireme_http_requests_total"
LATENCY_COUNT = "hireme_http_request_duration_seconds_count"
REQUESTS_PER_SERVER = 200
BATCH = 20  # concurrent fresh connections, so the kernel hands them to both workers


def parse(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text)
            for sample in family.samples]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of ``name`` over every series whose labels include ``labels``."""
    return sum(sample.value for sample in samples if sample.name == name
               and all(sample.labels.get(key) == value for key, value in labels.items()))


async def scrape(client: Client) -> list[Sample]:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return parse(await response.text())


async def test_requests_are_counted_by_route_name_status_and_method(
        client: Client, user: Account) -> None:
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get(f"{API}/users/{user.id}", headers=user.headers)).status == 200
    assert (await client.get(f"{API}/users/987654321", headers=user.headers)).status == 404
    assert (await client.get(f"/no/such/page/{user.id}")).status == 404
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew(REQUESTS, route="get_user", method="GET", status="200") == 3
    assert grew(LATENCY_COUNT, route="get_user", method="GET", status="200") == 3
    assert grew(REQUESTS, route="get_user", method="GET", status="404") == 1
    assert grew(REQUESTS, route="unmatched", method="GET", status="404") == 1
    assert grew(REQUESTS, route="metrics", method="GET", status="200") == 1  # the first scrape
    names = {route.name for route in client.app.router.routes()} | {"unmatched"}  # /admin too
    routes = {sample.labels["route"] for sample in after if sample.name == REQUESTS}
    assert routes <= names  # never a raw path, so never an id


async def test_pool_queue_deliveries_and_cache_figures_are_exported(
        client: Client, user: Account, smtp_sink: SmtpSink) -> None:
    cache = client.app[STORES].cache
    stats = client.app[DELIVERY_RUNTIME].queue.stats
    # The sign-up's verification email first: sent while a scrape is being read, it would
    # count in the figures on one side of the comparison and not the other.
    await wait_until(lambda: stats.sent >= 1, "the verification email sent")
    before = await scrape(client)
    lookups_before, sent_before = cache.hits + cache.misses, stats.sent
    await client.get(f"{API}/me", headers=user.headers)
    response = await client.post(f"{API}/auth/password_reset", json={"email": user.email})
    assert response.status < 300
    await wait_until(lambda: stats.sent != sent_before, "the reset email sent")
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("hireme_deliveries_total", outcome="sent") == stats.sent - sent_before
    assert grew("hireme_cache_lookups_total") == cache.hits + cache.misses - lookups_before > 0
    assert grew("hireme_db_pool_acquire_wait_seconds_count", pool="primary") > 0
    size = total(after, "hireme_db_pool_connections", pool="primary", state="size")
    in_use = total(after, "hireme_db_pool_connections", pool="primary", state="in_use")
    free = total(after, "hireme_db_pool_connections", pool="primary", state="free")
    assert size >= 1
    assert in_use + free == size
    assert total(after, "hireme_delivery_queue_depth") >= 0
    assert any(sample.name == "hireme_process_start_time_seconds" for sample in after)


# ---- run.py serve: two worker processes, one total ---------------------------------------

@pytest.fixture
async def server(tmp_path: Path, clean_database: str, redis_url: str,
                 redis_prefix: str) -> AsyncIterator[Server]:
    temp = tmp_path / "tmp"  # the server's TMPDIR, where its private metrics directory goes
    temp.mkdir()
    started = start_server(tmp_path, "serve", DATABASE_URL=clean_database, REDIS_URL=redis_url,
                           REDIS_PREFIX=redis_prefix, WEB_CONCURRENCY="2", LOG_LEVEL="WARNING",
                           TMPDIR=str(temp))
    try:
        await wait_until_healthy(started, workers=2)
        yield started
    finally:
        assert await stop_server(started) == 0, started.log_text()
    assert list(temp.iterdir()) == []  # the metrics directory went with the server


async def fetch(url: str) -> tuple[int, str]:
    """One request on a connection of its own, as separate clients would send it."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session, session.get(url) as answer:
        return answer.status, await answer.text()


def metrics_files(server: Server, tmp_path: Path) -> set[int]:
    """The worker pids that wrote files to the server's metrics directory."""
    directories = list((tmp_path / "tmp").glob("hireme-metrics-*"))
    assert len(directories) == 1
    return {int(path.stem.rpartition("_")[2]) for path in directories[0].glob("*.db")}


def pids(samples: list[Sample]) -> set[int]:
    return {int(sample.labels["pid"]) for sample in samples
            if sample.name == "hireme_process_start_time_seconds"}


async def test_a_scrape_of_run_py_serve_counts_both_workers_requests_in_one_total(
        server: Server, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{server.port}"
    for _ in range(REQUESTS_PER_SERVER // BATCH):
        answers = await asyncio.gather(*(fetch(f"{base}{API}/users/1") for _ in range(BATCH)))
        assert {status for status, _ in answers} == {401}
    workers = server.workers()
    assert metrics_files(server, tmp_path) == workers  # both workers served some

    status, text = await fetch(f"{base}/metrics")
    assert status == 200
    samples = parse(text)
    assert total(samples, REQUESTS, route="get_user") == REQUESTS_PER_SERVER
    assert total(samples, LATENCY_COUNT, route="get_user") == REQUESTS_PER_SERVER
    assert pids(samples) == workers

    # A worker that dies leaves its counts in the totals but its live figures go with it.
    dead = min(workers)
    os.kill(dead, signal.SIGKILL)
    await wait_until(lambda: len(server.workers()) == 2 and dead not in server.workers(),
                     "a replacement for the killed worker", timeout=20)
    await wait_until_healthy(server, workers=2)
    samples = parse((await fetch(f"{base}/metrics"))[1])
    assert dead not in pids(samples)
    assert total(samples, REQUESTS, route="get_user") == REQUESTS_PER_SERVER


def test_a_scrape_while_an_exited_workers_files_are_removed_still_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor removes an exited worker's gauge files while another worker may be
    between listing the files and reading them: the scrape lists them again, never a 500."""
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    _write_metric(tmp_path / "counter_1.db", REQUESTS)  # a worker that stays up throughout
    # Another process, as the supervisor and the workers are: a thread here would hold a new
    # file empty for a whole GIL switch interval, which no real worker does.
    churn = multiprocessing.get_context("fork").Process(target=_workers_come_and_go,
                                                        args=(tmp_path, 200))
    churn.start()
    try:
        scrapes = 0
        while churn.is_alive() or scrapes < 10:
            body, _ = metrics.render()
            assert REQUESTS.encode() in body
            scrapes += 1
    finally:
        churn.join()
    assert churn.exitcode == 0


def _workers_come_and_go(directory: Path, restarts: int) -> None:
    """Each restart: a new worker's files appear, then it exits and the supervisor removes its
    gauge file (its counter file stays), a few hundred times a second."""
    for pid in range(100_000, 100_000 + restarts):
        _write_metric(directory / f"gauge_livesum_{pid}.db", "hireme_delivery_queue_depth")
        _write_metric(directory / f"counter_{pid}.db", REQUESTS)
        metrics.mark_process_dead(pid)
        time.sleep(0.002)


def _write_metric(path: Path, name: str) -> None:
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    stored = MmapedDict(str(path))
    stored.write_value(mmap_key(name, name, [], [], name), 1.0, 0.0)
    stored.close()
