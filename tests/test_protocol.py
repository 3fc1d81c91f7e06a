"""What a real ``run.py serve`` answers and logs for requests its HTTP parser balks at.

Run as a real process because the log lines in question come from aiohttp's protocol layer,
which the in-process test client does not go through the same way (it cancels handlers on
disconnect).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from tests.processes import start_server, stop_server, wait_until_healthy

TOKEN_TEXT = "s3cretT0ken"


async def _send_raw(port: int, request: bytes, *, read: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 5) if read else b""
    writer.close()
    await writer.wait_closed()
    return answer


async def test_oversized_headers_and_cut_bodies_log_one_quiet_line(
        tmp_path: Path, clean_database: str, redis_url: str, redis_prefix: str) -> None:
    server = start_server(tmp_path, "serve", DATABASE_URL=clean_database, REDIS_URL=redis_url,
                          REDIS_PREFIX=redis_prefix, WEB_CONCURRENCY="1",
                          SMTP_URL="smtp://127.0.0.1:9")
    try:
        await wait_until_healthy(server, workers=1)
        url = f"http://127.0.0.1:{server.port}/api/v1/me"
        async with aiohttp.ClientSession() as session:
            for size in (9_000, 40_000):  # past the app's limit; past the parser's too
                token = "Bearer " + TOKEN_TEXT * (size // len(TOKEN_TEXT))
                async with session.get(url, headers={"Authorization": token}) as answer:
                    assert answer.status == 400
                    if size < 20_000:
                        body = await answer.json()
                        assert body["error"]["code"] == "bad_request"
                        assert TOKEN_TEXT not in json.dumps(body)
        # A client that promises a body and leaves halfway through it.
        await _send_raw(server.port, b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                        b'{"email": "a@example.com", "pass', read=False)
        await asyncio.sleep(0.5)
    finally:
        assert await stop_server(server) == 0
    log = server.log_text()
    assert TOKEN_TEXT not in log
    assert "Traceback" not in log and " ERROR " not in log, log
    assert "refused a request the HTTP parser could not read: LineTooLong" in log
    assert "client disconnected during POST /api/v1/auth/login" in log
