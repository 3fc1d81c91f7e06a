"""The admin dashboard's counts: totals (the planner's estimates) and today's (exact)."""

from __future__ import annotations

from sql.db import Database, Row

COUNTED_TABLES = ("users", "jobs", "job_applications", "posts", "messages")

# An exact count reads every row of a table; past EXACT_UP_TO rows (by the statistics ANALYZE
# keeps) the estimate is close enough for a dashboard and costs nothing. CASE evaluates the
# count only when it is used.
EXACT_UP_TO = 100_000
ESTIMATE = """(SELECT greatest(c.reltuples, 0)::bigint FROM pg_class c
                WHERE c.oid = '{t}'::regclass)"""
TOTAL = f"""CASE WHEN {ESTIMATE} < {EXACT_UP_TO} THEN (SELECT count(*) FROM {{t}})
            ELSE {ESTIMATE} END"""
TOTALS = "SELECT " + ",\n       ".join(f"{TOTAL.format(t=table)} AS {table}"
                                       for table in COUNTED_TABLES)

# Since midnight UTC, each from a created_at index (the newest rows only).
TODAY = """
    SELECT
      (SELECT count(*) FROM users WHERE created_at >= %(since)s::timestamptz) AS users,
      (SELECT count(*) FROM jobs WHERE created_at >= %(since)s::timestamptz) AS jobs,
      (SELECT count(*) FROM job_applications
       WHERE created_at >= %(since)s::timestamptz) AS job_applications,
      (SELECT count(*) FROM posts WHERE created_at >= %(since)s::timestamptz) AS posts,
      (SELECT count(*) FROM messages WHERE created_at >= %(since)s::timestamptz) AS messages
"""


async def get_totals(db: Database) -> Row:
    return await db.fetch_one(TOTALS, stale_ok=True) or {}


async def get_today_counts(db: Database, since: str) -> Row:
    row = await db.fetch_one(TODAY, {"since": since}, stale_ok=True)
    return row or {}
