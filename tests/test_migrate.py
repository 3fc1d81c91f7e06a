"""The migration runner: each file once, in order, atomically, also with concurrent runners.

Every test gets a fresh, empty database of its own on the server named by
``TEST_DATABASE_URL`` and drops it afterwards.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql
from psycopg2.extensions import make_dsn

from sql import migrate
from sql.migrate import MIGRATION_LOCK_ID, apply_migrations, migration_files

SERVER_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REPO_ROOT = Path(__file__).resolve().parents[1]
RUNNER = ("import asyncio, sys; from sql.migrate import apply_migrations; "
          "print(asyncio.run(apply_migrations(sys.argv[1])))")
WAIT_TIMEOUT_S = 60

EXPECTED_TABLES = {
    "users", "auth_tokens", "email_tokens", "jobs", "job_applications",
    "application_status_history", "saved_jobs", "job_alerts", "posts", "post_likes",
    "post_comments", "follows", "blocks", "conversations", "messages", "notifications",
    "notification_preferences", "push_subscriptions", "outbox", "reports", "admin_audit_log",
    "schema_migrations",
}


def execute_autocommit(dsn: str, statement: sql.Composable | str) -> None:
    with contextlib.closing(psycopg2.connect(dsn)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)


def fetch_column(dsn: str, query: str) -> list[object]:
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute(query)
        return [row[0] for row in cur.fetchall()]


@pytest.fixture
def empty_database() -> Iterator[str]:
    """The DSN of a new, empty database, dropped after the test."""
    name = f"hireme_migtest_{secrets.token_hex(6)}"
    execute_autocommit(SERVER_URL, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_dsn(SERVER_URL, dbname=name)
    finally:
        execute_autocommit(SERVER_URL, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                           .format(sql.Identifier(name)))


def recorded_migrations(dsn: str) -> list[object]:
    return fetch_column(dsn, "SELECT name FROM schema_migrations ORDER BY name")


def test_migration_files_are_numbered_and_ordered() -> None:
    names = [path.name for path in migration_files()]
    assert names[0] == "0001_schema.sql"
    assert names == sorted(names)
    assert all(name[:4].isdigit() and name[4] == "_" for name in names)


def test_second_run_is_a_no_op(empty_database: str) -> None:
    expected = [path.name for path in migration_files()]
    assert asyncio.run(apply_migrations(empty_database)) == expected
    assert asyncio.run(apply_migrations(empty_database)) == []
    assert recorded_migrations(empty_database) == expected


def test_schema_has_every_table(empty_database: str) -> None:
    asyncio.run(apply_migrations(empty_database))
    tables = fetch_column(empty_database, """
        SELECT table_name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
    """)
    assert EXPECTED_TABLES - set(tables) == set()  # names any missing table


def start_runner(dsn: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", RUNNER, dsn], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lock_waiters(dsn: str, count: int) -> None:
    """Block until ``count`` sessions wait for an advisory lock in this database."""
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while time.monotonic() < deadline:
        waiting = fetch_column(dsn, """
            SELECT count(*) FROM pg_locks
            WHERE locktype = 'advisory' AND NOT granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """)[0]
        if waiting == count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} runners never queued for the migration lock")


def test_concurrent_runners_apply_each_migration_once(empty_database: str) -> None:
    # Hold the runners' lock so both are provably started and contending before either runs.
    with contextlib.closing(psycopg2.connect(empty_database)) as holder:
        holder.autocommit = True
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%(id)s)", {"id": MIGRATION_LOCK_ID})
            runners = [start_runner(empty_database) for _ in range(2)]
            wait_for_lock_waiters(empty_database, 2)
            cur.execute("SELECT pg_advisory_unlock(%(id)s)", {"id": MIGRATION_LOCK_ID})
    outputs = [runner.communicate(timeout=WAIT_TIMEOUT_S) for runner in runners]

    assert [runner.returncode for runner in runners] == [0, 0], outputs
    applied = [name for stdout, _ in outputs for name in ast.literal_eval(stdout.strip())]
    expected = [path.name for path in migration_files()]
    assert sorted(applied) == expected  # across both runners, each file exactly once
    assert recorded_migrations(empty_database) == expected


def test_failed_migration_is_rolled_back_and_retried(empty_database: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    (tmp_path / "0002_second.sql").write_text("CREATE TABLE second (id int); SELECT 1 / 0;")

    with pytest.raises(psycopg2.Error):
        asyncio.run(apply_migrations(empty_database))
    assert recorded_migrations(empty_database) == ["0001_first.sql"]
    assert fetch_column(empty_database, "SELECT to_regclass('second')") == [None]

    (tmp_path / "0002_second.sql").write_text("CREATE TABLE second (id int);")
    assert asyncio.run(apply_migrations(empty_database)) == ["0002_second.sql"]
    assert recorded_migrations(empty_database) == ["0001_first.sql", "0002_second.sql"]
