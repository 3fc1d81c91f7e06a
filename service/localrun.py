"""Local trial run: find or start the PostgreSQL and Redis that a newcomer's machine may lack.

Used only without DATABASE_URL (``Settings.local_run``). Loopback servers that answer on the
default URLs are used as they are; otherwise private ones are started under ``./var`` and
stopped when the command exits. With DATABASE_URL set, nothing here starts anything.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from service.config import Settings

PROBE_TIMEOUT_SECONDS = 1.0
START_TIMEOUT_SECONDS = 30.0


class LocalRunError(Exception):
    """A local server could not be found or started; the message says what to do instead."""


@contextmanager
def local_servers(settings: Settings, *, var_dir: Path = Path("var"),
                  redis: bool = True) -> Iterator[Settings]:
    """Settings whose PostgreSQL (and, if ``redis``, Redis) answer, for the ``with`` block."""
    if not settings.local_run:
        yield settings
        return
    _say(f"SECRET_KEY and the VAPID key are kept in {_relative(var_dir.resolve())}/; "
         "`python run.py clean-local` removes everything this trial run made")
    with ExitStack() as stack:
        database_url = stack.enter_context(_postgres(settings.database_url, var_dir))
        redis_url = settings.redis_url
        if redis:
            redis_url = stack.enter_context(_redis(settings.redis_url, var_dir))
        yield dataclasses.replace(settings, database_url=database_url, redis_url=redis_url)


@contextmanager
def _postgres(url: str, var_dir: Path) -> Iterator[str]:
    if answers(url, default_port=5432):
        try:
            create_database(url)
        except Exception as error:  # psycopg2.Error: it answers, but not to us (password, ...)
            _say(f"PostgreSQL at {_where(url)} answers but refused us ({str(error).strip()}); "
                 "starting a private one instead")
        else:
            _say(f"using PostgreSQL at {_where(url)}")
            yield url
            return
    database = urlsplit(url).path.lstrip("/") or "hireme"
    with private_postgres(var_dir / "postgres", database=database) as private_url:
        yield private_url


@contextmanager
def _redis(url: str, var_dir: Path) -> Iterator[str]:
    if answers(url, default_port=6379):
        _say(f"using Redis at {_where(url)}")
        yield url
        return
    with private_redis(var_dir) as private_url:
        yield private_url


@contextmanager
def private_postgres(data_dir: Path, *, database: str = "hireme",
                     port: int | None = None) -> Iterator[str]:
    """Run PostgreSQL from ``data_dir`` (initdb on first use, trust auth, loopback only)."""
    if os.geteuid() == 0:
        raise LocalRunError("PostgreSQL refuses to run as root: run as a normal user, "
                            "or set DATABASE_URL to a database you run yourself")
    bin_dir = _postgres_bin_dir()
    port = port or free_port()
    data_dir = data_dir.absolute()
    if not (data_dir / "PG_VERSION").exists():
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        _run([bin_dir / "initdb", "-D", data_dir, "-U", "postgres", "--auth=trust",
              "--encoding=UTF8", "--no-instructions"])
    # The socket directory sits beside the data, so nothing is needed in /var/run.
    options = (f"-p {port} -c listen_addresses=127.0.0.1 "
               f"-c unix_socket_directories={shlex.quote(str(data_dir.parent))}")
    pg_ctl = bin_dir / "pg_ctl"
    stop: list[str | Path] = [pg_ctl, "-D", data_dir, "-m", "fast", "-w", "stop"]
    _run(stop, check=False)  # a server left behind by a run that was killed
    _run([pg_ctl, "-D", data_dir, "-l", data_dir.parent / "postgres.log", "-w",
          "-t", str(int(START_TIMEOUT_SECONDS)), "-o", options, "start"])
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/{database}"
        create_database(url)
        _say(f"started private PostgreSQL in {_relative(data_dir)} on port {port}")
        yield url
    finally:
        _run(stop, check=False)


@contextmanager
def private_redis(var_dir: Path, *, port: int | None = None) -> Iterator[str]:
    """Run a throwaway, unpersisted redis-server as a child process."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise LocalRunError("redis-server not found: install Redis (e.g. apt-get install "
                            "redis-server) or set REDIS_URL to one that runs")
    port = port or free_port()
    var_dir.mkdir(parents=True, exist_ok=True)
    with open(var_dir / "redis.log", "ab") as log_file:
        # Its own session, so a terminal's Ctrl-C does not stop it before the workers drain.
        process = subprocess.Popen(  # noqa: S603
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            cwd=var_dir, start_new_session=True)
    try:
        _wait_until_listening(port, process, var_dir / "redis.log")
        _say(f"started private Redis on port {port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def create_database(url: str) -> None:
    """Create the URL's database unless it exists, via the ``postgres`` maintenance database."""
    from psycopg2 import sql as pgsql

    with _maintenance_cursor(url) as (cursor, name):
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": name})
        if cursor.fetchone() is None:
            cursor.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))


