"""deploy/nginx.conf served by a real nginx in front of ``run.py serve`` on a unix socket.

The site file is the deployed one, rendered with the few changes a test needs (the upstream
socket, a loopback port instead of TLS, paths under the test's directory); every location
block, limit and header is the file's own. Clients connect from 127.0.0.1 and 127.0.0.2 (both
loopback) to be two different remote addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.processes import (
    RUN_PY,
    SECRET_KEY,
    Server,
    environment,
    is_running,
    stop_server,
)
from tests.servers import free_port

NGINX_CONF = Path(__file__).resolve().parents[1] / "deploy" / "nginx.conf"
NGINX_BODY_LIMIT = 64 * 1024
APP_BODY_LIMIT = 16 * 1024
WORKERS = 2
PROBE = "/api/v1/openapi.json"  # public and database-free: a cheap request to loop on
MAIN_CONTEXT = """
user root;  # the test runs as root; nginx's workers would otherwise switch to nobody
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{site}
}}
"""


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"deploy/nginx.conf no longer has {old!r}"
    return text.replace(old, new)


def render_site(text: str, *, upstream: Path, port: int) -> str:
    """The deployed site on plain HTTP at 127.0.0.1:``port``, proxying to ``upstream``."""
    text = _replace_once(text, "server 127.0.0.1:8000;", f"server unix:{upstream};")
    text, redirects = re.subn(r"server \{\s*listen 80;.*?\n\}\n", "", text, flags=re.S)
    assert redirects == 1
    text = _replace_once(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{port};")
    text, dropped = re.subn(r"^\s*(listen \[::\]:443|ssl_certificate).*\n", "", text, flags=re.M)
    assert dropped == 3
    return text


@dataclass
class Stack:
    app: Server
    socket: Path
    nginx: subprocess.Popen[bytes]
    port: int
    prefix: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def session_from(address: str) -> aiohttp.ClientSession:
    """A client whose connections come from ``address``."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10))


async def _until_served(stack: Stack) -> None:
    async with session_from("127.0.0.1") as session, asyncio.timeout(60):
        while True:
            assert stack.app.process.poll() is None, stack.app.log_text()
            assert stack.nginx.poll() is None, (stack.prefix / "error.log").read_text()
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(stack.url(PROBE)) as answer:
                    if answer.status == 200 and len(stack.app.workers()) == WORKERS:
                        return
            await asyncio.sleep(0.1)


@pytest.fixture
async def stack(tmp_path: Path, clean_database: str, redis_url: str,
                redis_prefix: str) -> AsyncIterator[Stack]:
    sock = tmp_path / "app.sock"
    # Over a unix socket the peer is nginx itself; no client address may be a trusted proxy.
    env = environment(BIND=f"unix:{sock}", SECRET_KEY=SECRET_KEY, DATABASE_URL=clean_database,
                      REDIS_URL=redis_url, REDIS_PREFIX=redis_prefix,
                      WEB_CONCURRENCY=str(WORKERS), AUTH_RATE_LIMIT="3/60",
                      MAX_BODY_SIZE=str(APP_BODY_LIMIT), TRUSTED_PROXIES="192.0.2.1",
                      SMTP_URL="smtp://127.0.0.1:9", LOG_LEVEL="WARNING")
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, str(RUN_PY), "serve"], cwd=tmp_path,
                                   env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    app = Server(process, 0, log)
    port = free_port()
    site = render_site(NGINX_CONF.read_text(), upstream=sock, port=port)
    conf = tmp_path / "nginx.conf"
    conf.write_text(MAIN_CONTEXT.format(prefix=tmp_path, site=site))
    nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                              "-c", str(conf), "-g", "daemon off;"])
    stack = Stack(app, sock, nginx, port, tmp_path)
    try:
        await _until_served(stack)
        yield stack
    finally:
        nginx.terminate()
        nginx.wait(10)
        assert await stop_server(app) == 0


