"""``run.py seed``: a small, deterministic data set that honours every constraint and counter,
and logs the benchmark in with the tokens it writes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from aiohttp.test_utils import TestClient

from service.passwords import hash_password
from service.tokens import new_auth_token
from sql.seed import SEED_PASSWORD, DatabaseNotEmpty, SeedOptions, seed_database
from sql.seed_plan import SCALE_1, make_plan
from tests.conftest import API
from tests.servers import create_database, drop_database

SCALE = 0.002  # 200 users, 400 jobs, 2,000 posts, 10,000 notifications
ANCHOR = 1_790_000_000  # a fixed "now", so two loads with one seed are identical
RUN_PY = Path(__file__).resolve().parents[1] / "run.py"

# Each counter column against a count of the rows it counts; a row per disagreement.
COUNTER_MISMATCHES = {
    "followers_count": """
        SELECT u.id FROM users u
        WHERE u.followers_count <> (SELECT count(*) FROM follows f WHERE f.followed_id = u.id)
    """,
    "following_count": """
        SELECT u.id FROM users u
        WHERE u.following_count <> (SELECT count(*) FROM follows f WHERE f.follower_id = u.id)
    """,
    "likes_count": """
        SELECT p.id FROM posts p
        WHERE p.likes_count <> (SELECT count(*) FROM post_likes l WHERE l.post_id = p.id)
    """,
    "comments_count": """
        SELECT p.id FROM posts p
        WHERE p.comments_count <> (SELECT count(*) FROM post_comments c WHERE c.post_id = p.id)
    """,
    "applications_count": """
        SELECT j.id FROM jobs j
        WHERE j.applications_count <> (SELECT count(*) FROM job_applications a
                                       WHERE a.job_id = j.id)
    """,
    "last_message_id": """
        SELECT c.id FROM conversations c
        WHERE c.last_message_id IS DISTINCT FROM (
                  SELECT m.id FROM messages m WHERE m.conversation_id = c.id
                  ORDER BY m.created_at DESC, m.id DESC LIMIT 1)
           OR c.updated_at <> (SELECT max(created_at) FROM messages m
                               WHERE m.conversation_id = c.id)
    """,
    "message notification read state": """
        SELECT n.id FROM notifications n
        WHERE n.notification_type = 'message'
          AND n.is_read = EXISTS (SELECT 1 FROM messages m
                                  WHERE m.conversation_id = n.related_id
                                    AND m.receiver_id = n.user_id AND NOT m.is_read)
    """,
    "application history": """
        SELECT a.id FROM job_applications a
        WHERE (SELECT status FROM application_status_history h WHERE h.application_id = a.id
               ORDER BY created_at DESC, id DESC LIMIT 1) <> a.status
           OR NOT EXISTS (SELECT 1 FROM application_status_history h
                          WHERE h.application_id = a.id AND h.status = 'submitted')
    """,
}
FINGERPRINTED = ("users", "jobs", "job_applications", "application_status_history",
                 "saved_jobs", "posts", "post_likes", "post_comments", "follows",
                 "conversations", "messages", "notifications")


def seed(url: str, password_hash: str, *, seed_number: int = 7,
         force: bool = False) -> dict[str, Any]:
    options = SeedOptions(scale=SCALE, seed=seed_number, anchor=ANCHOR, force=force,
                          out=io.StringIO())
    return seed_database(url, options, password_hash=password_hash, new_token=new_auth_token,
                         pool_size=50)


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        rows: list[tuple[Any, ...]] = cur.fetchall()
    conn.close()
    return rows


def fingerprints(url: str) -> dict[str, str]:
    """An md5 of each table's rows (less the insert transaction id, which always differs)."""
    return {table: query(url, f"""
        SELECT md5(string_agg(r::text, '|' ORDER BY r::text))
        FROM (SELECT to_jsonb(t) - 'created_xid' AS r FROM {table} t) s""")[0][0]
            for table in FINGERPRINTED}


@pytest.fixture
async def password_hash() -> str:
    return await hash_password(SEED_PASSWORD)


