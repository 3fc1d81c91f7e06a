"""The home feed: fan-out, read-time merge, rebuilds, Redis outages, query counts, EXPLAIN.

Correctness is checked against a plain PostgreSQL reference query (own posts and those of
everyone followed, newest first) after random sequences of follows, unfollows, posts,
deletions and blocks, with Redis up, stopped, and flushed mid-sequence.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg2
import pytest
import redis
from aiohttp.test_utils import TestClient

from cache.feeds import COMPLETE, add_to_feeds, fill_feed, read_feed
from cache.keys import Keys
from service.api.posting import remove_job_posts_txn
from service.appkeys import STORES
from service.config import Settings
from sql import feeds, posts, social
from sql.db import Database
from sql.migrate import apply_migrations
from tasks.work import unit_of_work
from tests import servers
from tests.conftest import API, Account, ClientFactory, register
from tests.counting_proxy import CountingProxy
from tests.explain import plan_nodes, scans
from tests.helpers import (
    block,
    create_post,
    delete_post,
    follow,
    insert_job,
    unfollow,
    wait_until,
    walk,
)
from tests.servers import ThrowawayRedis, create_database, drop_database

Client = TestClient[Any, Any]

REFERENCE = """
    SELECT p.id FROM posts p
    WHERE p.user_id = %(me)s
       OR EXISTS (SELECT 1 FROM follows f
                  WHERE f.follower_id = %(me)s AND f.followed_id = p.user_id)
    ORDER BY p.created_at DESC, p.id DESC
