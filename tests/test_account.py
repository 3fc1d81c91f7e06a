"""The caller's own cached answers: GET /me and the unread counts, warm and after writes.

A warm read is one Redis round trip (the token and the values together) and no PostgreSQL
query: proved with PostgreSQL stopped, and with a TCP proxy in front of Redis that counts the
batches of commands the app sends.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import closing
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from cache.keys import Keys
from service.tokens import user_hint
from sql.migrate import apply_migrations
from tests.conftest import API, Account, ClientFactory, register
from tests.counting_proxy import CountingProxy
from tests.servers import ThrowawayPostgres, create_database, redis_client

WARM_READS = ["/me", "/notifications/unread_count", "/messages/unread_count"]


def test_tokens_carry_their_user_as_a_hint(user: Account) -> None:
    assert user_hint(user.token) == user.id
    assert user_hint("abc") is None and user_hint("１.x") is None and user_hint(".x") is None


@pytest.mark.parametrize("path", WARM_READS)
async def test_a_warm_read_is_one_redis_round_trip(make_client: ClientFactory,
                                                   proxy: CountingProxy, path: str) -> None:
    client = await make_client(redis_url=proxy.url)
    user = await register(client)
    first = await client.get(f"{API}{path}", headers=user.headers)  # fills the cache
    await asyncio.sleep(0.3)  # let the registration's deliveries settle their Redis calls
    before = proxy.writes
    again = await client.get(f"{API}{path}", headers=user.headers)
    assert again.status == 200 and await again.json() == await first.json()
    assert proxy.writes - before == 1


async def test_warm_reads_need_no_postgresql(make_client: ClientFactory) -> None:
    with ThrowawayPostgres() as postgres:
        url = create_database(postgres.url, "hireme")
        await apply_migrations(url)
        client = await make_client(database_url=url, db_acquire_timeout=1.0,
                                   delivery_sweep_seconds=600)
        user = await register(client)
        answers = {path: await (await client.get(f"{API}{path}", headers=user.headers)).json()
                   for path in WARM_READS}
        postgres.stop()
        for path in WARM_READS:
            warm = await client.get(f"{API}{path}", headers=user.headers)
            assert warm.status == 200, path
            assert await warm.json() == answers[path]


async def me(client: TestClient[Any, Any], account: Account) -> dict[str, Any]:
    answer = await client.get(f"{API}/me", headers=account.headers)
    assert answer.status == 200
    body: dict[str, Any] = await answer.json()
    return body


async def test_me_is_exact_after_each_write_that_changes_it(client: TestClient[Any, Any],
                                                            db: Any) -> None:
    ada, bob = await register(client), await register(client)
    await me(client, ada), await me(client, bob)  # both cached
    await client.patch(f"{API}/me", json={"headline": "Compilers"}, headers=ada.headers)
    assert (await me(client, ada))["user"]["headline"] == "Compilers"
    await client.post(f"{API}/users/{bob.id}/follow", headers=ada.headers)
    assert (await me(client, ada))["user"]["following_count"] == 1
    bob_now = await me(client, bob)
    assert bob_now["user"]["followers_count"] == 1 and bob_now["unread_notifications"] == 1
    await client.delete(f"{API}/users/{bob.id}/follow", headers=ada.headers)
    assert (await me(client, bob))["user"]["followers_count"] == 0
    await client.post(f"{API}/users/{ada.id}/follow", headers=bob.headers)
    await client.post(f"{API}/users/{bob.id}/block", headers=ada.headers)
    assert (await me(client, ada))["user"]["followers_count"] == 0
    assert (await me(client, bob))["user"]["following_count"] == 0


async def test_a_token_whose_hint_names_someone_else_reads_its_own_user(
        client: TestClient[Any, Any]) -> None:
    """The hint only routes the read: a token rewritten to name another user is unknown."""
    ada, bob = await register(client), await register(client)
    await me(client, bob)  # bob's values are cached
    forged = f"{bob.id}.{ada.token.partition('.')[2]}"
    answer = await client.get(f"{API}/me", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status == 401
    assert (await me(client, ada))["user"]["id"] == ada.id


async def test_a_cached_account_of_another_shape_is_read_again(
        client: TestClient[Any, Any], redis_url: str, redis_prefix: str) -> None:
    """A warm /me sends the cached account's JSON as stored, so a value filled under another
    shape of the account (by the other side of a rolling deploy) must be a miss, not sent."""
    ada = await register(client)
    first = await me(client, ada)
    name = Keys(redis_prefix).own_user(ada.id).value
    with closing(redis_client(redis_url, decode_responses=True)) as store:

        def stored_parts() -> list[str]:  # epoch, generation, shape, JSON
            value = store.get(name)
            assert isinstance(value, str)
            return value.split("/", 3)

        epoch, generation, shape, _ = stored_parts()
        older = json.dumps({"id": ada.id, "first_name": "Stale"})
        store.set(name, f"{epoch}/{generation}/0badf00d/{older}")
        assert await me(client, ada) == first
        assert stored_parts()[2] == shape  # refilled in the current shape
