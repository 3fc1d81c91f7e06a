"""Fixtures: real PostgreSQL and Redis, a fresh app per test, registered users.

The schema is migrated once per session into a database made for this run; each test starts
from empty tables and its own Redis key prefix, so no test sees another's data and nothing
outside this run's database and prefix is ever touched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import psycopg2
import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.config import RateLimit, Settings
from sql.db import Database, PoolConfig, open_database
from sql.migrate import apply_migrations
from tests.counting_proxy import CountingProxy
from tests.push_service import PushService
from tests.servers import (
    create_database,
    drop_database,
    postgres_server,
    redis_client,
    redis_server,
)
from tests.smtp_sink import SmtpSink
from tests.statement_counter import StatementCounter

PASSWORD = "correct horse battery"
API = "/api/v1"
ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    name = f"hireme_test_{uuid.uuid4().hex[:12]}"
    url = create_database(postgres_admin_url, name)
    asyncio.run(apply_migrations(url))
    yield url
    drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def clean_database(database_url: str) -> str:
    """Empty every table (the schema stays) before the test."""
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("""
            SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables
            WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
        """)
        tables = cur.fetchone()[0]
        cur.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    conn.close()
    return database_url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"hireme-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    try:
        client = redis_client(redis_url)
    except (redis.RedisError, redis.exceptions.RedisClusterException):
        return  # a test may have left this Redis stopped
    try:
        keys = list(client.scan_iter(f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass  # a test may have left this Redis stopped
    finally:
        client.close()


@pytest.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on this test's loop, collecting what it receives."""
    sink = SmtpSink()
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
async def push_service() -> AsyncIterator[PushService]:
    """A real web push service: checks VAPID, decrypts payloads, can be told to fail."""
    service = PushService()
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
def settings(clean_database: str, redis_url: str, redis_prefix: str,
             smtp_sink: SmtpSink) -> Settings:
    return Settings(
        database_url=clean_database,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        smtp_url=f"smtp://127.0.0.1:{smtp_sink.port}",
        delivery_sweep_seconds=0.2,
        delivery_retry_base_seconds=0.2,
        delivery_lease_seconds=5,
        secret_key="test-secret-" + "x" * 40,
        auth_rate_limit=RateLimit(1000, 60),
        write_rate_limit=RateLimit(10_000, 60),
        db_pool_size=1,
        db_acquire_timeout=2.0,
        public_base_url="http://hireme.test",
        push_endpoint_allowlist=("https://push.example",),
    )


@pytest.fixture
def make_client(aiohttp_client: Any, settings: Settings) -> ClientFactory:
    """Start an app (one worker process's worth of state) with settings overrides."""

    async def make(**overrides: Any) -> TestClient[web.Request, web.Application]:
        app = create_app(dataclasses.replace(settings, **overrides))
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[web.Request, web.Application]:
    return await make_client()


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """A database handle for the test's own assertions."""
    database = open_database(settings.database_url, (), PoolConfig(
        minsize=1, maxsize=4, recycle=300, acquire_timeout=5, statement_timeout=30))
    await database.open()
    yield database
    await database.close()


@dataclasses.dataclass
class Account:
    id: int
    email: str
    token: str
    body: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


_emails = itertools.count(1)


async def register(client: TestClient[Any, Any], *, role: str = "job_seeker",
                   email: str | None = None, first_name: str = "Ada",
                   last_name: str = "Lovelace", password: str = PASSWORD) -> Account:
    email = email or f"user{next(_emails)}-{uuid.uuid4().hex[:6]}@example.com"
    response = await client.post(f"{API}/auth/register", json={
        "email": email, "password": password, "first_name": first_name,
        "last_name": last_name, "role": role})
    body = await response.json()
    assert response.status == 201, body
    return Account(body["user"]["id"], email, body["token"], body)


@pytest.fixture
async def user(client: TestClient[Any, Any]) -> Account:
    return await register(client)


@pytest.fixture
async def employer(client: TestClient[Any, Any]) -> Account:
    return await register(client, role="employer", first_name="Grace", last_name="Hopper")


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[CountingProxy]:
    """A counting proxy in front of the test Redis (pass ``proxy.url`` as ``redis_url``)."""
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    counting = CountingProxy(port)
    await counting.start()
    yield counting
    await counting.stop()


@pytest.fixture
async def statement_counter(settings: Settings) -> AsyncIterator[StatementCounter]:
    """A proxy in front of the test PostgreSQL recording each statement (round trip) sent
    through it (pass ``await statement_counter.start()`` as ``database_url``)."""
    counter = StatementCounter(settings.database_url)
    yield counter
    await counter.stop()