"""


async def reference(db: Database, account: Account) -> list[int]:
    return [row["id"] for row in await db.fetch_all(REFERENCE, {"me": account.id})]


async def feed(client: Client, account: Account, limit: int = 20) -> list[int]:
    return await walk(client, account, "/feed", limit=limit)


async def settle(db: Database, timeout: float = 10) -> None:
    """Wait until every feed fan-out row that is due has been tried (none dead).

    A fan-out that Redis could not take waits for its retry, with backoff; meanwhile feeds are
    read from PostgreSQL (Redis down) or rebuilt there (a restarted, empty Redis), so the
    reference check holds without waiting for it.
    """
    async def tried() -> bool:
        return not await db.fetch_value(
            "SELECT count(*) FROM outbox WHERE kind = 'fanout' AND (status = 'sending' "
            "OR (status = 'pending' AND next_attempt_at <= now()))")

    await wait_until(tried, "every due fan-out tried", timeout, interval=0.02)
    assert await db.fetch_value("SELECT count(*) FROM outbox WHERE status = 'dead'") == 0


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = servers.redis_client(redis_url, decode_responses=True)
    yield client
    client.close()


def cached_ids(client: redis.Redis, prefix: str, user_id: int) -> list[int]:
    members = client.zrevrange(Keys(prefix).feed(user_id).value, 0, -1)
    return [int(member) for member in members if member != COMPLETE]


def flush_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


# -- behaviour ------------------------------------------------------------------------------

async def test_feed_is_own_and_followed_posts_newest_first(client: Client, db: Database):
    ada, bob, cat = await register(client), await register(client), await register(client)
    assert await feed(client, ada) == []
    await follow(client, ada, bob.id)
    mine = [(await create_post(client, author, f"by {author.id}"))["id"]
            for author in (ada, bob, cat, bob, ada)]
    expected = [mine[4], mine[3], mine[1], mine[0]]
    assert await feed(client, ada, limit=1) == expected
    assert await feed(client, ada, limit=3) == expected
    assert await feed(client, ada) == await reference(db, ada)
    page = await (await client.get(f"{API}/feed", headers=ada.headers)).json()
    assert page["items"][0]["author"]["id"] == ada.id
    assert page["items"][1]["author"]["followed_by_me"] is True


async def test_feed_errors(client: Client, user: Account):
    assert (await client.get(f"{API}/feed")).status == 401
    for params in ({"limit": "0"}, {"limit": "101"}, {"cursor": "garbage"}, {"cursor": "WzFd"}):
        response = await client.get(f"{API}/feed", params=params, headers=user.headers)
        assert response.status == 400, params


async def test_author_sees_own_post_at_once_and_followers_soon(
        client: Client, db: Database, redis_client: redis.Redis, redis_prefix: str):
    author, fans = await register(client), [await register(client) for _ in range(3)]
    for fan in fans:
        await follow(client, fan, author.id)
        assert await feed(client, fan) == []  # the fan's feed is now cached, and empty
    assert await feed(client, author) == []
    post = await create_post(client, author)
    assert await feed(client, author) == [post["id"]]

    async def everyone_has_it() -> bool:
        return all([[post["id"]] == await feed(client, fan) for fan in fans])

    assert await wait_until(everyone_has_it, timeout=5, interval=0.02) < 2
    assert all(cached_ids(redis_client, redis_prefix, fan.id) == [post["id"]] for fan in fans)


async def test_a_warm_feed_page_is_one_redis_round_trip(
        make_client: ClientFactory, db: Database, proxy: CountingProxy):
    client = await make_client(redis_url=proxy.url)
    author, fan = await register(client), await register(client)
    await follow(client, fan, author.id)
    posts_made = [(await create_post(client, author, f"post {n}"))["id"] for n in range(3)]
    await settle(db)
    assert await feed(client, fan) == posts_made[::-1]  # rebuilt and cached
    await asyncio.sleep(0.3)  # the registrations' and posts' deliveries settle their Redis calls
    first = await (await client.get(f"{API}/feed?limit=1", headers=fan.headers)).json()
    for path in ("/feed", f"/feed?limit=1&cursor={first['next_cursor']}"):
        before = proxy.writes
        answer = await client.get(f"{API}{path}", headers=fan.headers)
        assert answer.status == 200 and (await answer.json())["items"], path
        assert proxy.writes - before == 1, path  # the token and the feed together


async def test_only_recently_seen_followers_get_fanout(
        client: Client, db: Database, redis_client: redis.Redis, redis_prefix: str):
    author, active, away = await register(client), await register(client), await register(client)
    for fan in (active, away):
        await follow(client, fan, author.id)
        await feed(client, fan)
    await db.execute("UPDATE users SET last_seen_at = now() - interval '31 days' "
                     "WHERE id = %(id)s", {"id": away.id})
    post = await create_post(client, author)
    await settle(db)
    assert cached_ids(redis_client, redis_prefix, active.id) == [post["id"]]
    assert cached_ids(redis_client, redis_prefix, away.id) == []


async def test_fanout_runs_in_batches_to_every_follower(client: Client, db: Database):
    author, fan = await register(client), await register(client)
    await follow(client, fan, author.id)  # the oldest follow: reached by the last batch
    await feed(client, fan)
    await db.execute("""
        WITH fans AS (
            INSERT INTO users (email, password_hash, first_name, last_name, role)
            SELECT 'fan' || g || '@example.com', 'x', 'F', 'An', 'job_seeker'
            FROM generate_series(1, 1100) g RETURNING id)
        INSERT INTO follows (follower_id, followed_id, created_at)
        SELECT id, %(author)s, now() + interval '1 minute' FROM fans""", {"author": author.id})
    await db.execute("UPDATE users SET followers_count = 1101 WHERE id = %(id)s",
                     {"id": author.id})
    post = await create_post(client, author)
    await settle(db)
    assert await feed(client, fan) == [post["id"]]


async def test_follow_brings_older_posts_and_unfollow_removes_them(client: Client,
                                                                   db: Database):
    ada, bob = await register(client), await register(client)
    old = [(await create_post(client, bob, f"old {n}"))["id"] for n in range(3)]
    own = (await create_post(client, ada))["id"]
    assert await feed(client, ada) == [own]
    await follow(client, ada, bob.id)
    assert await feed(client, ada) == [own, *reversed(old)]
    await unfollow(client, ada, bob.id)
    assert await feed(client, ada) == [own]


async def test_block_hides_each_from_the_other(client: Client, db: Database):
    ada, bob = await register(client), await register(client)
    await follow(client, ada, bob.id)
    await follow(client, bob, ada.id)
    by_ada, by_bob = (await create_post(client, ada))["id"], (await create_post(client, bob))["id"]
    await settle(db)
    assert await feed(client, ada) == [by_bob, by_ada]
    await block(client, bob, ada.id)
    assert await feed(client, ada) == [by_ada]
    assert await feed(client, bob) == [by_bob]


async def test_a_deleted_post_leaves_every_feed(client: Client, db: Database,
                                                redis_client: redis.Redis, redis_prefix: str):
    author, fans = await register(client), [await register(client) for _ in range(2)]
    for fan in fans:
        await follow(client, fan, author.id)
    kept = (await create_post(client, author))["id"]
    gone = (await create_post(client, author))["id"]
    await settle(db)
    assert await feed(client, fans[0]) == [gone, kept]
    await delete_post(client, author, gone)
    for account in (*fans, author):
        assert await feed(client, account) == [kept]
    assert cached_ids(redis_client, redis_prefix, fans[0].id) == [kept]  # dropped on read


async def test_posts_of_a_deleted_job_leave_feeds_with_their_notifications(
        client: Client, db: Database):
    employer, fan = await register(client, role="employer"), await register(client)
    await follow(client, fan, employer.id)
    job_id = await insert_job(db, employer)
    post = await create_post(client, employer, "Hiring", post_type="job", related_job_id=job_id)
    await settle(db)
    await client.post(f"{API}/posts/{post['id']}/like", headers=fan.headers)
    assert await feed(client, fan) == [post["id"]]
    async with unit_of_work(client.server.app[STORES], "delete_job") as work:
        assert await remove_job_posts_txn(work, job_id) == [post["id"]]
        await work.cur.execute("DELETE FROM jobs WHERE id = %(id)s", {"id": job_id})
    assert await feed(client, fan) == []
    unread = await client.get(f"{API}/notifications/unread_count", headers=employer.headers)
    assert (await unread.json())["count"] == 1  # the follow; the like went with the post
    assert await db.fetch_value("SELECT count(*) FROM notifications "
                                "WHERE notification_type = 'post_like'") == 0


async def test_liked_by_me_is_never_shared_between_readers(client: Client, db: Database):
    author, ada, bob = await register(client), await register(client), await register(client)
    for fan in (ada, bob):
        await follow(client, fan, author.id)
    post = await create_post(client, author)
    await settle(db)
    await client.post(f"{API}/posts/{post['id']}/like", headers=ada.headers)
    for fan, liked in ((ada, True), (bob, False), (ada, True)):
        page = await (await client.get(f"{API}/feed", headers=fan.headers)).json()
        assert page["items"][0]["liked_by_me"] is liked
        assert page["items"][0]["likes_count"] == 1


async def test_celebrities_are_merged_at_read_time(make_client: ClientFactory, db: Database,
                                                   redis_client: redis.Redis,
                                                   redis_prefix: str):
    client = await make_client(feed_fanout_max_followers=2)
    star, fans = await register(client), [await register(client) for _ in range(3)]
    for fan in fans:
        await follow(client, fan, star.id)
        await feed(client, fan)
    post = (await create_post(client, star))["id"]
    await settle(db)
    for fan in fans:
        assert cached_ids(redis_client, redis_prefix, fan.id) == []  # not fanned out
        assert await feed(client, fan) == [post]  # merged when read
    await unfollow(client, fans[2], star.id)  # back to 2: fanned out from now on
    await settle(db)
    assert cached_ids(redis_client, redis_prefix, fans[0].id) == [post]
    second = (await create_post(client, star))["id"]
    await settle(db)
    for fan in fans[:2]:
        assert cached_ids(redis_client, redis_prefix, fan.id) == [second, post]
        assert await feed(client, fan, limit=1) == [second, post]
    assert await feed(client, fans[2]) == []


async def test_pages_beyond_the_cached_ids_come_from_postgres(client: Client, db: Database,
                                                              redis_client: redis.Redis,
                                                              redis_prefix: str):
    ada, bob = await register(client), await register(client)
    await follow(client, ada, bob.id)
    await db.execute("""
        INSERT INTO posts (user_id, body, created_at)
        SELECT CASE WHEN g %% 3 = 0 THEN %(ada)s ELSE %(bob)s END, 'post ' || g,
               now() - g * interval '1 second'
        FROM generate_series(1, 950) g""", {"ada": ada.id, "bob": bob.id})
    expected = await reference(db, ada)
    assert await feed(client, ada, limit=100) == expected
    assert len(cached_ids(redis_client, redis_prefix, ada.id)) == 800
    assert await feed(client, ada, limit=37) == expected  # from the cached feed this time


async def test_a_flushed_feed_is_rebuilt(client: Client, db: Database,
                                         redis_client: redis.Redis, redis_prefix: str):
    ada, bob = await register(client), await register(client)
    await follow(client, ada, bob.id)
    ids = [(await create_post(client, author))["id"] for author in (bob, ada, bob)]
    await settle(db)
    flush_prefix(redis_client, redis_prefix)
    assert await feed(client, ada, limit=2) == list(reversed(ids))
    assert cached_ids(redis_client, redis_prefix, ada.id) == list(reversed(ids))


async def test_a_stale_cached_entry_is_never_shown(client: Client, db: Database,
                                                   redis_client: redis.Redis,
                                                   redis_prefix: str):
    """An unfollow whose Redis update was lost leaves an entry behind: reads re-check it."""
    ada, bob = await register(client), await register(client)
    own, theirs = (await create_post(client, ada))["id"], (await create_post(client, bob))["id"]
    assert await feed(client, ada) == [own]
    created_us = int(redis_client.zscore(Keys(redis_prefix).feed(ada.id).value, f"{own:019d}"))
    redis_client.zadd(Keys(redis_prefix).feed(ada.id).value, {f"{theirs:019d}": created_us + 1})
    assert await feed(client, ada) == [own]


async def test_a_rebuild_racing_a_write_does_not_store_its_older_result(client: Client):
    """The rebuild read PostgreSQL before a fan-out touched the feed: its fill is refused."""
    cache = client.server.app[STORES].cache
    missed = await read_feed(cache, 42, None, 10)
    assert missed is not None and missed.missing
    await add_to_feeds(cache, [42], [(1_000_000, 7)])  # a fan-out while the rebuild runs
    await fill_feed(cache, 42, missed.generation, [], complete=True)
    again = await read_feed(cache, 42, None, 10)
    assert again is not None and again.missing  # rebuilt from PostgreSQL on the next read
    await fill_feed(cache, 42, again.generation, [(1_000_000, 7)], complete=True)
    stored = await read_feed(cache, 42, None, 10)
    assert stored is not None and (stored.entries, stored.complete) == ([(1_000_000, 7)], True)


# -- random sequences against the reference -------------------------------------------------

OPERATIONS = ["follow"] * 4 + ["post"] * 4 + ["unfollow", "unfollow", "delete", "block",
                                              "unblock", "read", "read"]


async def random_step(client: Client, rng: random.Random, people: list[Account],
                      authored: dict[int, list[int]], operations: list[str]) -> None:
    actor, other = rng.sample(people, 2)
    operation = rng.choice(operations)
    if operation == "follow":
        response = await client.post(f"{API}/users/{other.id}/follow", headers=actor.headers)
        assert response.status in (200, 201, 403)
    elif operation == "unfollow":
        await unfollow(client, actor, other.id)
    elif operation == "post":
        authored[actor.id].append((await create_post(client, actor))["id"])
    elif operation == "delete" and authored[actor.id]:
        post_id = authored[actor.id].pop(rng.randrange(len(authored[actor.id])))
        await delete_post(client, actor, post_id)
    elif operation == "block":
        response = await client.post(f"{API}/users/{other.id}/block", headers=actor.headers)
        assert response.status in (200, 201)
    elif operation == "unblock":
        await client.delete(f"{API}/users/{other.id}/block", headers=actor.headers)
    elif operation == "read":
        await feed(client, actor, limit=rng.randint(1, 5))


async def check_feeds(client: Client, db: Database, rng: random.Random,
                      people: list[Account]) -> None:
    await settle(db)
    assert await db.fetch_value("""
        SELECT count(*) FROM follows f JOIN blocks b
          ON (b.blocker_id, b.blocked_id) IN ((f.follower_id, f.followed_id),
                                              (f.followed_id, f.follower_id))""") == 0
    for account in people:
        assert await feed(client, account, limit=rng.randint(1, 7)) == \
            await reference(db, account), f"feed of {account.id}"


async def run_sequences(client: Client, db: Database, *, steps: int = 40,
                        at_step: Callable[[int], None] | None = None,
                        operations: list[str] = OPERATIONS) -> None:
    for seed in (1, 2, 3):
        rng = random.Random(seed)
        people = [await register(client) for _ in range(6)]
        authored: dict[int, list[int]] = {account.id: [] for account in people}
        for step in range(steps):
            if at_step is not None:
                at_step(step)
            await random_step(client, rng, people, authored, operations)
            if step % 10 == 9:
                await check_feeds(client, db, rng, people)


async def test_random_sequences_with_redis_up(client: Client, db: Database):
    await run_sequences(client, db)


async def test_random_sequences_with_celebrities(make_client: ClientFactory, db: Database):
    # More unfollows and blocks: authors often fall back to the limit, and back to fan-out.
    await run_sequences(await make_client(feed_fanout_max_followers=1), db,
                        operations=[*OPERATIONS, "unfollow", "unfollow", "unfollow", "block"])


async def test_random_sequences_with_redis_flushed_midway(
        client: Client, db: Database, redis_client: redis.Redis, redis_prefix: str):
    def flush(step: int) -> None:
        if step in (7, 18, 26):
            flush_prefix(redis_client, redis_prefix)

    await run_sequences(client, db, at_step=flush)


async def test_random_sequences_with_redis_stopped_and_restarted(make_client: ClientFactory,
                                                                 db: Database):
    with ThrowawayRedis() as server:
        client = await make_client(redis_url=server.url)

        def outage(step: int) -> None:
            if step == 8:
                server.stop()
            elif step == 28:
                server.start()

        await run_sequences(client, db, at_step=outage)


# -- queries per page -----------------------------------------------------------------------

class CommitCounter:
    """Counts the statements an app runs, as PostgreSQL's own ``xact_commit`` for its database.

    The service's reads are autocommit statements, so each one is exactly one committed
    transaction in ``pg_stat_database`` — a measure taken by the server, with nothing of ours
    mocked. A backend publishes its counts lazily (PostgreSQL 15 waits up to 10 s when idle)
    but always when it exits, so each measurement runs in an app of its own, is read once
    the app's connections are gone (polled in ``pg_stat_activity``, with
    ``pg_stat_clear_snapshot()`` so every poll sees fresh figures), and is taken net of an
    app that starts and stops doing nothing (its delivery sweeper's first pass). Autovacuum
    can only add commits, so the smallest of two runs is kept.
    """

    def __init__(self, admin_url: str, database_url: str) -> None:
        self.conn = psycopg2.connect(admin_url)
        self.conn.autocommit = True
        self.name = psycopg2.extensions.parse_dsn(database_url)["dbname"]

    def _value(self, query: str) -> int:
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute(query, (self.name,))
            return int(cur.fetchone()[0])

    async def commits(self) -> int:
        async with asyncio.timeout(15):
            while self._value("SELECT count(*) FROM pg_stat_activity "
                              "WHERE datname = %s AND backend_type = 'client backend'"):
                await asyncio.sleep(0.02)
        return self._value("SELECT xact_commit FROM pg_stat_database WHERE datname = %s")

    async def run(self, make_client: ClientFactory,
                  action: Callable[[Client], Awaitable[None]]) -> int:
        counts = []
        for _ in range(2):
            before = await self.commits()
            client = await make_client(delivery_sweep_seconds=3600)
            await asyncio.sleep(0.2)  # the sweeper's first pass, in every run alike
            await action(client)
            await client.close()
            counts.append(await self.commits() - before)
        return min(counts)


def seed_lists(database_url: str, viewer: Account, n: int) -> int:
    """n authors, each following and followed by the viewer, each with a post; n posts of
    the viewer's, the first with n comments. The id of that commented post."""
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        tag = uuid.uuid4().hex[:8]
        cur.execute("""
            INSERT INTO users (email, password_hash, first_name, last_name, role)
            SELECT 'a' || g || '-' || %(tag)s || '@example.com', 'x', 'A', 'Uthor', 'job_seeker'
            FROM generate_series(1, %(n)s) g RETURNING id""", {"tag": tag, "n": n})
        authors = [row[0] for row in cur.fetchall()]
        cur.execute("""
            INSERT INTO follows (follower_id, followed_id)
            SELECT %(v)s, a FROM unnest(%(a)s::bigint[]) a
            UNION ALL SELECT a, %(v)s FROM unnest(%(a)s::bigint[]) a;
            INSERT INTO posts (user_id, body) SELECT a, 'theirs' FROM unnest(%(a)s::bigint[]) a;
            INSERT INTO posts (user_id, body) SELECT %(v)s, 'mine' FROM unnest(%(a)s::bigint[]) a;
            INSERT INTO post_comments (post_id, user_id, body)
            SELECT (SELECT min(id) FROM posts WHERE user_id = %(v)s), a, 'hi'
            FROM unnest(%(a)s::bigint[]) a;
            SELECT min(id) FROM posts WHERE user_id = %(v)s""", {"v": viewer.id, "a": authors})
        post_id = int(cur.fetchone()[0])
    conn.close()
    return post_id


def list_reader(viewer: Account, path: str, size: int) -> Callable[[Client], Awaitable[None]]:
    async def read(client: Client) -> None:
        response = await client.get(f"{API}{path}", params={"limit": "100"},
                                    headers=viewer.headers)
        assert response.status == 200
        assert len((await response.json())["items"]) >= size

    return read


async def queries_per_list(make_client: ClientFactory, counter: CommitCounter, baseline: int,
                           database_url: str, evict: Callable[[int], None],
                           n: int) -> dict[str, int]:
    setup = await make_client()
    viewer = await register(setup)
    post_id = seed_lists(database_url, viewer, n)
    paths = {"feed": "/feed", "user posts": f"/users/{viewer.id}/posts",
             "comments": f"/posts/{post_id}/comments",
             "followers": f"/users/{viewer.id}/followers",
             "following": f"/users/{viewer.id}/following"}
    await list_reader(viewer, "/feed", n)(setup)  # caches the token and builds the feed
    await setup.close()
    measured = {name: await counter.run(make_client, list_reader(viewer, path, n)) - baseline
                for name, path in paths.items()}

    async def cold_feed(client: Client) -> None:
        evict(viewer.id)
        await list_reader(viewer, "/feed", n)(client)

    measured["feed, rebuilt"] = await counter.run(make_client, cold_feed) - baseline
    return measured


async def test_a_page_costs_the_same_queries_for_1_and_100_items(
        make_client: ClientFactory, postgres_admin_url: str, settings: Settings,
        redis_client: redis.Redis, redis_prefix: str):
    def evict(user_id: int) -> None:
        redis_client.delete(Keys(redis_prefix).feed(user_id).value)

    counter = CommitCounter(postgres_admin_url, settings.database_url)
    try:
        baseline = await counter.run(make_client, lambda client: asyncio.sleep(0))
        measured = {n: await queries_per_list(make_client, counter, baseline,
                                              settings.database_url, evict, n)
                    for n in (1, 100)}
    finally:
        counter.conn.close()
    # A cached feed page is one query: posts, authors, likes and follows together.
    assert measured[1] == measured[100] == {
        "feed": 1, "user posts": 2, "comments": 2, "followers": 2, "following": 2,
        "feed, rebuilt": 2}, measured


# -- EXPLAIN on a realistic table -----------------------------------------------------------

# 20,000 users each following about 10 others, user 1 followed by 5,000; 200,000 posts over
# a month; 100,000 comments (10 on each of 10,000 posts); 50,000 likes; 20,000 blocks.
SEED = """
    INSERT INTO users (email, password_hash, first_name, last_name, role)
    SELECT 'u' || g || '@example.com', 'x', 'U', 'Ser', 'job_seeker'
    FROM generate_series(1, 20000) g;

    INSERT INTO follows (follower_id, followed_id, created_at)
    SELECT g, 1 + (g * 7 + k * 997) % 20000, now() - (g + k) * interval '1 minute'
    FROM generate_series(1, 20000) g, generate_series(1, 10) k
    WHERE 1 + (g * 7 + k * 997) % 20000 <> g
    UNION ALL
    SELECT g, 1, now() - g * interval '1 second' FROM generate_series(2, 5001) g
    ON CONFLICT DO NOTHING;

    UPDATE users u SET followers_count = c.n
    FROM (SELECT followed_id, count(*) AS n FROM follows GROUP BY followed_id) c
    WHERE u.id = c.followed_id;

    INSERT INTO posts (user_id, body, created_at)
    SELECT 1 + (g * 7919) % 20000, 'post ' || g, now() - g * interval '13 seconds'
    FROM generate_series(1, 200000) g;

    INSERT INTO post_comments (post_id, user_id, body, created_at)
    SELECT 1 + g % 10000, 1 + (g * 13) % 20000, 'comment ' || g,
           now() - g * interval '1 second'
    FROM generate_series(1, 100000) g;

    INSERT INTO post_likes (post_id, user_id)
    SELECT 1 + g % 200000, 1 + (g * 13) % 20000 FROM generate_series(1, 50000) g
    ON CONFLICT DO NOTHING;

    INSERT INTO blocks (blocker_id, blocked_id)
    SELECT 1 + g % 20000, 1 + (g * 17 + 1) % 20000 FROM generate_series(1, 20000) g
    WHERE 1 + g % 20000 <> 1 + (g * 17 + 1) % 20000
    ON CONFLICT DO NOTHING;
"""
BIG_TABLES = {"posts", "follows", "post_comments", "post_likes", "blocks", "users"}


@pytest.fixture(scope="session")
def social_seeded(postgres_admin_url: str) -> Iterator[str]:
    name = f"hireme_explain_social_{uuid.uuid4().hex[:8]}"
    url = create_database(postgres_admin_url, name)
    try:
        asyncio.run(apply_migrations(url))
        conn = psycopg2.connect(url)
        conn.autocommit = True  # VACUUM runs outside a transaction (and not under `with conn`)
        with conn.cursor() as cur:
            cur.execute(f"BEGIN; {SEED}; COMMIT")
            cur.execute("VACUUM ANALYZE")
        conn.close()
        yield url
    finally:
        drop_database(postgres_admin_url, name)


def deep_cursor(url: str) -> tuple[Any, int]:
    """A realistic cursor: (created_at, id) of the 100th post of the viewer's feed."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(feeds.REBUILD_FEED, {"viewer_id": VIEWER, "limit": 100, **NO_CURSOR})
        post_id, created_at = cur.fetchall()[-1]
    conn.close()
    return created_at, post_id


NO_CURSOR = {"before_created_at": None, "before_id": None}
VIEWER = 123
CASES = {
    "feed rebuild": (feeds.REBUILD_FEED, {"viewer_id": VIEWER, "limit": 800, **NO_CURSOR},
                     "posts_user_created_idx"),
    "feed page from PostgreSQL": (feeds.FEED_PAGE, {"viewer_id": VIEWER, "limit": 21},
                                  "posts_user_created_idx"),
    "feed hydration and read-time merge": (
        feeds.feed_candidates_query(1000, later_page=False).text,
        {"viewer_id": VIEWER, "ids": list(range(5000, 5030)), "limit": 21}, "posts_pkey"),
    "one post (a like's answer)": (feeds.HYDRATED_POST, {"post_id": 5000, "viewer_id": VIEWER},
                                   "posts_pkey"),
    "fan-out entries": (feeds.AUTHOR_ENTRIES, {"author_id": 1, "post_id": None, "limit": 800},
                        "posts_user_created_idx"),
    "user posts": (posts.LIST_USER_POSTS, {"author_id": 7919 % 20000 + 1, "viewer_id": VIEWER,
                                           "limit": 21}, "posts_user_created_idx"),
    "comments": (posts.LIST_COMMENTS, {"post_id": 5, "viewer_id": VIEWER, "limit": 21,
                                       "after_created_at": None, "after_id": None},
                 "post_comments_post_created_idx"),
    "followers": (social.LIST_FOLLOWERS, {"owner_id": 1, "limit": 21},
                  "follows_followed_created_idx"),
    "following": (social.LIST_FOLLOWING, {"owner_id": VIEWER, "limit": 21},
                  "follows_follower_created_idx"),
    "blocks": (social.LIST_BLOCKED, {"owner_id": VIEWER, "limit": 21},
               "blocks_blocker_created_idx"),
    "fan-out followers": (social.SELECT_ACTIVE_FOLLOWERS, {
        "author_id": 1, "active_days": 30, "limit": 500, "after_created_at": None,
        "after_id": None}, "follows_followed_created_idx"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("deep", [False, True], ids=["first page", "deep page"])
def test_list_queries_use_their_indexes(social_seeded: str, case: str, deep: bool):
    query, params, index = CASES[case]
    params = {**NO_CURSOR, **params}
    if deep and case not in ("feed rebuild", "fan-out entries"):
        side = "after" if "after_id" in params else "before"
        params[f"{side}_created_at"], params[f"{side}_id"] = deep_cursor(social_seeded)
    used = scans(social_seeded, query, params)
    assert not [scan for scan in used if scan[0] == "Seq Scan" and scan[1] in BIG_TABLES], used
    assert any(name == index for _, name in used), used


@pytest.mark.parametrize("generic", [False, True], ids=["custom plan", "generic plan"])
@pytest.mark.parametrize("deep", [False, True], ids=["first page", "deep page"])
def test_a_cached_page_checks_each_post_by_primary_keys(social_seeded: str, deep: bool,
                                                        generic: bool):
    """The hit's one query re-checks the follow of each candidate's author by its primary key
    and finds followed celebrities (user 1, followed by the viewer) from the few big accounts,
    never by reading the viewer's whole follow list; so does the generic plan its prepared
    statement may keep for every viewer."""
    query = feeds.feed_candidates_query(1000, later_page=deep).text
    params = {"viewer_id": VIEWER, "ids": list(range(5000, 5030)), "limit": 21, **NO_CURSOR}
    if deep:
        params["before_created_at"], params["before_id"] = deep_cursor(social_seeded)
    nodes = plan_nodes(social_seeded, query, params, generic=generic)
    used = [(node["Node Type"], node.get("Index Name") or node.get("Relation Name", ""))
            for node in nodes if "Scan" in node["Node Type"]]
    assert not [scan for scan in used if scan[0] == "Seq Scan" and scan[1] in BIG_TABLES], used
    follows = [node for node in nodes if node.get("Relation Name") == "follows"]
    assert follows, used
    assert all(node.get("Index Name") == "follows_pkey" and "followed_id" in node["Index Cond"]
               for node in follows), [(node.get("Index Name"), node.get("Index Cond"))
                                      for node in follows]
    assert ("Index Scan", "users_followers_count_idx") in used, used
    assert ("Index Only Scan", "posts_user_created_idx") in used, used
    with psycopg2.connect(social_seeded) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        merged = {row[0] for row in cur.fetchall() if row[1] == 1}
        cur.execute(f"SELECT p.id FROM posts p WHERE p.user_id = 1 AND {posts.BEFORE} "
                    "ORDER BY p.created_at DESC, p.id DESC LIMIT 21", params)
        newest = {row[0] for row in cur.fetchall()}
    conn.close()
    assert merged == newest and newest  # the celebrity's newest posts, bounded by the page
