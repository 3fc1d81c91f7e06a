"""The notifications API and the one notify function behind every feature."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.appkeys import STORES
from sql.db import Database
from sql.notifications import NOTIFICATION_TYPES
from tasks.notify import NewNotification, notify_txn
from tasks.work import unit_of_work
from tests.conftest import API, Account, ClientFactory, register
from tests.helpers import new_vapid_key, subscribe
from tests.push_service import PushService


async def notify(client: TestClient[Any, Any], event: NewNotification) -> int | None:
    async with unit_of_work(client.server.app[STORES], "test_notify") as work:
        return await notify_txn(work, event)


def follow_event(user: Account, actor: Account) -> NewNotification:
    return NewNotification(user_id=user.id, type="follow", actor_id=actor.id, related_id=actor.id,
                           dedup_key=f"follow:{actor.id}", data={"path": f"/users/{actor.id}"})


async def unread(client: TestClient[Any, Any], user: Account) -> int:
    response = await client.get(f"{API}/notifications/unread_count", headers=user.headers)
    assert response.status == 200
    count: int = (await response.json())["count"]
    return count


async def test_list_shows_the_actor_newest_first(client: TestClient[Any, Any], user: Account,
                                                 employer: Account):
    first = await notify(client, follow_event(user, employer))
    second = await notify(client, NewNotification(user_id=user.id, type="post_like",
                                                  actor_id=employer.id, related_id=7,
                                                  dedup_key="post_like:7:x"))
    response = await client.get(f"{API}/notifications", headers=user.headers)
    assert response.status == 200
    page = await response.json()
    assert [item["id"] for item in page["items"]] == [second, first]
    assert page["items"][1]["actor"]["id"] == employer.id
    assert page["items"][1]["type"] == "follow"
    assert page["items"][1]["is_read"] is False
    assert "email" not in page["items"][1]["actor"]
    assert page["next_cursor"] is None


async def test_the_same_event_never_notifies_twice(client: TestClient[Any, Any], user: Account,
                                                   employer: Account, db: Database):
    assert await notify(client, follow_event(user, employer)) is not None
    assert await notify(client, follow_event(user, employer)) is None
    assert await db.fetch_value("SELECT count(*) FROM notifications") == 1
    assert await unread(client, user) == 1


async def test_paging_and_filters(client: TestClient[Any, Any], user: Account,
                                  employer: Account):
    ids = [await notify(client, NewNotification(user_id=user.id, type="post_like",
                                                actor_id=employer.id, related_id=n,
                                                dedup_key=f"like:{n}")) for n in range(5)]
    await notify(client, follow_event(user, employer))
    seen: list[int] = []
    cursor = None
    while True:
        params = {"type": "post_like", "limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await (await client.get(f"{API}/notifications", params=params,
                                       headers=user.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    await client.post(f"{API}/notifications/{ids[0]}/read", headers=user.headers)
    page = await (await client.get(f"{API}/notifications", params={"unread_only": "true"},
                                   headers=user.headers)).json()
    assert ids[0] not in [item["id"] for item in page["items"]]
    assert len(page["items"]) == 5
    bad = await client.get(f"{API}/notifications", params={"type": "nope"}, headers=user.headers)
    assert bad.status == 400


async def test_unread_count_follows_every_write(client: TestClient[Any, Any], user: Account,
                                                employer: Account, db: Database):
    async def database_count() -> int:
        value = await db.fetch_value(
            "SELECT count(*) FROM notifications WHERE user_id = %(id)s AND NOT is_read",
            {"id": user.id})
        return int(value)

    assert await unread(client, user) == 0  # cached as 0 now
    first = await notify(client, follow_event(user, employer))
    assert await unread(client, user) == await database_count() == 1
    await notify(client, NewNotification(user_id=user.id, type="post_like", actor_id=employer.id,
                                         dedup_key="like:1"))
    me = await (await client.get(f"{API}/me", headers=user.headers)).json()
    assert me["unread_notifications"] == await database_count() == 2
    assert (await client.post(f"{API}/notifications/{first}/read",
                              headers=user.headers)).status == 204
    assert await unread(client, user) == await database_count() == 1
    assert (await client.post(f"{API}/notifications/read_all",
                              headers=user.headers)).status == 204
    assert await unread(client, user) == await database_count() == 0


async def test_someone_elses_notification_is_404(client: TestClient[Any, Any], user: Account,
                                                 employer: Account):
    theirs = await notify(client, follow_event(user, employer))
    response = await client.post(f"{API}/notifications/{theirs}/read", headers=employer.headers)
    assert response.status == 404
    assert await unread(client, user) == 1


async def test_preferences_default_on_and_can_be_switched(client: TestClient[Any, Any],
                                                          user: Account):
    response = await client.get(f"{API}/notifications/preferences", headers=user.headers)
    body = await response.json()
    assert set(body) == {"email", "push"}
    assert all(body["email"].values()) and len(body["email"]) == 7
    put = await client.put(f"{API}/notifications/preferences", headers=user.headers,
                           json={"email": {"message": False}, "push": {"follow": False}})
    assert put.status == 200
    body = await put.json()
    assert body["email"]["message"] is False and body["push"]["follow"] is False
    assert body["email"]["follow"] is True and body["push"]["message"] is True
    again = await (await client.get(f"{API}/notifications/preferences",
                                    headers=user.headers)).json()
    assert again == body


async def test_preferences_reject_unknown_types(client: TestClient[Any, Any], user: Account):
    response = await client.put(f"{API}/notifications/preferences", headers=user.headers,
                                json={"email": {"spam": False}, "push": {"follow": "no"}})
    assert response.status == 422
    assert set((await response.json())["error"]["fields"]) == {"email", "push"}


async def test_an_error_before_commit_leaves_no_notification_and_no_outbox_row(
        client: TestClient[Any, Any], user: Account, employer: Account, db: Database):
    before = await db.fetch_value("SELECT count(*) FROM outbox")
    try:
        async with unit_of_work(client.server.app[STORES], "doomed") as work:
            await notify_txn(work, NewNotification(user_id=user.id, type="application_received",
                                                   actor_id=employer.id,
                                                   data={"job_title": "Cook"}))
            raise RuntimeError("something failed after the outbox insert")
    except RuntimeError:
        pass
    assert await db.fetch_value("SELECT count(*) FROM notifications") == 0
    assert await db.fetch_value("SELECT count(*) FROM outbox") == before
    assert await unread(client, user) == 0


async def test_needs_a_token(client: TestClient[Any, Any]):
    for path in ("/notifications", "/notifications/unread_count", "/notifications/preferences"):
        assert (await client.get(f"{API}{path}")).status == 401


async def test_unread_count_without_redis_comes_from_postgres(make_client: Any, db: Database):
    from tests.servers import ThrowawayRedis

    with ThrowawayRedis() as redis_server:
        client = await make_client(redis_url=redis_server.url)
        user, actor = await register(client), await register(client)
        assert await unread(client, user) == 0
        redis_server.stop()
        await notify(client, follow_event(user, actor))
        assert await unread(client, user) == 1
        await client.post(f"{API}/notifications/read_all", headers=user.headers)
        assert await unread(client, user) == 0


@pytest.mark.parametrize("recipient_blocks", [True, False],
                         ids=["recipient blocks actor", "actor blocks recipient"])
async def test_no_notification_of_any_type_passes_a_block(
        make_client: ClientFactory, push_service: PushService, db: Database,
        recipient_blocks: bool):
    client = await make_client(push_endpoint_allowlist=(push_service.origin,),
                               vapid_private_key=new_vapid_key())
    recipient, actor = await register(client), await register(client)
    await subscribe(client, push_service, recipient)
    blocker, blocked = (recipient, actor) if recipient_blocks else (actor, recipient)
    response = await client.post(f"{API}/users/{blocked.id}/block", headers=blocker.headers)
    assert response.status == 201

    def event(kind: str) -> NewNotification:
        return NewNotification(user_id=recipient.id, type=kind, actor_id=actor.id, related_id=1,
                               dedup_key=f"{kind}:1", refresh=kind == "message")

    deliveries = "SELECT count(*) FROM outbox WHERE payload->>'email_type' IS DISTINCT FROM " \
                 "'welcome'"
    for kind in NOTIFICATION_TYPES:
        assert await notify(client, event(kind)) is None, kind
    assert await db.fetch_value("SELECT count(*) FROM notifications") == 0
    assert await db.fetch_value(deliveries) == 0
    assert await unread(client, recipient) == 0

    response = await client.delete(f"{API}/users/{blocked.id}/block", headers=blocker.headers)
    assert response.status == 204
    for kind in NOTIFICATION_TYPES:  # unblocked, the very same events notify
        assert await notify(client, event(kind)) is not None, kind
    assert await unread(client, recipient) == len(NOTIFICATION_TYPES)
    assert await db.fetch_value(deliveries) > len(NOTIFICATION_TYPES)
