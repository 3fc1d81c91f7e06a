"""The dashboard's live figures: read from the merged metrics each minute, one sample per
minute whichever workers offer it, drawn as the last hour."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from service.admin.figures import SAMPLER, p95
from sql.db import Database
from tests.admin_client import Client, make_admin, sign_in
from tests.conftest import API, Account, ClientFactory


def test_p95_interpolates_within_the_bucket_of_the_95th_request() -> None:
    before = {0.1: 10.0, 0.5: 10.0, 1.0: 10.0, float("inf"): 10.0}
    after = {0.1: 90.0, 0.5: 110.0, 1.0: 110.0, float("inf"): 110.0}  # 100 new requests
    # 80 under 0.1 s, 20 between 0.1 and 0.5 s: the 95th is 3/4 of the way into that bucket.
    assert abs(p95(before, after) - 0.4) < 1e-9
    assert p95(after, after) == 0.0
    slow = {0.1: 0.0, 0.5: 0.0, 1.0: 0.0, float("inf"): 10.0}
    assert p95({}, slow) == 1.0  # past the last bound, its bound is all that is known


async def test_samples_become_figures_and_charts(client: Client, make_client: ClientFactory,
                                                 db: Database, user: Account) -> None:
    admin = await make_admin(client, db)
    sampler = client.app[SAMPLER]
    other_worker = (await make_client()).app[SAMPLER]
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    await sampler.sample(minute - timedelta(minutes=2))  # a first reading: nothing written
    assert await db.fetch_value("SELECT count(*) FROM admin_metric_samples") == 0
    await other_worker.sample(minute - timedelta(minutes=2))
    for _ in range(20):
        assert (await client.get(f"{API}/me", headers=user.headers)).status == 200
    await sampler.sample(minute - timedelta(minutes=1))
    await other_worker.sample(minute - timedelta(minutes=1))  # the same minute: not twice
    await sampler.sample(minute)
    rows = await db.fetch_all("SELECT figure, count(*) AS n FROM admin_metric_samples "
                              "GROUP BY figure")
    assert {row["figure"]: row["n"] for row in rows}["request_rate"] == 2
    rate = await db.fetch_value("SELECT value FROM admin_metric_samples WHERE figure = "
                                "'request_rate' ORDER BY taken_at LIMIT 1")
    assert rate > 0
    await sign_in(client, admin)
    html = await (await client.get("/admin/")).text()
    for label in ("Requests", "p95 latency", "Errors (5xx)", "DB pool in use",
                  "Delivery queue", "Cache hits", "Deliveries sent"):
        assert f"<div>{label}</div>" in html, label
    assert len(re.findall(r"<polyline points=\"[0-9., ]+\"", html)) == 9
    assert "<script" not in html
