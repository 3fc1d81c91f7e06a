"""Read replicas for real: a throwaway primary and a streaming replica built from it with
``pg_basebackup -R``, both on loopback ports of their own (never the machine's PostgreSQL).

Which server answered is seen the way a user would see it: with the replica's replay paused,
a change on the primary is missing from answers the replica gives. The app's own ``Database``
also says which port a slightly stale read reaches (``inet_server_port()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.appkeys import STORES
from service.config import Settings
from sql.migrate import apply_migrations
from tests.conftest import API, Account, register
from tests.helpers import wait_until
from tests.servers import (
    ThrowawayPostgres,
    ThrowawayReplica,
    create_database,
    database_url,
    free_port,
)

Client = TestClient[web.Request, web.Application]
NAME = "hireme_replica_test"
WAIT_SECONDS = 15


@dataclasses.dataclass
class Servers:
    primary: ThrowawayPostgres
    replica: ThrowawayReplica

    @property
    def primary_url(self) -> str:
        return database_url(self.primary.url, NAME)

    @property
    def replica_url(self) -> str:
        return database_url(self.replica.url, NAME)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with ThrowawayPostgres() as primary:
        asyncio.run(apply_migrations(create_database(primary.url, NAME)))
        with ThrowawayReplica(primary) as replica:
            yield Servers(primary, replica)


def run_sql(url: str, query: str) -> Any:
    with contextlib.closing(psycopg2.connect(url)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchone()[0] if cur.description else None


@pytest.fixture
def replay(servers: Servers) -> Iterator[Callable[[bool], None]]:
    """Pause or resume the replica's WAL replay; always resumed afterwards."""
    def set_paused(paused: bool) -> None:
        run_sql(servers.replica.url,
                "SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")

    yield set_paused
    if servers.replica.running:
        set_paused(False)


@pytest.fixture
def on_servers(aiohttp_client: Any, settings: Settings, servers: Servers
               ) -> Callable[..., Awaitable[Client]]:
    """An app on the throwaway primary, with ``replicas`` (default: the replica)."""
    async def make(*, replicas: tuple[str, ...] | None = None, max_lag: float = 30,
                   **overrides: Any) -> Client:
        app = create_app(dataclasses.replace(
            settings, database_url=servers.primary_url,
            database_replica_urls=(servers.replica_url,) if replicas is None else replicas,
            replica_max_lag_seconds=max_lag, **overrides))
        client: Client = await aiohttp_client(app)
        return client

    return make


async def replica_figure(client: Client, name: str) -> float:
    """``name``'s value for the first replica in a scrape of /metrics."""
    answer = await client.get("/metrics")
    assert answer.status == 200
    return next(sample.value for family in text_string_to_metric_families(await answer.text())
                for sample in family.samples
                if sample.name == name and sample.labels.get("pool") == "replica0")


async def served_by(client: Client) -> int:
    """The port of the server a slightly stale read of this app reaches now (in a task of its
    own, as a request would be: nothing the test did pins it to the primary)."""
    database = client.app[STORES].db
    port = await asyncio.create_task(
        database.fetch_value("SELECT inet_server_port()", stale_ok=True))
    return int(port)


async def replica_has(servers: Servers, user: Account) -> None:
    async def replayed() -> bool:
        return bool(run_sql(servers.replica_url,
                            f"SELECT count(*) FROM users WHERE id = {user.id}"))

    await wait_until(replayed, "the replica replays what the primary wrote",
                     WAIT_SECONDS, interval=0.1)


async def first_name(client: Client, viewer: Account, user: Account) -> str:
    answer = await client.get(f"{API}/users/{user.id}", headers=viewer.headers)
    assert answer.status == 200
    name: str = (await answer.json())["first_name"]
    return name


async def names_found(client: Client, viewer: Account, prefix: str) -> list[int]:
    answer = await client.get(f"{API}/users", params={"q": prefix}, headers=viewer.headers)
    assert answer.status == 200
    return [item["id"] for item in (await answer.json())["items"]]


async def two_accounts(on_servers: Callable[..., Awaitable[Client]],
                       servers: Servers) -> tuple[Account, Account]:
    """Registered through an app without replicas, so neither starts out as a recent writer,
    and replayed on the replica."""
    plain = await on_servers(replicas=())
    reader = await register(plain)
    writer = await register(plain, first_name="Grace")
    await replica_has(servers, writer)
    return reader, writer


