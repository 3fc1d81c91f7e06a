"""Local trial run: find or start the PostgreSQL and Redis that a newcomer's machine may lack.

Used only without DATABASE_URL (``Settings.local_run``). Loopback servers that answer on the
default URLs are used as they are; otherwise private ones are started under ``./var`` and
stopped when the command exits. With DATABASE_URL set, nothing here starts anything.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg2

from devservers.servers import (
    ServerUnavailableError,
    ThrowawayPostgres,
    ThrowawayRedis,
    database_url,
    drop_database_of,
    ensure_database,
    listening,
)
from service.config import Settings


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
        database = stack.enter_context(_postgres(settings.database_url, var_dir))
        redis_url = settings.redis_url
        if redis:
            redis_url = stack.enter_context(_redis(settings.redis_url, var_dir))
        yield dataclasses.replace(settings, database_url=database, redis_url=redis_url)


@contextmanager
def _postgres(url: str, var_dir: Path) -> Iterator[str]:
    if listening(url, default_port=5432):
        try:
            ensure_database(url)
        except psycopg2.Error as error:  # it answers, but not to us (password, ...)
            _say(f"PostgreSQL at {_where(url)} answers but refused us ({str(error).strip()}); "
                 "starting a private one instead")
        else:
            _say(f"using PostgreSQL at {_where(url)}")
            yield url
            return
    try:
        server = ThrowawayPostgres(directory=var_dir / "postgres")
    except ServerUnavailableError as error:
        raise ServerUnavailableError(
            f"{error}, or set DATABASE_URL to a database you run") from None
    name = unquote(urlsplit(url).path.lstrip("/")) or "hireme"
    with server:
        private_url = database_url(server.url, name)
        ensure_database(private_url)
        _say(f"started private PostgreSQL in {_relative(server.directory)} on port {server.port}")
        yield private_url


@contextmanager
def _redis(url: str, var_dir: Path) -> Iterator[str]:
    if listening(url, default_port=6379):
        _say(f"using Redis at {_where(url)}")
        yield url
        return
    try:
        server = ThrowawayRedis(directory=var_dir)
    except ServerUnavailableError as error:
        raise ServerUnavailableError(f"{error}, or set REDIS_URL to one that runs") from None
    with server:
        _say(f"started private Redis on port {server.port}")
        yield f"{server.url}/0"


def remove_trial_run(database_url: str, redis_url: str, redis_prefix: str, *,
                     var_dir: Path = Path("var")) -> None:
    """Undo a trial run: its database on the loopback PostgreSQL, its keys on the loopback
    Redis, and ``var_dir`` (the generated secrets and any private servers' data)."""
    import asyncio

    from cache.purge import delete_prefixed_keys

    if listening(database_url, default_port=5432):
        drop_database_of(database_url)
        _say(f"dropped the database {_where(database_url)}")
    if listening(redis_url, default_port=6379):
        deleted = asyncio.run(delete_prefixed_keys(redis_url, redis_prefix))
        _say(f"deleted {deleted} Redis keys under {redis_prefix!r} at {_where(redis_url)}")
    if var_dir.exists():
        shutil.rmtree(var_dir)
        _say(f"removed {_relative(var_dir.resolve())}/")


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
