"""run.py as a real command line, each case in its own subprocess; nothing is mocked."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import run
from service.config import Settings
from tasks import base64url
from tests.processes import RUN_PY, SECRET_KEY, environment
from tests.servers import create_database, drop_database, free_port


def run_cli(*args: str, cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUN_PY), *args], cwd=cwd,
                          env=environment(**variables), capture_output=True, text=True,
                          timeout=60, check=False)


def decode_base64url(text: str) -> bytes:
    assert "=" not in text
    return base64url.decode(text)


def test_what_a_worker_set_up_is_left_out_of_its_later_collections() -> None:
    """A whole-heap collection walks only what came after the app's set-up: under load it
    ran every few seconds and stalled every request for as long as it walked the app."""
    set_up = [[index] for index in range(100)]
    try:
        run.settle_garbage_collector()
        made_later = [len(set_up)]
        walked = {id(obj) for obj in gc.get_objects()}
        assert not any(id(obj) in walked for obj in set_up)
        assert id(made_later) in walked
    finally:
        gc.unfreeze()


def test_vapid_prints_a_matching_p256_key_pair(tmp_path: Path) -> None:
    result = run_cli("vapid", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert set(lines) == {"VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY"}
    private = decode_base64url(lines["VAPID_PRIVATE_KEY"])
    public = decode_base64url(lines["VAPID_PUBLIC_KEY"])
    assert len(private) == 32
    assert len(public) == 65
    assert public[0] == 4  # uncompressed point
    key = ec.derive_private_key(int.from_bytes(private, "big"), ec.SECP256R1())
    derived = key.public_key().public_bytes(serialization.Encoding.X962,
                                            serialization.PublicFormat.UncompressedPoint)
    assert derived == public


@pytest.mark.parametrize(("name", "value"), [
    ("PORT", "abc"),
    ("DATABASE_URL", "mysql://x"),
])
def test_a_bad_value_exits_2_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    result = run_cli("serve", cwd=tmp_path, SECRET_KEY=SECRET_KEY, **{name: value})

    assert result.returncode == 2
    assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_database_url_without_secret_key_exits_naming_it(tmp_path: Path) -> None:
    result = run_cli("serve", cwd=tmp_path, DATABASE_URL="postgresql://u@127.0.0.1:1/db")

    assert result.returncode == 2
    assert "SECRET_KEY" in result.stderr


# ---- serve: the supervisor and its workers ---------------------------------------------------


def test_an_unreachable_database_is_said_plainly(tmp_path: Path) -> None:
    result = run_cli("migrate", cwd=tmp_path, DATABASE_URL="postgresql://postgres@127.0.0.1:1/x",
                     SECRET_KEY="s" * 40)
    assert result.returncode == 1
    assert "database unavailable" in result.stderr
    assert "Traceback" not in result.stderr

def children(pid: int) -> set[int]:
    """The direct child processes of ``pid``."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def health_is_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False


@pytest.fixture
def fresh_database_url(postgres_admin_url: str) -> Iterator[str]:
    """An empty database, for `serve` to migrate itself."""
    name = f"hireme_run_{uuid.uuid4().hex[:12]}"
    yield create_database(postgres_admin_url, name)
    drop_database(postgres_admin_url, name)


