"""Job alerts: a user's saved searches, the scheduler's due scan and its matching jobs.

Which jobs are new for an alert is decided by snapshots, not by job ids: an id is taken before
its transaction commits, so ids do not commit in order, and a run that saw id 2 cannot say
that id 1 will not commit later. Every job records the transaction that inserted it
(``jobs.created_xid``, 0002_job_alert_horizon.sql). A run takes a snapshot S while it holds the
alert's row lock and sends the matching jobs that are committed in S
(``pg_visible_in_snapshot``) but were not in the previous run's snapshot P, then stores S with
its email, in one transaction. A transaction that ends commits in every snapshot taken after
that and in none taken before, and P was taken before the previous run committed, hence before
S (we got the lock it held). So each committed job falls in exactly one run's window: sent
once, never skipped, and no later than the first run after its commit. The window's bounds,
``created_xid`` from P's xmin to S's xmax, are a range of jobs_created_xid_idx.
"""

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
    SELECT id, user_id, q, category, location, remote, frequency, last_job_id,
           job_snapshot::text AS job_snapshot
    FROM job_alerts
    WHERE next_run_at <= now()
    ORDER BY next_run_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED
"""


async def claim_due_alert_txn(cur: Cursor) -> Row | None:
    return await cur.fetch_one(CLAIM_DUE_ALERT)


# A statement of its own, after the claim: a snapshot taken in the claim itself could
# predate the commit of a run that held the row a moment before (see the module docstring).
# pg_snapshot travels as its text form: it is only ever passed back.
TAKE_SNAPSHOT = "SELECT pg_current_snapshot()::text"


async def take_snapshot_txn(cur: Cursor) -> str:
    """This run's snapshot, taken while the alert's row lock is held."""
    return str(await cur.fetch_value(TAKE_SNAPSHOT))


# The same filters as GET /jobs. psycopg2 sends values inline, so an absent criterion's
# `NULL IS NULL` folds away at planning and each alert gets a plan for its own filters; the
# snapshot functions are immutable, so the window's bounds fold into a range of
# jobs_created_xid_idx. Before its first run under snapshots (``after`` NULL) an alert's
# window is everything committed in ``snapshot``, and the old id mark ``after_id``, a range
# of the primary key, keeps out what it sent before; that run clears it (FINISH_RUN).
MATCHING_JOBS = f"""
    SELECT j.id FROM jobs j
    WHERE {IS_OPEN}
      AND j.created_xid < pg_snapshot_xmax(%(snapshot)s::pg_snapshot)
      AND pg_visible_in_snapshot(j.created_xid, %(snapshot)s::pg_snapshot)
      AND (%(after)s::pg_snapshot IS NULL
           OR (j.created_xid >= pg_snapshot_xmin(%(after)s::pg_snapshot)
               AND NOT pg_visible_in_snapshot(j.created_xid, %(after)s::pg_snapshot)))
      AND (%(after_id)s::bigint IS NULL OR j.id > %(after_id)s)
      AND (%(q)s::text IS NULL OR j.search @@ websearch_to_tsquery('english', %(q)s))
      AND (%(category)s::text IS NULL OR j.category = %(category)s)
      AND (%(location)s::text IS NULL OR j.location = %(location)s)
      AND (%(remote)s::boolean IS NULL OR j.remote = %(remote)s)
    ORDER BY j.id DESC
    LIMIT %(limit)s
"""


async def matching_job_ids_txn(cur: Cursor, alert: Row, snapshot: str,
                               limit: int) -> list[int]:
    """Open jobs matching the alert, committed in ``snapshot`` and not in the last run's,
    newest first."""
    rows = await cur.fetch_all(MATCHING_JOBS, {
        "snapshot": snapshot, "after": alert["job_snapshot"], "after_id": alert["last_job_id"],
        "q": alert["q"], "category": alert["category"],
        "location": alert["location"], "remote": alert["remote"], "limit": limit})
    return [int(row["id"]) for row in rows]


# The snapshot is stored whether or not anything matched: the window was read either way.
FINISH_RUN = """
    UPDATE job_alerts
    SET next_run_at = now() + make_interval(days => %(period_days)s),
        job_snapshot = %(snapshot)s::pg_snapshot,
        last_job_id = NULL,
        last_sent_at = CASE WHEN %(sent)s THEN now() ELSE last_sent_at END
    WHERE id = %(id)s
"""


async def finish_alert_run_txn(cur: Cursor, alert: Row, snapshot: str, *, sent: bool) -> None:
    """Schedule the next run one period from now; store the run's snapshot, and the time of
    the email if one was queued."""
    await cur.execute(FINISH_RUN, {"id": alert["id"], "snapshot": snapshot, "sent": sent,
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
