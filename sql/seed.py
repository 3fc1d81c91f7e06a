"""``run.py seed``: bulk-load a realistic, deterministic data set with COPY.

Everything happens in one transaction: refuse a database that has users (unless forced),
truncate, stream each table's generated rows through ``COPY … FROM STDIN (FREEZE)`` with the
schema's indexes and constraints in place, derive the application histories and set the
counters that depend on several tables, move the id sequences past the loaded ids, and
create login tokens for a pool of users. After COMMIT it runs ANALYZE and writes the tokens
file the benchmark reads, so the benchmark never pays for argon2 per user.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psycopg2

from sql.seed_people import (
    APPLICATIONS_COLUMNS,
    INSERT_APPLICATION_HISTORY,
    JOBS_COLUMNS,
    SAVED_JOBS_COLUMNS,
    USERS_COLUMNS,
    application_rows,
    job_rows,
    saved_job_rows,
    user_rows,
)
from sql.seed_plan import Plan, World, empty_world, make_plan
from sql.seed_pool import pick_pool, search_terms, token_rows
from sql.seed_progress import LineStream, Progress
from sql.seed_social import (
    COMMENTS_COLUMNS,
    FOLLOWS_COLUMNS,
    LIKES_COLUMNS,
    POSTS_COLUMNS,
    UPDATE_FOLLOW_COUNTS,
    Engagement,
    comment_rows,
    follow_rows,
    like_rows,
    post_rows,
)
from sql.seed_talk import (
    CONVERSATIONS_COLUMNS,
    MESSAGES_COLUMNS,
    NOTIFICATIONS_COLUMNS,
    UPDATE_LAST_MESSAGES,
    conversation_rows,
    message_rows,
    notification_rows,
)

# Every seeded account has this password (one argon2 hash, computed once, shared by all).
SEED_PASSWORD = "hireme-seed-password"
TokenFactory = Callable[[int], tuple[str, bytes]]  # user id → token and its hash


class DatabaseNotEmpty(Exception):
    """The database already has users and --force was not given: nothing was changed."""


@dataclass(frozen=True)
class SeedOptions:
    scale: float
    seed: int
    anchor: int  # epoch seconds treated as "now" by the generated times
    force: bool = False
    out: TextIO = field(default=sys.stdout)


SELECT_HAS_USERS = "SELECT EXISTS (SELECT 1 FROM users)"
SELECT_TABLES = """
    SELECT string_agg(format('%I', tablename), ', ' ORDER BY tablename) FROM pg_tables
    WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
"""
# Identity columns whose sequences must start after the loaded ids.
SELECT_IDENTITIES = """
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = 'public' AND is_identity = 'YES' ORDER BY table_name
"""
SET_SEQUENCE = """
    SELECT setval(pg_get_serial_sequence(%(table)s, %(column)s),
                  coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)
