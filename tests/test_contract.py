"""Schemathesis over the served OpenAPI document, against a real ``run.py serve``.

Every operation gets a bounded number of generated requests, as a registered employer: no
answer may be a 5xx, and every answer must match the document (status, content type, body
schema). Logout is left out: it would revoke the token the rest of the run uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.helpers import new_vapid_key
from tests.processes import start_server, stop_server, wait_until_healthy

EXAMPLES_PER_OPERATION = "10"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")


def register(port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/auth/register", method="POST",
        headers={"Content-Type": "application/json"},
        data=json.dumps({"email": "contract@example.com", "password": "correct horse",
                         "first_name": "Con", "last_name": "Tract",
                         "role": "employer"}).encode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        token: str = json.load(answer)["token"]
    return token


async def test_every_operation_keeps_to_the_document(
        tmp_path: Path, clean_database: str, redis_url: str, redis_prefix: str) -> None:
    server = start_server(tmp_path, "serve", DATABASE_URL=clean_database, REDIS_URL=redis_url,
                          REDIS_PREFIX=redis_prefix, WEB_CONCURRENCY="1",
                          SMTP_URL="smtp://127.0.0.1:9", VAPID_PRIVATE_KEY=new_vapid_key(),
                          AUTH_RATE_LIMIT="100000/60", WRITE_RATE_LIMIT="100000/60")
    try:
        await wait_until_healthy(server, workers=1)
        token = register(server.port)
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run",
             f"http://127.0.0.1:{server.port}/api/v1/openapi.json",
             "--header", f"Authorization: Bearer {token}",
             "--max-examples", EXAMPLES_PER_OPERATION, "--seed", "1", "--no-shrink",
             "--checks", CHECKS, "--exclude-operation-id", "logout",
             # An open stream never ends; tests/test_live.py drives it.
             "--exclude-operation-id", "stream_events",
             "--warnings", "off"],
            capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    finally:
        await stop_server(server)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Traceback" not in server.log_text()
