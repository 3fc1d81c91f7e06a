"""``run.py serve`` as real processes for tests: start one, wait for it, kill it, stop it.

Every wait here is an ``asyncio.sleep`` poll, so servers the test runs on its own event loop
(the SMTP sink, the push service) keep answering meanwhile. The supervisor starts in a
session of its own, but each worker moves into a process group of its own (run.py does this
so a terminal's Ctrl-C reaches only the supervisor): killing a whole server therefore means
the supervisor's group and then every worker's group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from service.config import VARIABLES
from tests.servers import free_port

RUN_PY = Path(__file__).resolve().parents[1] / "run.py"
SECRET_KEY = "k" * 40
POLL_SECONDS = 0.05


@dataclass
class Server:
    """One ``run.py serve``: the supervisor process, its port, and the log of both."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    # Every worker pid seen, so the workers can still be found once the supervisor is gone.
    seen_workers: set[int] = field(default_factory=set)

    def workers(self) -> set[int]:
        """The supervisor's live workers (also remembered in ``seen_workers``)."""
        found = children(self.process.pid) if self.process.poll() is None else set()
        self.seen_workers |= found
        return found

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def environment(**variables: str) -> dict[str, str]:
    """This process's environment without any hireme variable, plus ``variables``."""
    names = {var.name for var in VARIABLES}
    env = {key: value for key, value in os.environ.items() if key not in names}
    return env | variables


def children(pid: int) -> set[int]:
    """The direct child processes of ``pid`` (none once it has exited)."""
    found: set[int] = set()
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                found.update(int(child) for child in (task / "children").read_text().split())
    return found


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def start_server(directory: Path, name: str, **variables: str) -> Server:
    """Start ``run.py serve`` on a free port with ``variables`` as its whole configuration."""
    port = free_port()
    log = directory / f"{name}.log"
    env = environment(BIND="127.0.0.1", PORT=str(port), SECRET_KEY=SECRET_KEY, **variables)
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, str(RUN_PY), "serve"], cwd=directory,
                                   env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return Server(process, port, log)


async def wait_until_healthy(server: Server, workers: int, timeout: float = 30) -> None:
    """Until ``workers`` workers run and ``GET /health`` answers 200; fails with the log."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async with asyncio.timeout(timeout):
            while True:
                assert server.process.poll() is None, server.log_text()
                if len(server.workers()) == workers and await _is_healthy(session, server):
                    return
                await asyncio.sleep(POLL_SECONDS * 2)


async def _is_healthy(session: aiohttp.ClientSession, server: Server) -> bool:
    try:
        async with session.get(f"http://127.0.0.1:{server.port}/health") as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def kill_server(server: Server) -> None:
    """SIGKILL the supervisor (first, so it restarts no one) and every worker; wait for it."""
    workers = server.workers() | server.seen_workers
    _signal_group(server.process.pid, signal.SIGKILL)
    for pid in workers:
        _signal_group(pid, signal.SIGKILL)
    async with asyncio.timeout(10):
        while server.process.poll() is None or any(is_running(pid) for pid in workers):
            await asyncio.sleep(POLL_SECONDS)


async def stop_server(server: Server, timeout: float = 20) -> int | None:
    """SIGTERM the supervisor (its workers drain); past ``timeout``, kill it all.

    Returns the supervisor's exit code, or None when it had to be killed.
    """
    workers = server.workers() | server.seen_workers
    if server.process.poll() is None:
        _signal_group(server.process.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while server.process.poll() is None or any(is_running(pid) for pid in workers):
                await asyncio.sleep(POLL_SECONDS)
            return server.process.returncode
    await kill_server(server)
    return None


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
