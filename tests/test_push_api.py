"""Web push end to end: subscriptions through the API, delivery to a real push service."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.appkeys import DELIVERY_RUNTIME, STORES
from sql.db import Database
from tasks import base64url
from tasks.deliver import OutboxDispatcher
from tasks.notify import NewNotification, notify_txn
from tasks.work import unit_of_work
from tests.conftest import API, Account, ClientFactory, register
from tests.helpers import new_vapid_key, subscribe
from tests.push_service import PushService


@pytest.fixture
async def client(make_client: ClientFactory,
                 push_service: PushService) -> TestClient[Any, Any]:
    return await make_client(push_endpoint_allowlist=(push_service.origin,),
                             vapid_private_key=new_vapid_key(),
                             vapid_subject="mailto:ops@hireme.test")


async def follow(client: TestClient[Any, Any], user: Account, actor: Account) -> int | None:
    async with unit_of_work(client.server.app[STORES], "test_follow") as work:
        return await notify_txn(work, NewNotification(
            user_id=user.id, type="follow", actor_id=actor.id, related_id=actor.id,
            dedup_key=f"follow:{actor.id}", data={"path": f"/users/{actor.id}"}))


async def outbox_push_rows(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all(
        "SELECT status, attempts, last_error, next_attempt_at FROM outbox "
        "WHERE kind = 'push' ORDER BY id")


async def wait_for_row(db: Database, predicate: Any, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            rows = await outbox_push_rows(db)
            if rows and predicate(rows[-1]):
                return rows[-1]
            await asyncio.sleep(0.05)


async def test_vapid_public_key_is_the_browser_application_server_key(
        client: TestClient[Any, Any]):
    response = await client.get(f"{API}/push/vapid_public_key")
    key = (await response.json())["key"]
    raw = base64url.decode(key)
    assert len(raw) == 65 and raw[0] == 4


async def test_a_notification_is_pushed_encrypted_with_ttl_and_topic(
        client: TestClient[Any, Any], push_service: PushService):
    user, actor = await register(client), await register(client, first_name="Grace",
                                                         last_name="Hopper")
    await subscribe(client, push_service, user)
    notification_id = await follow(client, user, actor)
    [push] = await push_service.wait_for(1)
    assert push.payload == {
        "type": "follow", "title": "New follower", "body": "Grace Hopper started following you",
        "url": f"http://hireme.test/users/{actor.id}", "notification_id": notification_id}
    assert push.ttl > 0
    assert push.topic is not None and len(push.topic) <= 32
    assert push.vapid_claims["sub"] == "mailto:ops@hireme.test"
    assert push.vapid_claims["aud"] == push_service.origin
    assert time.time() < push.vapid_claims["exp"] <= time.time() + 24 * 3600


async def test_gone_subscription_is_deleted_and_the_row_dead(
        client: TestClient[Any, Any], push_service: PushService, db: Database):
    user, actor = await register(client), await register(client)
    await subscribe(client, push_service, user)
    push_service.respond_with = 410
    await follow(client, user, actor)
    row = await wait_for_row(db, lambda r: r["status"] == "dead")
    assert "410" in row["last_error"]
    assert await db.fetch_value("SELECT count(*) FROM push_subscriptions") == 0


async def test_rate_limited_push_waits_for_retry_after(
        client: TestClient[Any, Any], push_service: PushService, db: Database):
    user, actor = await register(client), await register(client)
    await subscribe(client, push_service, user)
    push_service.respond_with, push_service.retry_after = 429, 30
    await follow(client, user, actor)
    row = await wait_for_row(db, lambda r: r["attempts"] == 1 and r["status"] == "pending")
    wait = await db.fetch_value("SELECT extract(epoch FROM next_attempt_at - now()) "
                                "FROM outbox WHERE kind = 'push'")
    assert 25 < float(wait) <= 30
    assert "429" in row["last_error"]


async def test_server_errors_are_retried_then_delivered(
        client: TestClient[Any, Any], push_service: PushService, db: Database):
    user, actor = await register(client), await register(client)
    await subscribe(client, push_service, user)
    push_service.respond_with = 500
    await follow(client, user, actor)
    await wait_for_row(db, lambda r: r["attempts"] >= 2 and r["status"] == "pending")
    push_service.respond_with = None  # the failed second attempt waits; the third succeeds
    row = await wait_for_row(db, lambda r: r["status"] == "sent")
    assert row["attempts"] >= 3
    assert await db.fetch_value("SELECT count(*) FROM push_subscriptions") == 1


async def test_a_hanging_push_service_times_out_and_is_retried(
        make_client: ClientFactory, push_service: PushService, db: Database):
    client = await make_client(push_endpoint_allowlist=(push_service.origin,),
                               vapid_private_key=new_vapid_key())
    deliverer = client.server.app[DELIVERY_RUNTIME].queue.deliver
    assert isinstance(deliverer, OutboxDispatcher)
    deliverer.push.timeout = 0.3  # the sender's timeout, shortened for the test
    user, actor = await register(client), await register(client)
    await subscribe(client, push_service, user)
    push_service.hang_seconds = 5
    await follow(client, user, actor)
    row = await wait_for_row(db, lambda r: r["attempts"] >= 1 and r["status"] == "pending")
    assert "timeout" in row["last_error"].lower()


async def test_read_before_push_skips_it(client: TestClient[Any, Any],
                                         push_service: PushService, db: Database):
    user, actor = await register(client), await register(client)
    await subscribe(client, push_service, user)
    push_service.respond_with = 500  # the first attempt fails and waits to retry
    notification_id = await follow(client, user, actor)
    await wait_for_row(db, lambda r: r["status"] == "pending" and r["attempts"] == 1)
    await client.post(f"{API}/notifications/{notification_id}/read", headers=user.headers)
    push_service.respond_with = None
    row = await wait_for_row(db, lambda r: r["status"] in ("sent", "skipped", "dead"))
    assert (row["status"], row["last_error"]) == ("skipped", "read in app")
    assert push_service.received == []


async def test_push_preference_off_writes_no_push(client: TestClient[Any, Any],
                                                  push_service: PushService, db: Database):
    user, actor = await register(client), await register(client)
    await subscribe(client, push_service, user)
    await client.put(f"{API}/notifications/preferences", headers=user.headers,
                     json={"push": {"follow": False}})
    await follow(client, user, actor)
    assert await outbox_push_rows(db) == []


async def test_subscription_upsert_moves_an_endpoint_between_accounts(
        client: TestClient[Any, Any], push_service: PushService, db: Database):
    first, second = await register(client), await register(client)
    subscription = await subscribe(client, push_service, first)
    again = await client.post(f"{API}/push/subscriptions", json=subscription,
                              headers=first.headers)
    assert again.status == 200
    moved = await client.post(f"{API}/push/subscriptions", json=subscription,
                              headers=second.headers)
    assert moved.status == 200
    owner = await db.fetch_value("SELECT user_id FROM push_subscriptions")
    assert owner == second.id
    gone = await client.delete(f"{API}/push/subscriptions", headers=first.headers,
                               json={"endpoint": subscription["endpoint"]})
    assert gone.status == 204
    assert await db.fetch_value("SELECT count(*) FROM push_subscriptions") == 1
    await client.delete(f"{API}/push/subscriptions", headers=second.headers,
                        json={"endpoint": subscription["endpoint"]})
    assert await db.fetch_value("SELECT count(*) FROM push_subscriptions") == 0


async def test_endpoints_outside_the_allowlist_are_refused(
        client: TestClient[Any, Any], push_service: PushService, db: Database):
    user = await register(client)
    subscription = push_service.new_subscription()
    for endpoint in ("https://evil.example/push/1", "http://169.254.169.254/latest",
                     push_service.origin.replace("127.0.0.1", "localhost") + "/push/1"):
        response = await client.post(f"{API}/push/subscriptions", headers=user.headers,
                                     json=subscription | {"endpoint": endpoint})
        assert response.status == 422, endpoint
        assert list((await response.json())["error"]["fields"]) == ["endpoint"]
    bad_keys = await client.post(f"{API}/push/subscriptions", headers=user.headers, json={
        "endpoint": subscription["endpoint"], "keys": {"p256dh": "short", "auth": "?"}})
    assert bad_keys.status == 422
    assert set((await bad_keys.json())["error"]["fields"]) == {"keys.p256dh", "keys.auth"}
    assert await db.fetch_value("SELECT count(*) FROM push_subscriptions") == 0