async def test_reads_go_to_the_replica_and_a_writer_reads_their_own_write(
        on_servers: Callable[..., Awaitable[Client]], servers: Servers,
        replay: Callable[[bool], None]):
    reader, writer = await two_accounts(on_servers, servers)
    client = await on_servers()
    assert await served_by(client) == servers.replica.port
    replay(True)  # from now on the replica misses every change

    changed = await client.patch(f"{API}/me", json={"first_name": "Margaret"},
                                 headers=writer.headers)
    assert changed.status == 200

    # The writer's next requests read the primary: their own change is there.
    assert await first_name(client, writer, writer) == "Margaret"
    assert writer.id in await names_found(client, writer, "marg")
    # Anyone else's profile and list reads come from the replica, which has not seen it.
    assert await first_name(client, reader, writer) == "Grace"
    assert await names_found(client, reader, "marg") == []

    replay(False)

    async def reader_sees_it() -> bool:
        return await first_name(client, reader, writer) == "Margaret"

    await wait_until(reader_sees_it, "the replica catches up once replay resumes",
                     WAIT_SECONDS, interval=0.1)


async def test_a_lagging_replica_is_skipped_and_comes_back_and_lag_is_in_metrics(
        on_servers: Callable[..., Awaitable[Client]], servers: Servers,
        replay: Callable[[bool], None]):
    reader, writer = await two_accounts(on_servers, servers)
    client = await on_servers(max_lag=1)
    assert await served_by(client) == servers.replica.port
    replay(True)
    run_sql(servers.primary_url,
            f"UPDATE users SET first_name = 'Late' WHERE id = {writer.id}")

    async def skipped() -> bool:
        return await served_by(client) == servers.primary.port

    await wait_until(skipped, "a replica past REPLICA_MAX_LAG_SECONDS gets no reads",
                     WAIT_SECONDS, interval=0.1)
    # Its lag and its state are in /metrics; readers get the primary's answer meanwhile.
    assert await replica_figure(client, "hireme_db_replica_lag_seconds") > 1
    assert await replica_figure(client, "hireme_db_replica_healthy") == 0
    assert await first_name(client, reader, writer) == "Late"

    replay(False)

    async def back() -> bool:
        return await served_by(client) == servers.replica.port

    await wait_until(back, "a replica that caught up gets reads again",
                     WAIT_SECONDS, interval=0.1)
    assert await replica_figure(client, "hireme_db_replica_lag_seconds") <= 1
    assert await replica_figure(client, "hireme_db_replica_healthy") == 1


async def test_a_stopped_replica_is_skipped_and_with_none_up_reads_use_the_primary(
        on_servers: Callable[..., Awaitable[Client]], servers: Servers):
    reader, writer = await two_accounts(on_servers, servers)
    # A second replica that never answers: skipped from the start.
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/{NAME}"
    client = await on_servers(replicas=(servers.replica_url, nowhere))
    for _ in range(5):
        assert await served_by(client) == servers.replica.port

    servers.replica.stop()
    try:
        # Every replica is down: each read is answered, by the primary, at once (a read that
        # meets the dead replica before a health check does is retried on the primary).
        for _ in range(5):
            assert await first_name(client, reader, writer) == "Grace"
            assert writer.id in await names_found(client, reader, "grac")
        assert await served_by(client) == servers.primary.port
    finally:
        servers.replica.start()

    async def back() -> bool:
        return await served_by(client) == servers.replica.port

    await wait_until(back, "a restarted replica gets reads again",
                     WAIT_SECONDS, interval=0.1)


async def test_without_redis_to_ask_a_caller_reads_the_primary(
        on_servers: Callable[..., Awaitable[Client]], servers: Servers,
        replay: Callable[[bool], None]):
    """Nobody can tell whether the caller just wrote, in another process, when Redis is down:
    the safe answer is the primary."""
    reader, writer = await two_accounts(on_servers, servers)
    client = await on_servers(redis_url=f"redis://127.0.0.1:{free_port()}")
    replay(True)
    run_sql(servers.primary_url, f"UPDATE users SET first_name = 'Ada' WHERE id = {writer.id}")

    assert await first_name(client, reader, writer) == "Ada"
