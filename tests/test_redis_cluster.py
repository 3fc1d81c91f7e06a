"""The service on a Redis Cluster: three masters on loopback, started for this module.

The cache, feed, counter, token and rate-limit tests also run whole against a cluster in
``.ci/run`` (``TEST_REDIS_CLUSTER=1``); this module proves what only a cluster shows: the
app really spreads its keys over several masters, each script's keys share one slot, and a
prefix delete reaches every master.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.cluster import key_slot

from cache.keys import Keys
from cache.purge import delete_prefixed_keys
from service.app import create_app
from service.config import Settings
from tests.conftest import API, register
from tests.servers import ThrowawayRedisCluster, redis_client


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayRedisCluster]:
    with ThrowawayRedisCluster() as server:
        yield server


def keys_per_master(cluster: ThrowawayRedisCluster, prefix: str) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for port in cluster.ports:
        node = redis.Redis(port=port, decode_responses=True)
        try:
            found[port] = list(node.scan_iter(f"{prefix}*", count=1000))
        finally:
            node.close()
    return found


@pytest.fixture
async def cluster_client(aiohttp_client: Any, settings: Settings,
                         cluster: ThrowawayRedisCluster) -> Any:
    prefix = f"hireme-cluster:{uuid.uuid4().hex[:8]}:"
    app = create_app(dataclasses.replace(settings, redis_url=cluster.url, redis_prefix=prefix))
    return await aiohttp_client(app), prefix


async def test_a_users_reads_are_cached_across_masters(cluster_client: Any,
                                                       cluster: ThrowawayRedisCluster):
    client, prefix = cluster_client
    users = [await register(client) for _ in range(12)]
    for user in users:
        for _ in range(2):  # the second answer comes from the cache
            answer = await client.get(f"{API}/me", headers=user.headers)
            assert answer.status == 200
            assert (await answer.json())["unread_notifications"] == 0

    placed = keys_per_master(cluster, prefix)
    assert sum(1 for keys in placed.values() if keys) >= 2, placed
    keys = Keys(prefix)
    for user in users:  # what one fill script touches lives in one slot
        unread = keys.unread("notifications", user.id)
        feed = keys.feed(user.id)
        assert key_slot(unread.value.encode()) == key_slot(unread.generation.encode())
        assert len({key_slot(k.encode()) for k in (feed.value, feed.generation,
                                                   keys.feed_epoch(user.id))}) == 1


async def test_logout_revokes_on_a_cluster(cluster_client: Any):
    client, _ = cluster_client
    user = await register(client)
    assert (await client.get(f"{API}/me", headers=user.headers)).status == 200
    assert (await client.post(f"{API}/auth/logout", headers=user.headers)).status == 204
    assert (await client.get(f"{API}/me", headers=user.headers)).status == 401


async def test_prefix_delete_reaches_every_master(cluster: ThrowawayRedisCluster):
    prefix, other = f"purge-{uuid.uuid4().hex[:8]}:", f"keep-{uuid.uuid4().hex[:8]}:"
    client = redis_client(cluster.url)
    try:
        for i in range(60):
            client.set(f"{prefix}{i}", i)
        client.set(f"{other}x", 1)
        assert sum(1 for keys in keys_per_master(cluster, prefix).values() if keys) == 3

        assert await delete_prefixed_keys(cluster.url, prefix) == 60

        assert keys_per_master(cluster, prefix) == {port: [] for port in cluster.ports}
        assert client.get(f"{other}x") == b"1"
    finally:
        client.close()
