"""The benchmark: bare baselines, then every hot endpoint of ``run.py serve`` alone, the mixed
workload, the live case (thousands of open event streams, bench/live.py) and the delivery case,
all in one run with the same process count.

``python -m bench --quick`` (under 3 minutes: scale 0.1, 5 s per case, 64 connections) or
``python -m bench`` (scale 1, 15 s per case, 64 and 16 connections). The service runs with
WRITE_RATE_LIMIT and AUTH_RATE_LIMIT raised out of the way (one pool of 1,000 users makes
far more writes than any real user may) and DELIVERY_SWEEP_SECONDS=1; everything else is
default. Results go to bench/results/<time>.json, .md, .svg and latest.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.delivery import Sink, run_delivery
from bench.live import raise_open_files_limit, run_live
from bench.prepare import (
    ROOT,
    ensure_database,
    ensure_seeded,
    ensure_wrk,
    vacuum,
    write_pool_lua,
)
from bench.report import CaseResult, Report, parse_wrk, to_markdown, write_report
from bench.warm import warm_caches

RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "lua"
BASELINES = (("hello world JSON", "/hello"), ("redis GET", "/redis"), ("aiopg query", "/aiopg"))
CASES = (("notifications_unread", "cached"), ("messages_unread", "cached"), ("me", "cached"),
         ("jobs", "cached"), ("feed", "db"), ("jobs_q_common", "db"), ("jobs_q_rare", "db"),
         ("jobs_filter", "db"), ("notifications", "db"), ("conversations", "db"),
         ("messages", "db"), ("post", "write"), ("like", "write"), ("send_message", "write"),
         ("mixed", "mixed"))
# argon2 per request: its queue of hashes outlives wrk's run, so it goes last, after the
# delivery case, and at no more than this many connections.
LOGIN_CONNECTIONS = 16
UNLIMITED = "100000000/60"
DELIVERY_ROWS = 10_000
LIVE_STREAMS = 5_000
LIVE_WRITERS = 100  # users whose write sends their streams an event, each second


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="scale 0.1, 5 s, 64 connections")
    parser.add_argument("--scale", type=float, help="seed scale (default 1, quick 0.1)")
    parser.add_argument("--duration", type=int, help="seconds per case (default 15, quick 5)")
    parser.add_argument("--connections", default=None,
                        help="comma-separated, e.g. 64,16 (default 64,16; quick 64)")
    parser.add_argument("--workers", type=int,
                        default=int(os.environ.get("WEB_CONCURRENCY", "2")),
                        help="processes for the service and the baselines (WEB_CONCURRENCY, 2)")
    parser.add_argument("--database", default="hireme_bench", help="database to seed and use")
    parser.add_argument("--only", default="",
                        help="comma-separated cases to run (default: all): wrk case names "
                             "(the baselines run with them), 'baselines', 'delivery', 'live', "
                             "'login'")
    parser.add_argument("--streams", type=int, default=LIVE_STREAMS,
                        help=f"open event streams in the live case (default {LIVE_STREAMS:,})")
    parser.add_argument("--live-writers", type=int, default=LIVE_WRITERS,
                        help="users whose write sends each of their streams an event, every "
                             f"second of the live case (default {LIVE_WRITERS})")
    parser.add_argument("--live-seconds", type=int,
                        help="seconds of events in the live case (default 25, quick 10)")
    parser.add_argument("--note", default="", help="a remark stored with the results")
    args = parser.parse_args(argv)
    args.scale = args.scale or (0.1 if args.quick else 1.0)
    args.duration = args.duration or (5 if args.quick else 15)
    args.live_seconds = args.live_seconds or (10 if args.quick else 25)
    args.connections = [int(c) for c in (args.connections or
                                         ("64" if args.quick else "64,16")).split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Before any server starts (they inherit it): the live case holds a socket per stream.
    raise_open_files_limit()
    wrk = ensure_wrk()
    admin_url = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    database_url = ensure_database(admin_url, args.database)
    base_env = {key: value for key, value in os.environ.items()}
    base_env.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
    tokens = RESULTS / f"tokens-{args.database}.json"
    summary = ensure_seeded(database_url, args.scale, tokens, base_env)
    pool_lua = write_pool_lua(summary, RESULTS / f"tokens-{args.database}.lua")
    print("VACUUM (ANALYZE), CHECKPOINT", flush=True)
    autovacuum = vacuum(database_url)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    meta = machine_meta(args, summary, stamp, autovacuum)
    only = set(filter(None, args.only.split(",")))
    cases: list[CaseResult] = []
    delivery: dict[str, Any] = {}
    live: dict[str, Any] = {}
    sink = Sink()
    smtp_port = sink.start()
    try:
        wrk_cases = [(name, group) for name, group in CASES if selected(only, name)]
        # The ratios of any wrk case need the baselines of the same run.
        if wrk_cases or "baselines" in only:
            with baselines(args.workers, database_url, redis_url) as port:
                for name, path in BASELINES:
                    for conns in args.connections:
                        cases.append(run_wrk(wrk, name, "baseline", conns, args.duration,
                                             f"http://127.0.0.1:{port}{path}",
                                             LUA / "plain.lua"))
        env = service_env(base_env, database_url, redis_url, args.workers, smtp_port, stamp)
        with service(env) as server:
            url = f"http://127.0.0.1:{server.port}"
            if wrk_cases:
                pooled = [user["token"] for user in summary["users"]]
                print(f"warming {len(pooled)} users' cached reads", flush=True)
                print(f"warm in {warm_caches(url, pooled):.1f} s", flush=True)
                run_wrk(wrk, "warm-up", "mixed", 64, 3, url, LUA / "hireme.lua", pool_lua,
                        "mixed")
            for name, group in wrk_cases:
                for conns in args.connections:
                    cases.append(run_wrk(wrk, name, group, conns, args.duration, url,
                                         LUA / "hireme.lua", pool_lua, name))
            # Before the delivery case: the emails it leaves unsent (quick) would keep the
            # workers busy while the streams are measured.
            if selected(only, "live"):
                live = run_live(url, [user["token"] for user in summary["users"]], server.pid,
                                server.log,
                                streams=args.streams, seconds=args.live_seconds,
                                writers=args.live_writers,
                                wait_for_end=not args.quick)  # up to 30 s; quick stays < 3 min
            if selected(only, "delivery"):
                delivery = run_delivery(sink, database_url, DELIVERY_ROWS,
                                        users=summary["counts"]["users"],
                                        processes=args.workers,
                                        timeout=30 if args.quick else 120)
            if selected(only, "login"):
                cases.append(run_wrk(wrk, "login", "auth", LOGIN_CONNECTIONS, args.duration,
                                     url, LUA / "hireme.lua", pool_lua, "login"))
    finally:
        sink.stop()
    report = Report(meta=meta, cases=cases, delivery=delivery, live=live)
    paths = write_report(report, RESULTS, stamp)
    print(to_markdown(report))
    print(f"written: {', '.join(str(path.relative_to(ROOT)) for path in paths.values())}")
    return 0


def selected(only: set[str], name: str) -> bool:
    return not only or name in only


def machine_meta(args: argparse.Namespace, summary: dict[str, Any], stamp: str,
                 autovacuum: str) -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = os.getloadavg()
    busy = load[0] > 0.5 * (os.cpu_count() or 1)
    notes = [f"scale {args.scale} ({summary['counts']['users']:,} users, "
             f"{summary['counts']['jobs']:,} jobs)", f"{args.workers} worker processes",
             f"{args.duration} s per case", "load tool on the same machine",
             f"WRITE_RATE_LIMIT/AUTH_RATE_LIMIT={UNLIMITED}", "DELIVERY_SWEEP_SECONDS=1",
             f"database vacuumed and checkpointed before the run (autovacuum {autovacuum})"]
    if busy:
        notes.append(f"machine busy at start (load {load[0]:.1f})")
    if args.note:
        notes.append(args.note)
    command = "python -m bench" + (" --quick" if args.quick else "") + (
        f" --scale {args.scale:g}" if args.scale != (0.1 if args.quick else 1.0) else "") + (
        f" --only {args.only}" if args.only else "") + (
        f" --streams {args.streams}" if args.streams != LIVE_STREAMS else "") + (
        f" --live-seconds {args.live_seconds}" if args.live_seconds != (10 if args.quick else 25)
        else "") + (f" --live-writers {args.live_writers}"
                    if args.live_writers != LIVE_WRITERS else "")
    return {"started": stamp, "machine": f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} "
                                         f"{platform.release()}",
            "load_average": load, "command": command, "notes": "; ".join(notes),
            "scale": args.scale, "workers": args.workers, "duration": args.duration}


def run_wrk(wrk: str, name: str, group: str, connections: int, duration: int, url: str,
            script: Path, *script_args: object) -> CaseResult:
    command = [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s",
               "-s", str(script), url]
    if script_args:
        command += ["--", *map(str, script_args)]
    print(f"{name} ({group}, {connections} connections, {duration} s)", flush=True)
    result = subprocess.run(command, capture_output=True,  # noqa: S603
                            text=True, check=False,
                            timeout=duration + 60)
    if result.returncode != 0:
        raise SystemExit(f"wrk failed for {name}: {result.stderr}")
    return parse_wrk(name, group, connections, result.stdout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our http URL)
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server did not answer {url}")


@dataclass(frozen=True)
class Server:
    port: int
    pid: int  # the started process (run.py serve: the supervisor of the workers)
    log: Path  # its output


@contextmanager
def started(command: list[str], env: dict[str, str], probe: str, port: int) -> Iterator[Server]:
    log = Path(tempfile.mkstemp(prefix="hireme-bench-", suffix=".log")[1])
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env,  # noqa: S603
                                   cwd=ROOT, stdout=output,
                                   stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}{probe}", process, log)
        yield Server(port, process.pid, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def baselines(workers: int, database_url: str, redis_url: str) -> Iterator[int]:
    port = free_port()
    command = [sys.executable, "-m", "bench.baselines", "--port", str(port), "--workers",
               str(workers), "--database-url", database_url, "--redis-url", redis_url]
    with started(command, dict(os.environ), "/hello", port) as bound:
        yield bound.port


def service_env(base: dict[str, str], database_url: str, redis_url: str, workers: int,
                smtp_port: int, stamp: str) -> dict[str, str]:
    return {**base, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "REDIS_PREFIX": f"hireme-bench:{stamp}:", "WEB_CONCURRENCY": str(workers),
            "BIND": "127.0.0.1", "PORT": str(free_port()),
            "WRITE_RATE_LIMIT": UNLIMITED, "AUTH_RATE_LIMIT": UNLIMITED,
            "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "DELIVERY_SWEEP_SECONDS": "1"}


@contextmanager
def service(env: dict[str, str]) -> Iterator[Server]:
    port = int(env["PORT"])
    with started([sys.executable, str(ROOT / "run.py"), "serve"], env, "/health", port) as bound:
        yield bound
