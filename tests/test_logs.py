"""LOG_FORMAT=json: a real ``run.py serve`` writes one JSON object per line, with the access
line's fields, and never a token, a password or a credential header's value."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp

from service.logformat import JsonFormatter
from tests.processes import start_server, stop_server, wait_until_healthy

API = "/api/v1"
PASSWORD = "plum-Pudding-Sesame-42"
FORGED_TOKEN = "77.forgedBearerSecretValue"
EVERY_LINE = {"time", "level", "logger", "process", "request_id", "message"}
ACCESS = {"method", "route", "path", "status", "duration_ms", "user_id"}


async def _cut_body(port: int) -> None:
    """A client that promises a body and leaves halfway through it."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                 b"\r\nContent-Length: 1000\r\n\r\n{\"email\": \"a@example.com\", \"pass")
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def _drive(port: int) -> tuple[int, str]:
    """Register, log in with the password, read /me, send a forged token; the user's id and
    login token."""
    base = f"http://127.0.0.1:{port}{API}"
    account = {"email": "ada-logs@example.com", "password": PASSWORD, "first_name": "Ada",
               "last_name": "Lovelace", "role": "job_seeker"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/auth/register", json=account) as answer:
            assert answer.status == 201
            user_id = (await answer.json())["user"]["id"]
        login = {"email": account["email"], "password": PASSWORD}
        async with session.post(f"{base}/auth/login", json=login) as answer:
            assert answer.status == 200
            token = (await answer.json())["token"]
        bearer = {"Authorization": f"Bearer {token}", "Cookie": f"session={token}"}
        async with session.get(f"{base}/me?access_token={token}", headers=bearer) as answer:
            assert answer.status == 200
        forged = {"Authorization": f"Bearer {FORGED_TOKEN}"}
        async with session.get(f"{base}/me", headers=forged) as answer:
            assert answer.status == 401
        # A path that itself carries a credential: the formatter's safety net masks it.
        async with session.get(f"{base}/nothing/Bearer {FORGED_TOKEN}") as answer:
            assert answer.status == 404
    return user_id, token


async def test_json_log_lines_carry_fields_and_no_secret(
        tmp_path: Path, clean_database: str, redis_url: str, redis_prefix: str) -> None:
    server = start_server(tmp_path, "serve", DATABASE_URL=clean_database, REDIS_URL=redis_url,
                          REDIS_PREFIX=redis_prefix, WEB_CONCURRENCY="1", LOG_FORMAT="json",
                          SMTP_URL="smtp://127.0.0.1:9")
    try:
        await wait_until_healthy(server, workers=1)
        user_id, token = await _drive(server.port)
        await _cut_body(server.port)
        await asyncio.sleep(0.3)  # the worker notices the cut body
    finally:
        assert await stop_server(server) == 0
    text = server.log_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line parses

    assert all(line.keys() >= EVERY_LINE for line in lines), text
    assert all(line["time"].endswith("Z") for line in lines)
    access = [line for line in lines if line["logger"] == "hireme.access"]
    assert all(line.keys() >= ACCESS - {"user_id"} for line in access)
    me = [line for line in access if line["route"] == "get_me" and line["status"] == 200]
    assert len(me) == 1 and me[0]["user_id"] == user_id and me[0]["path"] == f"{API}/me"
    assert me[0]["request_id"] != "-" and me[0]["duration_ms"] >= 0
    assert {"login", "register"} <= {line["route"] for line in access}
    for secret in (token, PASSWORD, FORGED_TOKEN, token.partition(".")[2]):
        assert secret not in text
    assert not [line for line in lines if line["level"] == "ERROR" or "exception" in line]
    cut = [line for line in lines if "client disconnected" in line["message"]]
    assert len(cut) == 1 and cut[0]["level"] == "INFO"


def _format(message: str, *args: Any, **extra: Any) -> dict[str, Any]:
    record = logging.LogRecord("hireme.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    parsed: dict[str, Any] = json.loads(JsonFormatter().format(record))
    return parsed


def test_anything_shaped_like_a_credential_is_masked() -> None:
    line = _format("headers %s", {"Authorization": "Bearer abc.DEF-123",
                                  "Cookie": "a=1; sid=zzz999", "password": "hunter 2"})
    assert line["level"] == "WARNING" and line["request_id"] == "-"
    for secret in ("abc.DEF-123", "zzz999", "hunter", " 2"):
        assert secret not in line["message"]
    assert "[redacted]" in _format("x", path="/p/bearer tok.en")["path"]


async def _get(port: int, *paths: str) -> None:
    async with aiohttp.ClientSession() as session:
        for path in paths:
            async with session.get(f"http://127.0.0.1:{port}{path}") as answer:
                await answer.read()


async def _served_log(tmp_path: Path, database: str, redis_url: str, prefix: str,
                      *paths: str, **variables: str) -> str:
    """The log of a one-worker ``run.py serve`` that answered GETs of ``paths``."""
    server = start_server(tmp_path, "serve", DATABASE_URL=database, REDIS_URL=redis_url,
                          REDIS_PREFIX=prefix, WEB_CONCURRENCY="1",
                          SMTP_URL="smtp://127.0.0.1:9", **variables)
    try:
        await wait_until_healthy(server, workers=1)
        await _get(server.port, *paths)
    finally:
        assert await stop_server(server) == 0
    return server.log_text()


async def test_text_access_lines_cannot_be_forged_by_a_path(
        tmp_path: Path, clean_database: str, redis_url: str, redis_prefix: str) -> None:
    """A %0A in a path is decoded to a newline: written as is, it would start a line of the
    client's choosing."""
    forged = "2026-01-01 00:00:00,000 1 ERROR hireme.run [-] forged"
    text = await _served_log(tmp_path, clean_database, redis_url, redis_prefix,
                             f"{API}/jobs/%0A{forged.replace(' ', '%20')}", "/health")
    access = [line for line in text.splitlines() if " INFO hireme.access [" in line]
    assert not [line for line in text.splitlines() if line.startswith(forged)], text
    assert [line for line in access if "jobs/\\n2026-01-01 " in line], text
    health = [line for line in access if " GET /health 200 " in line]
    assert health and health[0].endswith("ms") and health[0][:4].isdigit()


async def test_log_level_warning_writes_no_access_line(
        tmp_path: Path, clean_database: str, redis_url: str, redis_prefix: str) -> None:
    text = await _served_log(tmp_path, clean_database, redis_url, redis_prefix, "/health",
                             f"{API}/nothing", LOG_LEVEL="WARNING", LOG_FORMAT="json")
    assert "hireme.access" not in text