async def _login(session: aiohttp.ClientSession, stack: Stack, attempt: int,
                 headers: dict[str, str] | None = None) -> int:
    body = {"email": f"nobody{attempt}@example.com", "password": "wrong password"}
    async with session.post(stack.url("/api/v1/auth/login"), json=body,
                            headers=headers) as answer:
        return answer.status


async def test_rate_limits_see_the_client_nginx_saw_not_its_forwarded_for(
        stack: Stack) -> None:
    async with session_from("127.0.0.2") as outside, session_from("127.0.0.1") as other:
        # Each attempt claims another address; nginx appends the real one, which counts.
        spoofed = [await _login(outside, stack, n, {"X-Forwarded-For": f"198.51.100.{n}"})
                   for n in range(4)]
        assert spoofed == [401, 401, 401, 429]
        assert await _login(other, stack, 10) == 401  # another address, its own limit


async def test_bodies_are_limited_by_nginx_and_by_the_app(stack: Stack) -> None:
    async with session_from("127.0.0.1") as session:
        for size, where in ((NGINX_BODY_LIMIT + 1024, "64 KiB"),
                            (APP_BODY_LIMIT * 2, "too large")):
            body = b'{"email": "' + b"a" * size + b'"}'
            async with session.post(stack.url("/api/v1/auth/login"), data=body,
                                    headers={"Content-Type": "application/json"}) as answer:
                assert answer.status == 413
                error = (await answer.json())["error"]
                assert error["code"] == "payload_too_large" and where in error["message"]


async def test_metrics_answer_loopback_only(stack: Stack) -> None:
    async with session_from("127.0.0.2") as outside, session_from("127.0.0.1") as local:
        async with outside.get(stack.url("/metrics")) as answer:
            assert answer.status == 403
        async with local.get(stack.url("/metrics")) as answer:
            assert answer.status == 200
            assert "hireme_http_requests_total" in await answer.text()


def upstream_connections(sock: Path) -> set[str]:
    """Inodes of the app's accepted, connected sockets (state 03) on ``sock``."""
    found = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) == 8 and fields[7] == str(sock) and fields[5] == "03":
            found.add(fields[6])
    return found


async def test_nginx_keeps_upstream_connections_alive(stack: Stack) -> None:
    conf = NGINX_CONF.read_text()
    assert re.search(r"upstream hireme \{[^}]*\n\s*keepalive \d+;", conf)
    assert 'proxy_set_header Connection        "";' in conf
    seen: set[str] = set()
    for _ in range(40):  # a new client connection each time; nginx reuses its upstream one
        async with session_from("127.0.0.1") as session, session.get(stack.url(PROBE)) as answer:
            assert answer.status == 200
        seen |= upstream_connections(stack.socket)
    assert 1 <= len(seen) <= 2, seen


async def _request_loop(stack: Stack, statuses: list[Any], stop: asyncio.Event) -> None:
    async with session_from("127.0.0.1") as session:
        while not stop.is_set():
            try:
                async with session.get(stack.url(PROBE)) as answer:
                    statuses.append(answer.status)
            except aiohttp.ClientError as error:
                statuses.append(repr(error))


async def test_sighup_replaces_every_worker_without_a_failed_request(stack: Stack) -> None:
    old = stack.app.workers()
    statuses: list[Any] = []
    stop = asyncio.Event()
    loops = [asyncio.create_task(_request_loop(stack, statuses, stop)) for _ in range(4)]
    try:
        await asyncio.sleep(0.5)
        os.kill(stack.app.process.pid, signal.SIGHUP)
        async with asyncio.timeout(60):
            while (stack.app.workers() & old or len(stack.app.workers()) != WORKERS
                   or any(is_running(pid) for pid in old)):
                await asyncio.sleep(0.1)
        served_before = len(statuses)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*loops)
    assert len(statuses) > served_before > 20
    assert set(statuses) == {200}, [status for status in statuses if status != 200][:5]
    assert not stack.app.workers() & old