async def test_every_table_gets_its_declared_share_of_rows(clean_database: str,
                                                           password_hash: str) -> None:
    summary = seed(clean_database, password_hash)

    declared = make_plan(SCALE, 7, ANCHOR).counts
    for table, rows in declared.items():
        assert query(clean_database, f"SELECT count(*) FROM {table}")[0][0] == rows, table
    assert summary["counts"]["users"] == declared["users"] == SCALE_1["users"] * SCALE
    assert make_plan(0.1, 1, ANCHOR).counts == {
        table: rows // 10 for table, rows in SCALE_1.items()}


async def test_counters_match_the_rows_they_count(clean_database: str,
                                                  password_hash: str) -> None:
    seed(clean_database, password_hash)

    for counter, mismatches in COUNTER_MISMATCHES.items():
        assert query(clean_database, mismatches) == [], counter


async def test_follows_are_skewed_and_search_words_are_common_and_rare(
        clean_database: str, password_hash: str) -> None:
    summary = seed(clean_database, password_hash)

    [(most, average)] = query(clean_database,
                              "SELECT max(followers_count), avg(followers_count) FROM users")
    assert most > 5 * average
    search = summary["search"]
    assert search["common_matches"] > 0.2 * summary["counts"]["jobs"]
    assert 1 <= search["rare_matches"] <= 10
    for word, matches in ((search["common"], search["common_matches"]),
                          (search["rare"], search["rare_matches"])):
        assert query(clean_database, f"""
            SELECT count(*) FROM jobs
            WHERE search @@ websearch_to_tsquery('english', '{word}')""")[0][0] == matches
    assert summary["filter"]["matches"] > 0
    # The load batches the full-text index's inserts; searches after it must not pay for a
    # pending list (migration 0006), so the batching is off again.
    assert query(clean_database, """
        SELECT reloptions FROM pg_class WHERE relname = 'jobs_search_idx'""") == [
        (["fastupdate=off"],)]


async def test_the_same_seed_gives_the_same_data(clean_database: str,
                                                 password_hash: str) -> None:
    seed(clean_database, password_hash)
    first = fingerprints(clean_database)

    seed(clean_database, password_hash, force=True)
    assert fingerprints(clean_database) == first

    seed(clean_database, password_hash, seed_number=8, force=True)
    assert fingerprints(clean_database)["posts"] != first["posts"]


async def test_a_database_with_users_is_refused_without_force(
        client: TestClient[Any, Any], clean_database: str, password_hash: str) -> None:
    response = await client.post(f"{API}/auth/register", json={
        "email": "keep@example.com", "password": "correct horse", "first_name": "Keep",
        "last_name": "Me", "role": "job_seeker"})
    assert response.status == 201

    with pytest.raises(DatabaseNotEmpty):
        seed(clean_database, password_hash)

    assert query(clean_database, "SELECT email FROM users") == [("keep@example.com",)]


async def test_a_pooled_token_logs_in_and_new_rows_get_new_ids(
        client: TestClient[Any, Any], clean_database: str, password_hash: str) -> None:
    summary = seed(clean_database, password_hash)
    user = summary["users"][0]

    response = await client.get(f"{API}/me",
                                headers={"Authorization": f"Bearer {user['token']}"})
    body = await response.json()
    assert response.status == 200, body
    assert body["user"]["id"] == user["id"]
    [(unread,)] = query(clean_database, f"""
        SELECT count(*) FROM notifications WHERE user_id = {user['id']} AND NOT is_read""")
    assert body["unread_notifications"] == unread

    login = await client.post(f"{API}/auth/login",
                              json={"email": user["email"], "password": SEED_PASSWORD})
    assert login.status == 200
    response = await client.post(f"{API}/posts", json={"body": "after the seed"},
                                 headers={"Authorization": f"Bearer {user['token']}"})
    assert response.status == 201
    assert (await response.json())["id"] == summary["max_post_id"] + 1


@pytest.fixture
def empty_database(postgres_admin_url: str) -> Iterator[str]:
    name = f"hireme_seed_{uuid.uuid4().hex[:12]}"
    yield create_database(postgres_admin_url, name)
    drop_database(postgres_admin_url, name)


def test_the_command_writes_tokens_and_refuses_a_second_run_without_force(
        empty_database: str, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(RUN_PY), "seed", "--scale", str(SCALE), "--pool", "20",
             "--tokens-file", str(tokens), *extra],
            env={"PATH": "/usr/bin:/bin", "DATABASE_URL": empty_database,
                 "SECRET_KEY": "k" * 40},
            capture_output=True, text=True, timeout=120, check=False)

    first = run()
    assert first.returncode == 0, first.stderr
    assert "users" in first.stdout and "notifications" in first.stdout
    written = json.loads(tokens.read_text())
    assert len(written["users"]) == 20 and all(user["token"] for user in written["users"])

    again = run()
    assert again.returncode == 1
    assert "--force" in again.stderr
    assert json.loads(tokens.read_text()) == written

    assert run("--force").returncode == 0
