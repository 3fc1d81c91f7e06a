"""The benchmark's result writing on a tiny fake wrk run: parsing, ratios, Markdown, SVG.

The benchmark itself never runs in the test suite (``python -m bench``); this keeps a broken
formatter from reaching a benchmark run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.live import OpenStream, Write, rss_kib, summarize, worker_pids
from bench.report import Report, parse_wrk, write_report


def wrk_output(requests: int, p95_us: int, status_errors: int = 0) -> str:
    """What wrk prints with our Lua done(): its own text, then the summary line."""
    summary = {"requests": requests, "duration_us": 5_000_000, "p50_us": p95_us // 3,
               "p95_us": p95_us, "p99_us": p95_us * 2,
               "errors": {"connect": 0, "read": 0, "write": 0, "status": status_errors,
                          "timeout": 1}}
    return ("Running 5s test @ http://127.0.0.1:8000/hello\n"
            "  2 threads and 64 connections\n"
            f"WRK_JSON {json.dumps(summary)}\n")


def fake_report() -> Report:
    cases = [
        parse_wrk("redis GET", "baseline", 64, wrk_output(50_000, 9_000)),
        parse_wrk("aiopg query", "baseline", 64, wrk_output(10_000, 40_000)),
        parse_wrk("me", "cached", 64, wrk_output(25_000, 18_000)),
        parse_wrk("feed", "db", 64, wrk_output(2_500, 120_000, status_errors=3)),
        parse_wrk("login", "auth", 16, wrk_output(100, 900_000)),
    ]
    return Report(meta={"started": "20260101T000000", "machine": "test box, 2 CPUs",
                        "command": "python -m bench --quick", "notes": "fake"},
                  cases=cases, delivery={"rows": 10_000, "processes": 2, "received": 10_000,
                                         "rows_per_second": 800.0, "p95_ms": 950.0})


def test_login_is_held_against_no_baseline(tmp_path: Path) -> None:
    report = fake_report()
    report.cases.append(parse_wrk("aiopg query", "baseline", 16, wrk_output(10_000, 9_000)))
    paths = write_report(report, tmp_path, "20260101T000000")
    cases = {case["name"]: case for case in json.loads(paths["json"].read_text())["cases"]}
    assert cases["login"]["rps_ratio"] is None and cases["login"]["p95_ratio"] is None


def test_results_are_written_with_ratios_to_their_baselines(tmp_path: Path) -> None:
    paths = write_report(fake_report(), tmp_path, "20260101T000000")

    data = json.loads(paths["json"].read_text())
    cases = {case["name"]: case for case in data["cases"]}
    assert cases["me"]["rps"] == 5_000.0
    assert cases["me"]["rps_ratio"] == pytest.approx(0.5)  # against the redis GET
    assert cases["feed"]["rps_ratio"] == pytest.approx(0.25)  # against the aiopg query
    assert cases["feed"]["p95_ratio"] == pytest.approx(3.0)
    assert cases["feed"]["errors"]["status"] == 3
    assert cases["login"]["rps_ratio"] is None  # no baseline ran at 16 connections
    assert data["delivery"]["rows_per_second"] == 800.0

    markdown = paths["md"].read_text()
    assert "| me | cached | 64 | 5,000 | 6.0 | 18.0 | 36.0 | 1 | 50% | 200% |" in markdown
    assert "| feed | db | 64 | 500 | 40.0 | 120.0 | 240.0 | 4 | 25% | 300% |" in markdown
    assert "800 rows/s" in markdown
    assert paths["latest"].read_text() == markdown
    assert f"]({paths['svg'].name})" in markdown


def test_the_chart_is_valid_svg_with_a_bar_pair_per_case(tmp_path: Path) -> None:
    paths = write_report(fake_report(), tmp_path, "20260101T000000")

    root = ET.fromstring(paths["svg"].read_text())
    bars = [rect for rect in root.iter("{http://www.w3.org/2000/svg}rect")
            if rect.get("height") == "15"]
    assert len(bars) == 2 * 5
    labels = [text.text for text in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "redis GET (64c)" in labels and "feed (64c)" in labels
    widths = {label: float(bar.get("width", 0)) for label, bar in zip(
        [t for t in labels if t and t.endswith("c)")], bars[::2], strict=True)}
    assert widths["redis GET (64c)"] > widths["me (64c)"] > widths["feed (64c)"]


def test_wrk_output_without_a_summary_is_an_error() -> None:
    with pytest.raises(ValueError, match="no summary"):
        parse_wrk("me", "cached", 64, "unable to connect to 127.0.0.1:8000\n")


def test_each_connection_count_is_held_against_its_own_baseline(tmp_path: Path) -> None:
    """A run at 64 and 16 connections: each row against the baseline at its own count
    (the 16-connection baseline used to replace the 64 one, leaving the 64 rows blank)."""
    cases = [
        parse_wrk("redis GET", "baseline", 64, wrk_output(50_000, 9_000)),
        parse_wrk("redis GET", "baseline", 16, wrk_output(40_000, 3_000)),
        parse_wrk("me", "cached", 64, wrk_output(25_000, 18_000)),
        parse_wrk("me", "cached", 16, wrk_output(10_000, 6_000)),
    ]
    write_report(Report(meta={"started": "20260101T000000", "machine": "test box",
                              "command": "python -m bench", "notes": ""},
                        cases=cases, delivery={}), tmp_path, "20260101T000000")
    ratios = {case.connections: case.rps_ratio for case in cases if case.name == "me"}
    assert ratios[64] == pytest.approx(0.5)
    assert ratios[16] == pytest.approx(0.25)


def test_live_events_are_matched_to_their_writes_and_written_with_memory_per_stream(
        tmp_path: Path) -> None:
    """Each stream's n-th event after its first belongs to its user's n-th successful write; a
    missed event counts as expected but not received, one without a write as unexpected."""
    first, second, other = OpenStream(user=0), OpenStream(user=0), OpenStream(user=1)
    first.arrivals = [10.12, 11.30]
    second.arrivals = [10.15]  # missed the second write's event
    other.arrivals = [10.25, 12.0]  # the second follows a write that failed
    writes = [Write(0, sent=10.0, answered=10.10, status=204),
              Write(1, sent=10.0, answered=10.20, status=204),
              Write(0, sent=11.0, answered=11.05, status=204),
              Write(1, sent=11.0, answered=11.40, status=500)]
    live = summarize([first, second, other], writes, before={7: 1000, 8: 1000},
                     after={7: 1040, 8: 1020}, files_before={7: 10, 8: 10},
                     files_after={7: 12, 8: 11}, open_seconds=0.5, limit=20000, writers=2,
                     seconds=2, users=2)

    assert (live["expected"], live["received"], live["unexpected"]) == (5, 4, 1)
    assert live["writes_failed"] == 1
    assert live["kib_per_stream"] == 20.0  # 60 KiB more over 3 streams
    assert (live["p50_ms"], live["p95_ms"]) == (50.0, 250.0)  # of 20, 50, 50, 250 ms

    live["redis_warnings"] = {"opening": 0, "events": 0, "ending": 62}
    live["server_ended_seconds"] = 19.5
    paths = write_report(Report(meta={"started": "20260101T000000", "machine": "test box",
                                      "command": "python -m bench --only live", "notes": ""},
                                cases=[], live=live), tmp_path, "20260101T000000")
    assert json.loads(paths["json"].read_text())["live"]["received"] == 4
    markdown = paths["md"].read_text()
    assert "**20.0 KiB per idle stream**" in markdown
    assert "4 of 5 events received (1 unexpected, 1 writes failed)" in markdown
    assert "**p95 250.0 ms**" in markdown
    assert "| target |" not in markdown  # no empty table of wrk cases
    assert "The service ended the streams 19.5 s after the client left." in markdown
    assert "Redis breaker opened) while ending (62×)." in markdown


def test_the_workers_memory_is_read_from_the_children_of_the_started_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; print('up', flush=True); "
                              "time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        # Once it has said so, it is a Python process (read earlier, it could still be the
        # fork before exec, a few KiB).
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        assert child.pid in worker_pids(os.getpid())
        assert rss_kib(child.pid) > 1000  # a Python process holds megabytes
    finally:
        child.kill()
        child.communicate()