"""


def seed_database(dsn: str, options: SeedOptions, *, password_hash: str,
                  new_token: TokenFactory, pool_size: int) -> dict[str, Any]:
    """Load the data set; returns what the benchmark needs (tokens, ids, search words)."""
    plan = make_plan(options.scale, options.seed, options.anchor)
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            cur.execute("SET maintenance_work_mem = '256MB'")
            _empty_tables(cur, options.force)
            world = _load(cur, plan, password_hash, options.out)
            _set_sequences(cur)
            pool = pick_pool(cur, pool_size)
            _copy(cur, "auth_tokens", ("token_hash", "user_id"),
                  token_rows(pool, new_token), len(pool), options.out)
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            _analyze(cur, options.out)
            return {"scale": plan.scale, "seed": plan.seed, "password": SEED_PASSWORD,
                    "counts": _counts(cur), "users": pool, **search_terms(cur, world)}
    finally:
        conn.close()


def _empty_tables(cur: Any, force: bool) -> None:
    cur.execute(SELECT_HAS_USERS)
    if cur.fetchone()[0] and not force:
        raise DatabaseNotEmpty("the database already has users; seed with --force to "
                               "truncate every table first")
    cur.execute(SELECT_TABLES)
    # In this transaction, so COPY may FREEZE the rows it writes (no later hint-bit pass).
    cur.execute(f"TRUNCATE {cur.fetchone()[0]} RESTART IDENTITY CASCADE")


def _load(cur: Any, plan: Plan, password_hash: str, out: TextIO) -> World:
    world = empty_world()
    count = plan.count
    _copy(cur, "users", USERS_COLUMNS, user_rows(plan, password_hash), plan.users, out)
    # A bulk load batches the full-text index's inserts (GIN's pending list), then moves
    # them into the index at once: half the time of inserting each job's words directly.
    cur.execute("ALTER INDEX jobs_search_idx SET (fastupdate = on)")
    _copy(cur, "jobs", JOBS_COLUMNS, job_rows(plan, world), count("jobs"), out)
    cur.execute("ALTER INDEX jobs_search_idx SET (fastupdate = off)")
    cur.execute("SELECT gin_clean_pending_list('jobs_search_idx')")
    _copy(cur, "job_applications", APPLICATIONS_COLUMNS, application_rows(plan, world),
          count("job_applications"), out)
    _statement(cur, "application_status_history", INSERT_APPLICATION_HISTORY, out)
    _copy(cur, "saved_jobs", SAVED_JOBS_COLUMNS, saved_job_rows(plan, world),
          count("saved_jobs"), out)
    engagement = Engagement(plan, count("posts"))
    _copy(cur, "posts", POSTS_COLUMNS, post_rows(plan, world, engagement), count("posts"), out)
    _copy(cur, "post_likes", LIKES_COLUMNS, like_rows(plan, world, engagement),
          count("post_likes"), out)
    _copy(cur, "post_comments", COMMENTS_COLUMNS, comment_rows(plan, world, engagement),
          count("post_comments"), out)
    _copy(cur, "follows", FOLLOWS_COLUMNS, follow_rows(plan), count("follows"), out)
    _statement(cur, "users (follow counters)", UPDATE_FOLLOW_COUNTS, out)
    _copy(cur, "conversations", CONVERSATIONS_COLUMNS, conversation_rows(plan, world),
          count("conversations"), out)
    _copy(cur, "messages", MESSAGES_COLUMNS, message_rows(plan, world), count("messages"), out)
    _statement(cur, "conversations (last message)", UPDATE_LAST_MESSAGES, out)
    _copy(cur, "notifications", NOTIFICATIONS_COLUMNS, notification_rows(plan, world),
          count("notifications"), out)
    return world


def _copy(cur: Any, table: str, columns: tuple[str, ...], lines: Iterator[str], total: int,
          out: TextIO) -> None:
    progress = Progress(table, total, out)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FREEZE)",
                    LineStream(lines, progress), size=1 << 16)
    progress.finish()


def _statement(cur: Any, label: str, query: str, out: TextIO) -> None:
    progress = Progress(label, 0, out)
    cur.execute(query)
    progress.advance(cur.rowcount)
    progress.finish()


def _set_sequences(cur: Any) -> None:
    cur.execute(SELECT_IDENTITIES)
    for table, column in cur.fetchall():
        cur.execute(SET_SEQUENCE.format(table=table, column=column),
                    {"table": table, "column": column})


def _analyze(cur: Any, out: TextIO) -> None:
    progress = Progress("ANALYZE", 0, out)
    cur.execute("ANALYZE")
    progress.finish()


COUNTED_TABLES = ("users", "jobs", "job_applications", "application_status_history",
                  "saved_jobs", "posts", "post_likes", "post_comments", "follows",
                  "conversations", "messages", "notifications", "auth_tokens")


def _counts(cur: Any) -> dict[str, int]:
    counts = {}
    for table in COUNTED_TABLES:
        cur.execute(f"SELECT count(*) FROM {table}")
        counts[table] = int(cur.fetchone()[0])
    return counts


def write_tokens_file(path: Path, summary: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
