"""Job alerts: a user's saved searches, the scheduler's due scan and its matching jobs."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sql.db import Cursor, Database, Row
from sql.jobs import IS_OPEN

ALERT_COLUMNS = """
    a.id, a.q, a.category, a.location, a.remote, a.frequency, a.last_sent_at, a.created_at
"""
# Days between two runs of an alert, by frequency (the CHECK in 0001_schema.sql).
PERIOD_DAYS = {"daily": 1, "weekly": 7}

# Serialises one user's creates, so two at once cannot both pass the limit. NO KEY UPDATE,
# not UPDATE: rows that merely reference the user (FOR KEY SHARE) are not held up.
LOCK_USER = "SELECT id FROM users WHERE id = %(user_id)s FOR NO KEY UPDATE"
COUNT_ALERTS = "SELECT count(*) FROM job_alerts WHERE user_id = %(user_id)s"
INSERT_ALERT = f"""
    INSERT INTO job_alerts AS a (user_id, q, category, location, remote, frequency)
    VALUES (%(user_id)s, %(q)s, %(category)s, %(location)s, %(remote)s, %(frequency)s)
    RETURNING {ALERT_COLUMNS}
"""


async def insert_alert_within_limit_txn(cur: Cursor, user_id: int, fields: dict[str, Any],
                                        limit: int) -> Row | None:
    """The new alert, or None when the user already has ``limit`` alerts (or is gone)."""
    if await cur.fetch_value(LOCK_USER, {"user_id": user_id}) is None:
        return None
    if await cur.fetch_value(COUNT_ALERTS, {"user_id": user_id}) >= limit:
        return None
    return await cur.fetch_one(INSERT_ALERT, {**fields, "user_id": user_id})


# Newest first; at most 20 rows, read from the (user_id, id) index.
LIST_ALERTS = f"""
    SELECT {ALERT_COLUMNS} FROM job_alerts a
    WHERE a.user_id = %(user_id)s
    ORDER BY a.id DESC
"""


async def list_alerts(db: Database, user_id: int) -> list[Row]:
    return await db.fetch_all(LIST_ALERTS, {"user_id": user_id})


DELETE_ALERT = "DELETE FROM job_alerts WHERE id = %(id)s AND user_id = %(user_id)s"


async def delete_alert(db: Database, user_id: int, alert_id: int) -> bool:
    """False when the user has no such alert (someone else's included)."""
    return await db.execute(DELETE_ALERT, {"id": alert_id, "user_id": user_id}) == 1


# One due alert, locked; alerts other processes hold are skipped, so each runs once a period.
CLAIM_DUE_ALERT = """
    SELECT id, user_id, q, category, location, remote, frequency, last_job_id
    FROM job_alerts
    WHERE next_run_at <= now()
    ORDER BY next_run_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED
"""


async def claim_due_alert_txn(cur: Cursor) -> Row | None:
    return await cur.fetch_one(CLAIM_DUE_ALERT)


# The same filters as GET /jobs. psycopg2 sends values inline, so an absent criterion's
# `NULL IS NULL` folds away at planning and each alert gets a plan for its own filters.
# After the high-water mark the primary key's range bounds the scan to the jobs new since.
MATCHING_JOBS = f"""
    SELECT j.id FROM jobs j
    WHERE {IS_OPEN}
      AND (%(after_id)s::bigint IS NULL OR j.id > %(after_id)s)
      AND (%(q)s::text IS NULL OR j.search @@ websearch_to_tsquery('english', %(q)s))
      AND (%(category)s::text IS NULL OR j.category = %(category)s)
      AND (%(location)s::text IS NULL OR j.location = %(location)s)
      AND (%(remote)s::boolean IS NULL OR j.remote = %(remote)s)
    ORDER BY j.id DESC
    LIMIT %(limit)s
"""


async def matching_job_ids_txn(cur: Cursor, alert: Row, limit: int) -> list[int]:
    """Open jobs matching the alert past its high-water mark, newest first."""
    rows = await cur.fetch_all(MATCHING_JOBS, {
        "after_id": alert["last_job_id"], "q": alert["q"], "category": alert["category"],
        "location": alert["location"], "remote": alert["remote"], "limit": limit})
    return [int(row["id"]) for row in rows]


FINISH_RUN = """
    UPDATE job_alerts
    SET next_run_at = now() + make_interval(days => %(period_days)s),
        last_job_id = coalesce(%(sent_up_to)s, last_job_id),
        last_sent_at = CASE WHEN %(sent_up_to)s::bigint IS NULL THEN last_sent_at ELSE now() END
    WHERE id = %(id)s
"""


async def finish_alert_run_txn(cur: Cursor, alert: Row, sent_up_to: int | None) -> None:
    """Schedule the next run one period from now; record what was sent, if anything."""
    await cur.execute(FINISH_RUN, {"id": alert["id"], "sent_up_to": sent_up_to,
                                   "period_days": PERIOD_DAYS[alert["frequency"]]})


POSTPONE_ALERT = """
    UPDATE job_alerts SET next_run_at = now() + make_interval(secs => %(seconds)s)
    WHERE id = %(id)s
"""


async def postpone_alert(db: Database, alert_id: int, seconds: float) -> None:
    """After a failed run: try this alert again later, behind the others that are due."""
    await db.execute(POSTPONE_ALERT, {"id": alert_id, "seconds": seconds})


# Just before sending: no row at all means the alert is gone (or not this user's); one row
# with a NULL id means it exists but none of its jobs is still open.
ALERT_JOBS_TO_SEND = f"""
    SELECT j.id, j.title, j.location
    FROM job_alerts a
    LEFT JOIN jobs j ON j.id = ANY(%(job_ids)s::bigint[]) AND {IS_OPEN}
    WHERE a.id = %(alert_id)s AND a.user_id = %(user_id)s
    ORDER BY j.id DESC
"""


async def get_alert_jobs_to_send(db: Database, user_id: int, alert_id: int,
                                 job_ids: Collection[int]) -> list[Row] | None:
    """The alert's jobs that are still open, newest first; None when the alert is gone."""
    rows = await db.fetch_all(ALERT_JOBS_TO_SEND, {
        "user_id": user_id, "alert_id": alert_id, "job_ids": list(job_ids)})
    if not rows:
        return None
    return [row for row in rows if row["id"] is not None]
