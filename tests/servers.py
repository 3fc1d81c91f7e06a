"""PostgreSQL and Redis servers for the test suite.

Plain functions, no pytest fixtures: conftest calls them from session-scoped fixtures. Each
server comes from, in order: the ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` environment
variable, the default loopback server when it answers, or a throwaway server started from
local binaries in a temporary directory. Only throwaway servers are ever stopped; the
machine's own servers are used as they are and never reconfigured. Starting, stopping and
creating databases is ``devservers.servers``, shared with run.py's local trial run; its names
are re-exported here for the tests.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from devservers.servers import (
    ServerUnavailableError,
    ThrowawayPostgres,
    ThrowawayRedis,
    ThrowawayRedisCluster,
    ThrowawayReplica,
    create_database,
    database_url,
    drop_database,
    free_port,
    postgres_answers,
    redis_answers,
    redis_client,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_REDIS_URL",
    "ServerUnavailableError",
    "ThrowawayPostgres",
    "ThrowawayRedis",
    "ThrowawayRedisCluster",
    "ThrowawayReplica",
    "create_database",
    "database_url",
    "drop_database",
    "free_port",
    "postgres_server",
    "redis_client",
    "redis_server",
]

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the admin URL of a PostgreSQL server for the tests.

    ``TEST_DATABASE_URL`` is yielded as given: it must name a role that may CREATE DATABASE
    (a superuser for DROP ... WITH (FORCE) on others' sessions). Otherwise the loopback
    default when it answers, otherwise a throwaway server that is stopped afterwards.
    """
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
    elif postgres_answers(DEFAULT_DATABASE_URL):
        yield DEFAULT_DATABASE_URL
    else:
        try:
            server = ThrowawayPostgres()
        except ServerUnavailableError as exc:
            raise ServerUnavailableError(
                f"TEST_DATABASE_URL is not set, {DEFAULT_DATABASE_URL} does not answer, and {exc}"
            ) from None
        with server:
            yield server.url


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Yield the URL of a Redis server for the tests.

    ``TEST_REDIS_CLUSTER=1``: a throwaway three-master Redis Cluster (its
    ``redis+cluster://`` URL). Else ``TEST_REDIS_URL`` as given, else the loopback default
    when it answers PING, else a throwaway server that is stopped afterwards.
    """
    configured = os.environ.get("TEST_REDIS_URL")
    if os.environ.get("TEST_REDIS_CLUSTER") == "1":
        with ThrowawayRedisCluster() as cluster:
            yield cluster.url
    elif configured:
        yield configured
    elif redis_answers(DEFAULT_REDIS_URL):
        yield DEFAULT_REDIS_URL
    else:
        try:
            server = ThrowawayRedis()
        except ServerUnavailableError as exc:
            raise ServerUnavailableError(
                f"TEST_REDIS_URL is not set, {DEFAULT_REDIS_URL} does not answer, and {exc}"
            ) from None
        with server:
            yield server.url
