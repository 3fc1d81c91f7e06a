"""Benchmark results: parse wrk's JSON summary, set each figure beside its baseline, and
write JSON, Markdown and an SVG chart (hand-written SVG, no plotting library)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path
from typing import Any

# Which baseline each group of endpoints is held against (ISSUE 10, "Targets"). Login is
# argon2 by design and has none: a ratio to a query would say nothing.
BASELINE_OF_GROUP = {"cached": "redis GET", "db": "aiopg query", "write": "aiopg query",
                     "mixed": "aiopg query"}
JSON_MARKER = "WRK_JSON "


@dataclass
class CaseResult:
    name: str
    group: str  # baseline | cached | db | write | auth | mixed
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: dict[str, int]
    connections: int
    rps_ratio: float | None = None  # req/s over the group's baseline req/s
    p95_ratio: float | None = None  # p95 over the baseline's p95

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass
class Report:
    meta: dict[str, Any]
    cases: list[CaseResult]
    delivery: dict[str, Any] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)


def parse_wrk(name: str, group: str, connections: int, output: str) -> CaseResult:
    """The case's figures from the line our Lua ``done()`` prints (latencies in µs)."""
    for line in output.splitlines():
        if line.startswith(JSON_MARKER):
            data = json.loads(line[len(JSON_MARKER):])
            break
    else:
        raise ValueError(f"{name}: wrk printed no summary:\n{output[-2000:]}")
    return CaseResult(
        name=name, group=group, requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6, p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        errors={key: int(value) for key, value in data["errors"].items()},
        connections=connections)


def add_ratios(cases: list[CaseResult]) -> None:
    """Each non-baseline case's req/s and p95 as a ratio to its group's baseline."""
    baselines = {(case.name, case.connections): case
                 for case in cases if case.group == "baseline"}
    for case in cases:
        baseline = baselines.get((BASELINE_OF_GROUP.get(case.group, ""), case.connections))
        if baseline is None:
            continue
        case.rps_ratio = case.rps / baseline.rps if baseline.rps else None
        case.p95_ratio = case.p95_ms / baseline.p95_ms if baseline.p95_ms else None