@pytest.fixture
def supervisor(tmp_path: Path, fresh_database_url: str, redis_url: str,
               redis_prefix: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``run.py serve`` with two workers on a free port; killed if a test leaves it running."""
    port = free_port()
    env = environment(DATABASE_URL=fresh_database_url, REDIS_URL=redis_url,
                      REDIS_PREFIX=redis_prefix, SECRET_KEY=SECRET_KEY, BIND="127.0.0.1",
                      PORT=str(port), WEB_CONCURRENCY="2")
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, str(RUN_PY), "serve"], cwd=tmp_path,
                                   env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: process.poll() is not None or health_is_ok(port), "GET /health", 60)
        assert process.poll() is None, log.read_text()
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_serve_keeps_its_workers_and_stops_on_sigterm(
        supervisor: tuple[subprocess.Popen[bytes], int]) -> None:
    process, port = supervisor
    wait_for(lambda: len(children(process.pid)) == 2, "two workers")
    first, second = sorted(children(process.pid))

    os.kill(first, signal.SIGKILL)
    wait_for(lambda: len(children(process.pid) - {second}) == 1
             and first not in children(process.pid), "a replacement worker")
    assert second in children(process.pid)
    wait_for(lambda: health_is_ok(port), "GET /health after the restart")
    workers = children(process.pid)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_a_connection_accepted_as_its_worker_stops_still_gets_its_answer(
        supervisor: tuple[subprocess.Popen[bytes], int]) -> None:
    """A proxy sends its request right after connecting, and never retries a new connection.
    A worker told to stop just after accepting one must still answer what arrives on it."""
    process, port = supervisor
    wait_for(lambda: len(children(process.pid)) == 2, "two workers")
    request = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with contextlib.ExitStack() as stack:
        connections = [stack.enter_context(socket.create_connection(("127.0.0.1", port), 10))
                       for _ in range(6)]
        time.sleep(0.3)  # both workers accept what is queued
        for pid in children(process.pid):
            os.kill(pid, signal.SIGTERM)
        time.sleep(0.1)
        for connection in connections:
            connection.sendall(request)
        assert [connection.recv(12) for connection in connections] == [b"HTTP/1.1 200"] * 6


def test_workers_do_not_outlive_a_killed_supervisor(
        supervisor: tuple[subprocess.Popen[bytes], int]) -> None:
    process, port = supervisor
    wait_for(lambda: len(children(process.pid)) == 2, "two workers")
    workers = children(process.pid)
    process.kill()  # SIGKILL: the supervisor cannot forward anything
    process.wait()
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
             "the orphaned workers to exit")
    assert not health_is_ok(port)


# ---- clean-local: undoing a trial run ---------------------------------------------------------


def test_clean_local_refuses_a_configured_database(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    result = run_cli("clean-local", cwd=tmp_path, DATABASE_URL="postgresql://u@127.0.0.1:1/db")
    assert result.returncode == 2
    assert "refusing" in result.stderr
    assert (tmp_path / "var").exists()


@pytest.fixture
def var_dir() -> Iterator[Path]:
    """A trial run's ./var in a directory that PostgreSQL's own user can reach when the
    tests run as root (pytest's tmp_path is private to us)."""
    with tempfile.TemporaryDirectory(prefix="hireme-trial-") as base:
        os.chmod(base, 0o755)
        yield Path(base) / "var"


def test_a_trial_run_without_servers_starts_private_ones_and_keeps_their_data(
        var_dir: Path) -> None:
    import psycopg2
    import redis

    from devservers import localrun

    nothing_there = Settings(local_run=True, secret_key=SECRET_KEY,
                             database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/trial",
                             redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with localrun.local_servers(nothing_there, var_dir=var_dir) as first:
        with psycopg2.connect(first.database_url) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE kept AS SELECT current_database() AS name")
        conn.close()
        assert redis.Redis.from_url(first.redis_url).ping()
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(first.database_url, connect_timeout=2)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(first.redis_url).ping()

    with localrun.local_servers(nothing_there, var_dir=var_dir) as second:
        with psycopg2.connect(second.database_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT name FROM kept")
            assert cur.fetchone() == ("trial",)
        conn.close()
    assert (var_dir / "postgres").is_dir() and (var_dir / "redis.log").is_file()


def test_removing_a_trial_run_takes_its_database_keys_and_var_dir(
        tmp_path: Path, postgres_admin_url: str, redis_url: str) -> None:
    import psycopg2
    import redis

    from devservers import localrun

    name = f"hireme_trial_{uuid.uuid4().hex[:8]}"
    database_url = create_database(postgres_admin_url, name)
    prefix, other = f"trial-{uuid.uuid4().hex[:8]}:", f"other-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(redis_url)
    client.mset({f"{prefix}a": 1, f"{prefix}b": 2, f"{other}keep": 3})
    var_dir = tmp_path / "var"
    (var_dir / "postgres").mkdir(parents=True)
    (var_dir / "secret_key").write_text("x")
    try:
        localrun.remove_trial_run(database_url, redis_url, prefix, var_dir=var_dir)

        assert not var_dir.exists()
        assert client.keys(f"{prefix}*") == [] and client.get(f"{other}keep") == b"3"
        with psycopg2.connect(postgres_admin_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
            assert cur.fetchone()[0] == 0
        conn.close()
    finally:
        client.delete(f"{other}keep")
        client.close()
        drop_database(postgres_admin_url, name)
