"""Follows and blocks: status codes, counters, lists, notifications, and what a block stops."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from sql.db import Database
from tests.conftest import API, Account, ClientFactory, register
from tests.helpers import (
    block,
    follow,
    new_vapid_key,
    notifications_of,
    post_job,
    subscribe,
    unfollow,
    walk,
)
from tests.push_service import PushService

Client = TestClient[Any, Any]


# -- helpers --------------------------------------------------------------------------------

async def profile(client: Client, viewer: Account, user_id: int) -> dict[str, Any]:
    response = await client.get(f"{API}/users/{user_id}", headers=viewer.headers)
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def counts(db: Database, user_id: int) -> tuple[int, int]:
    row = await db.fetch_one("SELECT followers_count, following_count FROM users "
                             "WHERE id = %(id)s", {"id": user_id})
    assert row is not None
    return row["followers_count"], row["following_count"]


# -- follows --------------------------------------------------------------------------------

async def test_follow_is_201_then_200_and_counts_once(client: Client, db: Database):
    ada, bob = await register(client), await register(client, first_name="Bob")
    response = await client.post(f"{API}/users/{bob.id}/follow", headers=ada.headers)
    assert response.status == 201
    body = await response.json()
    assert body["id"] == bob.id and body["followed_by_me"] is True
    assert body["followers_count"] == 1 and "email" not in body
    await follow(client, ada, bob.id, expect=200)
    assert await counts(db, bob.id) == (1, 0)
    assert await counts(db, ada.id) == (0, 1)
    assert (await profile(client, ada, bob.id))["followed_by_me"] is True
    await unfollow(client, ada, bob.id)
    await unfollow(client, ada, bob.id)  # not following: still 204
    assert await counts(db, bob.id) == (0, 0)
    assert await counts(db, ada.id) == (0, 0)
    assert (await profile(client, ada, bob.id))["followed_by_me"] is False


async def test_follow_errors(client: Client, user: Account):
    self_follow = await client.post(f"{API}/users/{user.id}/follow", headers=user.headers)
    assert self_follow.status == 422
    assert "id" in (await self_follow.json())["error"]["fields"]
    for path in ("999999", "abc", "0"):
        missing = await client.post(f"{API}/users/{path}/follow", headers=user.headers)
        assert missing.status == 404, path
    assert (await client.post(f"{API}/users/{user.id}/follow")).status == 401
    assert (await client.delete(f"{API}/users/{user.id}/follow")).status == 401


async def test_a_refollow_never_notifies_twice(client: Client, db: Database):
    ada, bob = await register(client), await register(client)
    await follow(client, ada, bob.id)
    await unfollow(client, ada, bob.id)
    await follow(client, ada, bob.id)
    [note] = await notifications_of(db, bob.id, "follow")
    assert note["actor_id"] == ada.id and note["related_id"] == ada.id
    listed = await (await client.get(f"{API}/notifications", headers=bob.headers)).json()
    assert [item["type"] for item in listed["items"]] == ["follow"]
    assert listed["items"][0]["actor"]["id"] == ada.id


async def test_follow_is_pushed_but_never_emailed(make_client: ClientFactory,
                                                  push_service: PushService, db: Database):
    client = await make_client(push_endpoint_allowlist=(push_service.origin,),
                               vapid_private_key=new_vapid_key())
    ada, bob = await register(client), await register(client, first_name="Bob")
    await subscribe(client, push_service, bob)
    await follow(client, ada, bob.id)
    [push] = await push_service.wait_for(1)
    assert push.payload["type"] == "follow"
    assert push.payload["url"].endswith(f"/users/{ada.id}")
    assert await db.fetch_value("SELECT count(*) FROM outbox WHERE kind = 'email' "
                                "AND payload->>'email_type' = 'follow'") == 0


async def test_concurrent_follows_count_once(client: Client, db: Database):
    ada, bob = await register(client), await register(client)
    responses = await asyncio.gather(*[
        client.post(f"{API}/users/{bob.id}/follow", headers=ada.headers) for _ in range(5)])
    assert sorted(r.status for r in responses) == [200, 200, 200, 200, 201]
    assert await counts(db, bob.id) == (1, 0)
    assert len(await notifications_of(db, bob.id, "follow")) == 1


async def test_followers_and_following_are_newest_follow_first(client: Client):
    star = await register(client)
    fans = [await register(client) for _ in range(5)]
    for fan in fans:
        await follow(client, fan, star.id)
    expected = [fan.id for fan in reversed(fans)]
    assert await walk(client, fans[0], f"/users/{star.id}/followers") == expected
    for fan in fans[1:]:
        await follow(client, fans[0], fan.id)
    following = await walk(client, star, f"/users/{fans[0].id}/following", limit=3)
    assert following == [fan.id for fan in reversed(fans[1:])] + [star.id]
    page = await (await client.get(f"{API}/users/{star.id}/followers",
                                   headers=fans[1].headers)).json()
    assert page["items"][0]["followed_by_me"] is False  # fans[4] is not followed by fans[1]
    assert all("email" not in item for item in page["items"])


async def test_people_lists_errors(client: Client, user: Account):
    for which in ("followers", "following"):
        assert (await client.get(f"{API}/users/999999/{which}",
                                 headers=user.headers)).status == 404
        assert (await client.get(f"{API}/users/{user.id}/{which}")).status == 401
        bad = await client.get(f"{API}/users/{user.id}/{which}", params={"cursor": "nope"},
                               headers=user.headers)
        assert bad.status == 400
        empty = await client.get(f"{API}/users/{user.id}/{which}", headers=user.headers)
        assert await empty.json() == {"items": [], "next_cursor": None}
    assert (await client.get(f"{API}/me/blocks")).status == 401
    assert (await client.get(f"{API}/me/blocks", params={"limit": "0"},
                             headers=user.headers)).status == 400


# -- blocks ---------------------------------------------------------------------------------

async def test_block_removes_follows_both_ways_and_fixes_counts(client: Client, db: Database):
    ada, bob, cat = await register(client), await register(client), await register(client)
    await follow(client, ada, bob.id)
    await follow(client, bob, ada.id)
    await follow(client, cat, ada.id)
    response = await client.post(f"{API}/users/{bob.id}/block", headers=ada.headers)
    assert response.status == 201
    assert (await response.json())["id"] == bob.id
    await block(client, ada, bob.id, expect=200)
    assert await counts(db, ada.id) == (1, 0)  # cat still follows ada
    assert await counts(db, bob.id) == (0, 0)
    assert await walk(client, cat, f"/users/{ada.id}/followers") == [cat.id]


async def test_blocked_users_cannot_follow_either_way(client: Client):
    ada, bob = await register(client), await register(client)
    await block(client, ada, bob.id)
    await follow(client, bob, ada.id, expect=403)
    await follow(client, ada, bob.id, expect=403)  # the blocker neither, until unblocking
    response = await client.delete(f"{API}/users/{bob.id}/block", headers=ada.headers)
    assert response.status == 204
    await follow(client, bob, ada.id)


async def test_block_errors(client: Client, user: Account):
    own = await client.post(f"{API}/users/{user.id}/block", headers=user.headers)
    assert own.status == 422
    assert (await client.post(f"{API}/users/999999/block", headers=user.headers)).status == 404
    assert (await client.post(f"{API}/users/1/block")).status == 401
    assert (await client.delete(f"{API}/users/999999/block", headers=user.headers)).status == 204


async def test_blocks_list_is_paged_newest_first(client: Client):
    ada = await register(client)
    others = [await register(client) for _ in range(3)]
    for other in others:
        await block(client, ada, other.id)
    assert await walk(client, ada, "/me/blocks") == [o.id for o in reversed(others)]
    await client.delete(f"{API}/users/{others[1].id}/block", headers=ada.headers)
    assert await walk(client, ada, "/me/blocks") == [others[2].id, others[0].id]
    assert await walk(client, others[0], "/me/blocks") == []


async def test_follow_racing_a_block_never_leaves_both(client: Client, db: Database):
    for _ in range(5):
        ada, bob = await register(client), await register(client)
        await asyncio.gather(client.post(f"{API}/users/{ada.id}/follow", headers=bob.headers),
                             client.post(f"{API}/users/{bob.id}/block", headers=ada.headers))
        assert await db.fetch_value(
            "SELECT count(*) FROM follows WHERE follower_id = %(b)s AND followed_id = %(a)s",
            {"a": ada.id, "b": bob.id}) == 0
        assert await counts(db, ada.id) == (0, 0)


async def test_crossed_follows_and_unfollows_never_deadlock(client: Client, db: Database):
    ada, bob = await register(client), await register(client)
    for _ in range(5):
        await follow(client, ada, bob.id, expect=201)
        await follow(client, bob, ada.id, expect=201)
        responses = await asyncio.gather(
            client.delete(f"{API}/users/{bob.id}/follow", headers=ada.headers),
            client.delete(f"{API}/users/{ada.id}/follow", headers=bob.headers),
            client.post(f"{API}/users/{bob.id}/follow", headers=ada.headers),
            client.delete(f"{API}/users/{bob.id}/follow", headers=ada.headers))
        assert all(r.status in (200, 201, 204) for r in responses), [r.status for r in responses]
        await unfollow(client, ada, bob.id)
        assert await counts(db, ada.id) == (0, 0) and await counts(db, bob.id) == (0, 0)


async def outbox_rows(db: Database) -> list[dict[str, Any]]:
    """Every delivery written but the welcome emails (one per account, blocks or not)."""
    return await db.fetch_all("SELECT kind, payload FROM outbox "
                              "WHERE payload->>'email_type' IS DISTINCT FROM 'welcome'")


async def test_no_notification_passes_a_block_in_either_direction(
        make_client: ClientFactory, push_service: PushService, db: Database):
    """The application stands (it is the seeker's own record), but neither side is told."""
    client = await make_client(push_endpoint_allowlist=(push_service.origin,),
                               vapid_private_key=new_vapid_key())
    for blocker_is_employer in (True, False):
        employer = await register(client, role="employer")
        seeker = await register(client)
        for account in (employer, seeker):
            await subscribe(client, push_service, account)
        blocker, blocked = (employer, seeker) if blocker_is_employer else (seeker, employer)
        await block(client, blocker, blocked.id)
        job = await post_job(client, employer)
        applied = await client.post(f"{API}/jobs/{job['id']}/applications",
                                    json={"cover_letter": "Please"}, headers=seeker.headers)
        assert applied.status == 201, await applied.text()
        application = await applied.json()
        reviewed = await client.patch(f"{API}/applications/{application['id']}",
                                      json={"status": "reviewed"}, headers=employer.headers)
        assert reviewed.status == 200, await reviewed.text()
        for account in (employer, seeker):
            page = await (await client.get(f"{API}/notifications",
                                           headers=account.headers)).json()
            assert page["items"] == [], blocker_is_employer
        assert await outbox_rows(db) == [], blocker_is_employer
