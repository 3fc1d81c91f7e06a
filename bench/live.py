"""The live case: thousands of open Server-Sent Events streams on ``run.py serve``.

One asyncio client (aiohttp on uvloop, in this process) opens ``streams`` streams of
``GET /api/v1/events``, at most 5 per pooled user (the service's limit), and measures:

- memory per idle stream: the worker processes' summed VmRSS (/proc/PID/status) before the
  streams open and once they are all open and idle, over the stream count;
- fan-out latency: once a second, ``writers`` pooled users each make one real write,
  ``POST /notifications/read_all``, whose commit stores one ``unread`` event for that user
  and publishes it; every open stream of the user (on either worker) must get it. Each
  arrival is timed from the write's answer (publish happens before the answer, so an event
  may arrive first: a negative figure) and from the moment the write was sent.

A user's writes are seconds apart, so the n-th ``unread`` event on a stream (after its first,
which every new stream gets) belongs to the n-th write of its user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

STREAMS_PER_USER = 5  # the service's MAX_STREAMS_PER_USER
OPENING_AT_ONCE = 100  # streams being opened concurrently (each waits for its first event)
WARM_UP_STREAMS = 20
SETTLE_SECONDS = 5.0  # idle time before the "after" memory reading
DRAIN_SECONDS = 5.0  # after the last write, for late events
WRITE_CONNECTIONS = 64
EVENTS = "/api/v1/events"
WRITE = "/api/v1/notifications/read_all"
# What the service logs when a Redis command fails and its breaker opens (cache/client.py).
REDIS_UNAVAILABLE = b"redis unavailable"
# After the clients have gone: how long to wait for the service to end its side of the
# streams (it notices a gone client when a write fails: the keep-alive, every 20 s).
SERVER_END_SECONDS = 30.0


@dataclass(eq=False)
class OpenStream:
    user: int  # index into the pool
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    arrivals: list[float] = field(default_factory=list)  # each later ``unread`` event
    failed: str = ""
    ended: bool = False


@dataclass
class Write:
    user: int
    sent: float
    answered: float = 0.0
    status: int = 0


def raise_open_files_limit() -> int:
    """Every stream is a socket on each side: the soft limit goes up to the hard one (the
    service started from this process inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1_048_576 if hard == resource.RLIM_INFINITY else hard  # the kernel's usual cap
    if soft != resource.RLIM_INFINITY and soft < wanted:
        # Else kept as it is: the case reports the limit, and any streams that failed.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def worker_pids(supervisor_pid: int) -> list[int]:
    """The supervisor's children: ``run.py serve``'s worker processes."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        if _status_field(status, "PPid") == supervisor_pid:
            children.append(int(entry.name))
    return sorted(children)


def rss_kib(pid: int) -> int:
    return _status_field(Path(f"/proc/{pid}/status").read_text(), "VmRSS")


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def redis_warnings(log: Path) -> int:
    """How many times the service has logged a failed Redis command so far."""
    try:
        return log.read_bytes().count(REDIS_UNAVAILABLE)
    except OSError:
        return 0


def _status_field(status: str, name: str) -> int:
    for line in status.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return -1


def run_live(url: str, tokens: list[str], supervisor_pid: int, log: Path, streams: int,
             seconds: int, writers: int, wait_for_end: bool = True) -> dict[str, Any]:
    return uvloop.run(_run_live(url, tokens, supervisor_pid, log, streams, seconds, writers,
                                wait_for_end))


async def _run_live(url: str, tokens: list[str], supervisor_pid: int, log: Path,
                    streams: int, seconds: int, writers: int,
                    wait_for_end: bool) -> dict[str, Any]:
    limit = raise_open_files_limit()
    users = min(len(tokens), -(-streams // STREAMS_PER_USER))
    streams = min(streams, users * STREAMS_PER_USER)
    writers = min(writers, users)
    pids = worker_pids(supervisor_pid)
    unlimited = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
    async with aiohttp.ClientSession(connector=unlimited, timeout=timeout) as session, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=WRITE_CONNECTIONS),
                                  timeout=aiohttp.ClientTimeout(total=30)) as writes_session:
        # Warm-up: the code paths and pools a first stream brings in are not per stream.
        warm = [OpenStream(user) for user in range(min(WARM_UP_STREAMS, users))]
        warm_tasks = await _open_all(session, url, tokens, warm)
        await _close(warm_tasks)
        await asyncio.sleep(2)
        before = {pid: rss_kib(pid) for pid in pids}
        warnings = [redis_warnings(log)]
        files_before = {pid: open_files(pid) for pid in pids}

        print(f"live: opening {streams} streams for {users} users", flush=True)
        opened_at = time.monotonic()
        held = [OpenStream(index % users) for index in range(streams)]
        tasks = await _open_all(session, url, tokens, held)
        open_seconds = time.monotonic() - opened_at
        await asyncio.sleep(SETTLE_SECONDS)
        after = {pid: rss_kib(pid) for pid in pids}
        files_after = {pid: open_files(pid) for pid in pids}
        open_count = sum(1 for stream in held if stream.ready.is_set() and not stream.failed)
        warnings.append(redis_warnings(log))

        print(f"live: {open_count} open; {writers} writes a second for {seconds} s", flush=True)
        writes = await _fan_out(writes_session, url, tokens, users, writers, seconds)
        await asyncio.sleep(DRAIN_SECONDS)
        warnings.append(redis_warnings(log))
        await _close(tasks)
        closed_at = time.monotonic()
        ended = await _until_no_stream_is_open(writes_session, url) if wait_for_end else None
    warnings.append(redis_warnings(log))
    live = summarize(held, writes, before, after, files_before, files_after, open_seconds,
                     limit, writers, seconds, users)
    if wait_for_end:
        live["server_ended_seconds"] = None if ended is None else round(ended - closed_at, 1)
    live["redis_warnings"] = {phase: later - earlier for phase, earlier, later in zip(
        ("opening", "events", "ending"), warnings, warnings[1:], strict=False)}
    return live


async def _open_all(session: aiohttp.ClientSession, url: str, tokens: list[str],
                    streams: list[OpenStream]) -> list[asyncio.Task[None]]:
    """Start every stream, ``OPENING_AT_ONCE`` at a time; return once each has had its first
    event (or failed)."""
    gate = asyncio.Semaphore(OPENING_AT_ONCE)
    tasks = [asyncio.create_task(_hold(session, url, tokens[stream.user], stream, gate))
             for stream in streams]
    await asyncio.gather(*(stream.ready.wait() for stream in streams))
    return tasks


async def _hold(session: aiohttp.ClientSession, url: str, token: str, stream: OpenStream,
                gate: asyncio.Semaphore) -> None:
    """Open one stream (within the gate, until its first event) and note when each later
    ``unread`` event arrives."""
    response: aiohttp.ClientResponse | None = None
    try:
        async with gate:
            response = await session.get(url + EVENTS,
                                         headers={"Authorization": f"Bearer {token}"})
            if response.status != 200:
                stream.failed = f"HTTP {response.status}"
                return
            await _read_events(response, stream)
        await _read_events(response, stream)
    except aiohttp.ClientError as error:
        stream.failed = type(error).__name__
    finally:
        stream.ready.set()  # a failed stream is "done opening" too
        if response is not None:
            response.close()  # the client leaves: its socket closes now (when cancelled too)


async def _read_events(response: aiohttp.ClientResponse, stream: OpenStream) -> None:
    """Until the stream's first event (then return), or after it until the stream ends."""
    kind = b""
    while raw := await response.content.readline():
        line = raw.rstrip(b"\n")
        if line.startswith(b"event:"):
            kind = line[6:].strip()
        elif not line and kind:
            if kind == b"unread":
                if not stream.ready.is_set():
                    stream.ready.set()
                    return
                stream.arrivals.append(time.monotonic())
            kind = b""
    stream.ended = True


async def _close(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _until_no_stream_is_open(session: aiohttp.ClientSession, url: str) -> float | None:
    """When /metrics first counts no open stream (None: not within SERVER_END_SECONDS)."""
    deadline = time.monotonic() + SERVER_END_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(url + "/metrics") as response:
                text = await response.text()
            for line in text.splitlines():
                if line.startswith("hireme_live_streams ") and float(line.split()[1]) == 0:
                    return time.monotonic()
        await asyncio.sleep(0.5)
    return None


async def _fan_out(session: aiohttp.ClientSession, url: str, tokens: list[str], users: int,
                   writers: int, seconds: int) -> list[Write]:
    """Each second, the next ``writers`` users (in turn) mark their notifications read."""
    writes: list[Write] = []
    pending: list[asyncio.Task[None]] = []
    start = time.monotonic()
    for tick in range(seconds):
        await asyncio.sleep(max(0.0, start + tick - time.monotonic()))
        for offset in range(writers):
            write = Write(user=(tick * writers + offset) % users, sent=time.monotonic())
            writes.append(write)
            pending.append(asyncio.create_task(_write(session, url, tokens[write.user], write)))
    await asyncio.gather(*pending)
    return writes


async def _write(session: aiohttp.ClientSession, url: str, token: str, write: Write) -> None:
    try:
        async with session.post(url + WRITE,
                                headers={"Authorization": f"Bearer {token}"}) as response:
            await response.read()
            write.status = response.status
    except (aiohttp.ClientError, TimeoutError):
        write.status = -1
    write.answered = time.monotonic()


def summarize(held: list[OpenStream], writes: list[Write], before: dict[int, int],
             after: dict[int, int], files_before: dict[int, int], files_after: dict[int, int],
             open_seconds: float, limit: int, writers: int, seconds: int,
             users: int) -> dict[str, Any]:
    open_streams = [stream for stream in held if not stream.failed]
    by_user: dict[int, list[Write]] = defaultdict(list)
    for write in writes:
        if write.status == 204:
            by_user[write.user].append(write)
    from_answer: list[float] = []
    from_sent: list[float] = []
    expected = unexpected = 0
    for stream in open_streams:
        own = by_user.get(stream.user, [])
        expected += len(own)
        unexpected += max(0, len(stream.arrivals) - len(own))
        for write, arrived in zip(own, stream.arrivals, strict=False):
            from_answer.append(arrived - write.answered)
            from_sent.append(arrived - write.sent)
    from_answer.sort()
    from_sent.sort()
    rss_growth = sum(after.values()) - sum(before.values())
    count = len(open_streams)
    failures: dict[str, int] = defaultdict(int)
    for stream in held:
        if stream.failed:
            failures[stream.failed] += 1
    return {
        "streams": len(held), "open": count, "users": users, "failed": dict(failures),
        "ended_early": sum(1 for stream in open_streams if stream.ended),
        "open_seconds": round(open_seconds, 1), "open_files_limit": limit,
        "workers": len(before),
        "rss_before_kib": sum(before.values()), "rss_after_kib": sum(after.values()),
        "rss_by_worker_kib": [[before[pid], after[pid]] for pid in sorted(before)],
        "sockets_by_worker": [files_after[pid] - files_before[pid] for pid in sorted(before)],
        "kib_per_stream": round(rss_growth / count, 1) if count else None,
        "fan_out_seconds": seconds, "writes_per_second": writers,
        "writes": len(writes), "writes_failed": sum(1 for w in writes if w.status != 204),
        "write_p95_ms": _ms(sorted(w.answered - w.sent for w in writes), 95),
        "expected": expected, "received": len(from_answer), "unexpected": unexpected,
        "p50_ms": _ms(from_answer, 50), "p95_ms": _ms(from_answer, 95),
        "p99_ms": _ms(from_answer, 99), "max_ms": _ms(from_answer, 100),
        "sent_p50_ms": _ms(from_sent, 50), "sent_p95_ms": _ms(from_sent, 95),
        "sent_p99_ms": _ms(from_sent, 99),
        "how": f"{writers} users a second each POST {WRITE} (one unread event to each of their "
               f"{STREAMS_PER_USER} streams); latency from the write's answer",
    }


def _ms(values: list[float], percent: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, int(len(values) * percent / 100))
    return round(values[index] * 1000, 1)
