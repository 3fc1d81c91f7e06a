"""Cross-cutting behaviour: error shape, limits, request ids, health, outages."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from sql.migrate import apply_migrations
from tests.conftest import API, Account, ClientFactory
from tests.servers import ThrowawayPostgres, ThrowawayRedis, create_database


async def test_unknown_path_and_wrong_method_use_the_error_shape(client: TestClient[Any, Any]):
    missing = await client.get(f"{API}/nope")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"
    wrong = await client.delete(f"{API}/auth/login")
    assert wrong.status == 405
    assert set((await wrong.json())["error"]) == {"code", "message"}


async def test_body_over_the_limit_is_413(make_client: ClientFactory):
    client = await make_client(max_body_size=1024)
    response = await client.post(f"{API}/auth/login", data=b"{" + b" " * 2000 + b"}",
                                 headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_request_id_is_echoed_or_made(client: TestClient[Any, Any]):
    given = await client.get("/health", headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    made = await client.get("/health", headers={"X-Request-Id": "bad id with spaces"})
    assert len(made.headers["X-Request-Id"]) == 32


async def test_health_reports_every_part(client: TestClient[Any, Any]):
    response = await client.get("/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "db": "ok", "redis": "ok",
                                     "deliveries": "ok"}


async def health_once(client: TestClient[Any, Any], status: int,
                      timeout: float = 5) -> dict[str, Any]:
    """/health once its background checks (every second) say ``status``; fails after
    ``timeout``."""
    async with asyncio.timeout(timeout):
        while (answer := await client.get("/health")).status != status:
            await asyncio.sleep(0.1)
    body: dict[str, Any] = await answer.json()
    return body


async def test_health_says_deliveries_lag(make_client: ClientFactory, db: Any):
    client = await make_client(delivery_sweep_seconds=600)  # its first sweep is already done
    await asyncio.sleep(0.1)
    await db.execute("""
        INSERT INTO outbox (kind, payload, idempotency_key, next_attempt_at)
        VALUES ('email', '{}', 'old', now() - interval '10 minutes')""")
    async with asyncio.timeout(5):
        while (await (await client.get("/health")).json())["deliveries"] != "lagging":
            await asyncio.sleep(0.1)


async def test_redis_down_still_serves_from_postgres(make_client: ClientFactory,
                                                     user: Account):
    with ThrowawayRedis() as redis_server:
        client = await make_client(redis_url=redis_server.url)
        assert (await client.get(f"{API}/me", headers=user.headers)).status == 200
        redis_server.stop()
        me = await client.get(f"{API}/me", headers=user.headers)
        assert me.status == 200
        async with asyncio.timeout(5):
            while (health := await client.get("/health")).status != 200 or \
                    (await health.json())["redis"] != "down":
                await asyncio.sleep(0.1)
        login = await client.post(f"{API}/auth/login",
                                  json={"email": user.email, "password": "correct horse battery"})
        assert login.status == 200


async def test_database_down_is_503_then_recovers(make_client: ClientFactory):
    with ThrowawayPostgres() as postgres:
        url = create_database(postgres.url, "hireme")
        await apply_migrations(url)
        client = await make_client(database_url=url, db_acquire_timeout=2.0)
        assert (await client.get("/health")).status == 200
        postgres.stop()
        assert (await health_once(client, 503))["db"] == "down"
        login = await client.post(f"{API}/auth/login",
                                  json={"email": "a@example.com", "password": "whatever"})
        assert login.status == 503
        assert (await login.json())["error"]["code"] == "unavailable"
        postgres.start()
        await health_once(client, 200, timeout=10)
        login = await client.post(f"{API}/auth/login",
                                  json={"email": "a@example.com", "password": "whatever"})
        assert login.status == 401


async def test_a_request_past_the_timeout_is_503_not_a_hang(make_client: ClientFactory):
    client = await make_client(request_timeout=0.001)  # argon2 alone takes longer
    response = await client.post(f"{API}/auth/register", json={
        "email": "slow@example.com", "password": "correct horse battery",
        "first_name": "S", "last_name": "Low", "role": "job_seeker"})
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "unavailable"


async def test_no_error_answer_leaks_internals(client: TestClient[Any, Any]):
    response = await client.post(f"{API}/auth/login", data=b'{"email": []}')
    body = await response.text()
    assert response.status == 422
    for leak in ("Traceback", "psycopg2", "SELECT", "password_hash"):
        assert leak not in body
