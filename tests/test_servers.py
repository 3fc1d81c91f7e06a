"""The test harness itself: throwaway servers stop and restart, databases come and go."""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis

import devservers.servers
from tests import servers


@contextlib.contextmanager
def connect(url: str) -> Iterator[psycopg2.extensions.connection]:
    """A psycopg2 connection that is closed at the end of the block."""
    with contextlib.closing(psycopg2.connect(url, connect_timeout=2)) as conn:
        conn.autocommit = True
        yield conn


def query_one(url: str, query: str) -> object:
    """Run ``query`` on a fresh connection and return the first column of its first row."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(query)
        row = cur.fetchone()
        assert row is not None
        return row[0]


def ping(url: str) -> bool:
    """PING through redis-py, closing the client afterwards."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.ping())
    finally:
        client.close()


def test_free_port_is_bindable() -> None:
    port = servers.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_database_url_replaces_the_database() -> None:
    assert (
        servers.database_url("postgresql://u:p@h:5433/postgres?sslmode=disable", "a b")
        == "postgresql://u:p@h:5433/a%20b?sslmode=disable"
    )
    assert "dbname=x" in servers.database_url("host=h dbname=postgres", "x")


def test_throwaway_postgres_keeps_port_and_data_across_restart() -> None:
    with servers.ThrowawayPostgres() as pg:
        with connect(pg.url) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE kept (value text)")
            cur.execute("INSERT INTO kept VALUES ('still here')")
        port, datadir = pg.port, pg.datadir

        pg.stop()
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(pg.url, connect_timeout=2)

        pg.start()
        assert (pg.port, pg.datadir) == (port, datadir)
        assert query_one(pg.url, "SELECT value FROM kept") == "still here"
        tempdir = pg.datadir.parent
    assert not tempdir.exists()


def test_throwaway_redis_answers_again_after_restart() -> None:
    with servers.ThrowawayRedis() as server:
        assert ping(server.url)
        port = server.port

        server.stop()
        assert not server.running
        with pytest.raises(redis.ConnectionError):
            ping(server.url)

        server.start()
        assert server.port == port
        assert ping(server.url)


def test_create_and_drop_database_round_trip() -> None:
    name = f"hireme_harness_{uuid.uuid4().hex[:12]}"
    with servers.postgres_server() as admin_url:
        url = servers.create_database(admin_url, name)
        try:
            assert query_one(url, "SELECT current_database()") == name
            with connect(url):  # an open session must not block the drop
                servers.drop_database(admin_url, name)
        finally:
            servers.drop_database(admin_url, name)
        found = query_one(admin_url, f"SELECT count(*) FROM pg_database WHERE datname = '{name}'")
        assert found == 0


def test_configured_urls_are_used_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql://someone@db.invalid/postgres")
    monkeypatch.setenv("TEST_REDIS_URL", "redis://cache.invalid:6390/3")
    with servers.postgres_server() as pg_url, servers.redis_server() as redis_url:
        assert pg_url == "postgresql://someone@db.invalid/postgres"
        assert redis_url == "redis://cache.invalid:6390/3"


def test_missing_binaries_name_the_debian_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(devservers.servers, "POSTGRES_BIN_GLOB",
                        str(tmp_path / "none" / "*" / "bin"))
    with pytest.raises(servers.ServerUnavailableError, match="`postgresql`"):
        servers.ThrowawayPostgres()
    with pytest.raises(servers.ServerUnavailableError, match="`redis-server`"):
        servers.ThrowawayRedis()


def test_silent_defaults_fall_back_to_throwaway_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.delenv("TEST_REDIS_URL", raising=False)
    monkeypatch.setattr(
        servers, "DEFAULT_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{servers.free_port()}"
    )
    monkeypatch.setattr(servers, "DEFAULT_REDIS_URL", f"redis://127.0.0.1:{servers.free_port()}")
    with servers.postgres_server() as pg_url, servers.redis_server() as redis_url:
        assert pg_url != servers.DEFAULT_DATABASE_URL
        assert redis_url != servers.DEFAULT_REDIS_URL
        assert query_one(pg_url, "SELECT current_setting('is_superuser')") == "on"
        assert ping(redis_url)
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(pg_url, connect_timeout=2)
    with pytest.raises(redis.ConnectionError):
        ping(redis_url)
