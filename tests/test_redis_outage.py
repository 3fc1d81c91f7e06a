"""Redis that stalls and comes back: what it missed lands once it is back, limits hold meanwhile.

Each test freezes its own throwaway Redis with SIGSTOP (connections hang, data is kept) at the
moment of a write, then lets it run again. Two apps sharing one Redis and key prefix stand for
two worker processes: the one that made the write during the stall and another that had the
old copy cached and never noticed the stall.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from cache.client import Cache
from cache.counters import get_unread_counts
from cache.tokens import fill_cached_token, get_cached_token
from service.config import RateLimit
from sql.db import Database
from tests.conftest import API, Account, ClientFactory, register
from tests.helpers import create_post, follow, wait_until, walk
from tests.servers import ThrowawayRedis

Client = TestClient[Any, Any]

# "Within a few seconds of Redis returning": each fix must land well inside this.
RECOVERY_SECONDS = 3.0


@pytest.fixture
def stalling_redis() -> Iterator[ThrowawayRedis]:
    with ThrowawayRedis() as server:
        yield server


async def two_processes(make_client: ClientFactory, redis: ThrowawayRedis) -> tuple[Client, Client]:
    return await make_client(redis_url=redis.url), await make_client(redis_url=redis.url)


async def me_status(client: Client, account: Account) -> int:
    response = await client.get(f"{API}/me", headers=account.headers)
    return response.status


async def unread_notifications(client: Client, account: Account) -> int:
    response = await client.get(f"{API}/notifications/unread_count", headers=account.headers)
    assert response.status == 200, await response.text()
    count: int = (await response.json())["count"]
    return count


async def wait_for_fanout(db: Database, post_id: int, condition: str) -> None:
    """Wait until the post's feed fan-out row meets ``condition`` (SQL on ``outbox``)."""
    async def met() -> bool:
        return bool(await db.fetch_value(
            f"SELECT count(*) FROM outbox WHERE kind = 'fanout' AND {condition} "
            "AND (payload -> 'args' ->> 'post_id')::bigint = %(id)s", {"id": post_id}))

    await wait_until(met, f"post {post_id}'s fan-out row with {condition}")


async def test_a_token_logged_out_during_a_stall_is_refused_once_redis_is_back(
        make_client: ClientFactory, stalling_redis: ThrowawayRedis):
    first, second = await two_processes(make_client, stalling_redis)
    account = await register(first)
    assert await me_status(second, account) == 200  # the token is now cached in Redis
    stalling_redis.pause()
    response = await first.post(f"{API}/auth/logout", headers=account.headers)
    assert response.status == 204
    stalling_redis.resume()

    async def refused() -> bool:
        return await me_status(second, account) == 401

    await wait_until(refused, "the logged-out token refused", RECOVERY_SECONDS)
    for _ in range(5):
        assert await me_status(second, account) == 401
        assert await me_status(first, account) == 401


async def test_a_follow_during_a_stall_is_counted_once_redis_is_back(
        make_client: ClientFactory, stalling_redis: ThrowawayRedis):
    first, second = await two_processes(make_client, stalling_redis)
    user, fan = await register(first), await register(first)
    assert await unread_notifications(second, user) == 0  # cached in Redis
    stalling_redis.pause()
    await follow(first, fan, user.id)
    stalling_redis.resume()

    async def exact() -> bool:
        return await unread_notifications(second, user) == 1

    await wait_until(exact, "unread_count counting the follow made during the stall",
                     RECOVERY_SECONDS)
    for client in (first, second, first, second):
        assert await unread_notifications(client, user) == 1


async def test_a_post_made_during_a_stall_reaches_followers_feeds_once_redis_is_back(
        make_client: ClientFactory, stalling_redis: ThrowawayRedis, db: Database):
    first, second = await two_processes(make_client, stalling_redis)
    author, reader = await register(first), await register(first)
    await follow(first, reader, author.id)
    before = await create_post(first, author, "before the stall")
    await wait_for_fanout(db, before["id"], "status = 'sent'")
    assert await walk(second, reader, "/feed") == [before["id"]]  # the feed is in Redis now
    stalling_redis.pause()
    during = await create_post(first, author, "during the stall")
    await wait_for_fanout(db, during["id"], "attempts > 0 AND status <> 'sending'")
    stalling_redis.resume()

    async def complete() -> bool:
        return await walk(second, reader, "/feed") == [during["id"], before["id"]]

    await wait_until(complete, "the follower's feed showing the post made during the stall",
                     RECOVERY_SECONDS)
    assert await walk(first, author, "/feed") == [during["id"], before["id"]]
    assert await walk(second, reader, "/feed") == [during["id"], before["id"]]


async def test_a_fill_that_read_before_an_epoch_bump_is_refused(redis_url: str, redis_prefix: str):
    """A reader that missed, read PostgreSQL, and fills only after another process bumped the
    epoch for an invalidation Redis missed must not store what it read."""
    reader, writer = Cache(redis_url, redis_prefix), Cache(redis_url, redis_prefix)
    try:
        lookup = await get_cached_token(reader, "ab" * 32)
        assert lookup.principal is None and lookup.epoch is not None
        old_counts = {"notifications": 0, "messages": 0}

        async def load_then_bump() -> dict[str, int]:
            writer.missed_invalidation()  # e.g. a follow's count invalidation was lost
            assert await writer.settle_debt()
            return old_counts

        assert await get_unread_counts(reader, 7, load_then_bump) == old_counts
        writer.missed_invalidation()  # e.g. a logout's tombstone was lost
        assert await writer.settle_debt()
        await fill_cached_token(reader, "ab" * 32, lookup.epoch,
                                {"user_id": 7, "role": "job_seeker", "is_admin": False})

        assert (await get_cached_token(reader, "ab" * 32)).principal is None

        async def fresh() -> dict[str, int]:
            return {"notifications": 1, "messages": 0}

        assert await get_unread_counts(reader, 7, fresh) == {"notifications": 1, "messages": 0}
    finally:
        await reader.close()
        await writer.close()


async def test_rate_limits_hold_per_process_while_redis_stalls(
        make_client: ClientFactory, stalling_redis: ThrowawayRedis):
    # 10 per window over 2 processes: each process lets 5 through while Redis is away.
    client = await make_client(redis_url=stalling_redis.url, web_concurrency=2,
                               auth_rate_limit=RateLimit(10, 60))
    stalling_redis.pause()
    reset = f"{API}/auth/password_reset"
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    statuses = [(await client.post(reset, json={"email": "victim@example.com"},
                                   headers=attacker)).status for _ in range(8)]
    assert statuses == [202] * 5 + [429] * 3
    someone_else = await client.post(reset, json={"email": "other@example.com"},
                                     headers={"X-Forwarded-For": "198.51.100.2"})
    assert someone_else.status == 202
    stalling_redis.resume()
