"""The benchmark's result writing on a tiny fake wrk run: parsing, ratios, Markdown, SVG.

The benchmark itself never runs in the test suite (``python -m bench``); this keeps a broken
formatter from reaching a benchmark run.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

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