def remove_trial_run(database_url: str, redis_url: str, redis_prefix: str, *,
                     var_dir: Path = Path("var")) -> None:
    """Undo a trial run: its database on the loopback PostgreSQL, its keys on the loopback
    Redis, and ``var_dir`` (the generated secrets and any private servers' data)."""
    import asyncio

    from cache.purge import delete_prefixed_keys

    if answers(database_url, default_port=5432):
        drop_database(database_url)
        _say(f"dropped the database {_where(database_url)}")
    if answers(redis_url, default_port=6379):
        deleted = asyncio.run(delete_prefixed_keys(redis_url, redis_prefix))
        _say(f"deleted {deleted} Redis keys under {redis_prefix!r} at {_where(redis_url)}")
    if var_dir.exists():
        shutil.rmtree(var_dir)
        _say(f"removed {_relative(var_dir.resolve())}/")


def drop_database(url: str) -> None:
    """Drop the URL's database if it exists, closing its connections (PostgreSQL 13+)."""
    from psycopg2 import sql as pgsql

    with _maintenance_cursor(url) as (cursor, name):
        cursor.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            pgsql.Identifier(name)))


@contextmanager
def _maintenance_cursor(url: str) -> Iterator[tuple[Any, str]]:
    """An autocommit cursor on the server's ``postgres`` database (CREATE and DROP DATABASE
    cannot run in a transaction), and the name of the URL's own database."""
    # The one place outside sql/ that touches psycopg2: a trial-run convenience, not app code.
    import psycopg2

    parts = urlsplit(url)
    connection = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")),
                                  connect_timeout=5)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            yield cursor, parts.path.lstrip("/")
    finally:
        connection.close()


def answers(url: str, *, default_port: int) -> bool:
    """Whether something accepts connections where ``url`` points (TCP or ``unix:`` path)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return _listening(socket.AF_UNIX, parts.path)
    return _listening(socket.AF_INET, (parts.hostname or "127.0.0.1", parts.port or default_port))


def _listening(family: int, address: str | tuple[str, int]) -> bool:
    with socket.socket(family) as probe:
        probe.settimeout(PROBE_TIMEOUT_SECONDS)
        try:
            probe.connect(address)
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _postgres_bin_dir() -> Path:
    """initdb and pg_ctl must come from one installation: the one on PATH, else the newest."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    installed = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if not installed:
        raise LocalRunError("PostgreSQL binaries (initdb, pg_ctl) not found: install PostgreSQL "
                            "(e.g. apt-get install postgresql) or set DATABASE_URL")
    newest = max(installed, key=lambda path: [int(n) for n in Path(path).parts[-3].split(".")])
    return Path(newest).parent


def _wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _listening(socket.AF_INET, ("127.0.0.1", port)):
        if process.poll() is not None or time.monotonic() > deadline:
            raise LocalRunError(f"redis-server did not start on port {port}; see {log}")
        time.sleep(0.05)


def _run(command: list[str | Path], *, check: bool = True) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise LocalRunError(f"{Path(command[0]).name} failed: {output}")


def _where(url: str) -> str:
    """host:port/db of a URL, without user or password, for messages."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] + parts.path


def _relative(path: Path) -> str:
    try:
        return f"./{path.relative_to(Path.cwd())}"
    except ValueError:
        return str(path)


def _say(message: str) -> None:
    print(f"local trial run: {message}", flush=True)