def to_json(report: Report) -> str:
    cases = [{**asdict(case), "rps": round(case.rps, 1)} for case in report.cases]
    return json.dumps({"meta": report.meta, "cases": cases, "delivery": report.delivery,
                       "live": report.live}, indent=1) + "\n"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def to_markdown(report: Report, chart_name: str | None = None) -> str:
    meta = report.meta
    lines = [
        f"Run {meta.get('started', '')} on {meta.get('machine', '')}; "
        f"`{meta.get('command', '')}`; {meta.get('notes', '')}".rstrip("; "),
    ]
    if report.cases:  # none in a run of only the delivery or live case
        lines += ["", "| target | group | conns | req/s | p50 ms | p95 ms | p99 ms | errors "
                      "| req/s vs baseline | p95 vs baseline |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for case in report.cases:
        lines.append(
            f"| {case.name} | {case.group} | {case.connections} | {case.rps:,.0f} "
            f"| {case.p50_ms:.1f} | {case.p95_ms:.1f} | {case.p99_ms:.1f} "
            f"| {case.error_count} | {_ratio(case.rps_ratio)} | {_ratio(case.p95_ratio)} |")
    if report.delivery:
        d = report.delivery
        lines += ["", f"Delivery: {d.get('rows')} outbox emails through {d.get('processes')} "
                      f"processes into a local SMTP sink: {d.get('rows_per_second', 0):,.0f} "
                      f"rows/s, p95 commit → received {d.get('p95_ms', 0):,.0f} ms, "
                      f"{d.get('received')} received ({d.get('how', '')})."]
    if report.live:
        lines += ["", live_markdown(report.live)]
    if chart_name and report.cases:
        lines += ["", f"![throughput and p95 per endpoint]({chart_name})"]
    return "\n".join(lines) + "\n"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"


def live_markdown(live: dict[str, Any]) -> str:
    """The live case in two sentences: memory per idle stream, then fan-out latency."""
    failed = sum(live.get("failed", {}).values())
    per_stream = live.get("kib_per_stream")
    memory = "n/a" if per_stream is None else f"{per_stream:,.1f} KiB"
    return (
        f"Live: {live.get('open', 0):,} of {live.get('streams', 0):,} event streams open "
        f"({live.get('users', 0):,} users, {live.get('workers')} workers, opened in "
        f"{live.get('open_seconds')} s, {failed} failed): workers' RSS "
        f"{live.get('rss_before_kib', 0) / 1024:,.1f} → {live.get('rss_after_kib', 0) / 1024:,.1f} "
        f"MiB, **{memory} per idle stream**. Fan-out for {live.get('fan_out_seconds')} s "
        f"({live.get('how', '')}): {live.get('received', 0):,} of {live.get('expected', 0):,} "
        f"events received ({live.get('unexpected', 0)} unexpected, "
        f"{live.get('writes_failed', 0)} writes failed), write answered → event "
        f"p50 {_ms(live.get('p50_ms'))}, **p95 {_ms(live.get('p95_ms'))}**, "
        f"p99 {_ms(live.get('p99_ms'))}; from the write sent p95 {_ms(live.get('sent_p95_ms'))}"
        f" (the write itself: p95 {_ms(live.get('write_p95_ms'))})." + _ending(live)
        + _redis_warnings(live))


def _ending(live: dict[str, Any]) -> str:
    if "server_ended_seconds" not in live:  # not waited for (--quick)
        return ""
    seconds = live.get("server_ended_seconds")
    if seconds is None:
        return " The service had not ended every stream 30 s after the client left."
    return f" The service ended the streams {seconds} s after the client left."


def _redis_warnings(live: dict[str, Any]) -> str:
    warnings = {phase: count for phase, count in live.get("redis_warnings", {}).items() if count}
    if not warnings:
        return ""
    return (" The service logged 'redis unavailable' (its Redis breaker opened) while "
            + ", ".join(f"{phase} ({count}×)" for phase, count in warnings.items()) + ".")


ROW_HEIGHT = 22
LABEL_WIDTH = 190
PANEL_WIDTH = 330
GROUP_COLOURS = {"baseline": "#888888", "cached": "#2b8a3e", "db": "#1c6dd0",
                 "write": "#d9480f", "auth": "#862e9c", "mixed": "#e67700"}


def to_svg(report: Report) -> str:
    """Two bar panels per row, req/s and p95 latency, baselines first."""
    cases = sorted(report.cases, key=lambda case: case.group != "baseline")
    top = 40
    height = top + ROW_HEIGHT * len(cases) + 20
    width = LABEL_WIDTH + 2 * PANEL_WIDTH + 40
    most_rps = max((case.rps for case in cases), default=1.0) or 1.0
    most_p95 = max((case.p95_ms for case in cases), default=1.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{LABEL_WIDTH}" y="20" font-weight="bold">requests per second</text>',
        f'<text x="{LABEL_WIDTH + PANEL_WIDTH + 20}" y="20" font-weight="bold">'
        f'p95 latency (ms)</text>',
    ]
    for row, case in enumerate(cases):
        y = top + row * ROW_HEIGHT
        colour = GROUP_COLOURS.get(case.group, "#444444")
        label = escape(f"{case.name} ({case.connections}c)")
        rps_width = PANEL_WIDTH * 0.8 * case.rps / most_rps
        p95_width = PANEL_WIDTH * 0.8 * case.p95_ms / most_p95
        p95_x = LABEL_WIDTH + PANEL_WIDTH + 20
        parts += [
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 14}" text-anchor="end">{label}</text>',
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{rps_width:.1f}" height="15" '
            f'fill="{colour}"/>',
            f'<text x="{LABEL_WIDTH + rps_width + 4:.1f}" y="{y + 14}">{case.rps:,.0f}</text>',
            f'<rect x="{p95_x}" y="{y + 3}" width="{p95_width:.1f}" height="15" '
            f'fill="{colour}"/>',
            f'<text x="{p95_x + p95_width + 4:.1f}" y="{y + 14}">{case.p95_ms:.1f}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_report(report: Report, directory: Path, stamp: str) -> dict[str, Path]:
    """``<stamp>.json``, ``<stamp>.md``, ``<stamp>.svg`` and ``latest.md`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    add_ratios(report.cases)
    paths = {suffix: directory / f"{stamp}.{suffix}" for suffix in ("json", "md", "svg")}
    paths["json"].write_text(to_json(report), encoding="utf-8")
    paths["svg"].write_text(to_svg(report), encoding="utf-8")
    markdown = to_markdown(report, paths["svg"].name)
    paths["md"].write_text(markdown, encoding="utf-8")
    paths["latest"] = directory / "latest.md"
    paths["latest"].write_text(markdown, encoding="utf-8")
    return paths
