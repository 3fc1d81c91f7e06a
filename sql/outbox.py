"""The outbox: one row per email or push to deliver, written in the causing transaction."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extras import Json

from sql.db import Cursor, Database, Prepared, Row

INSERT_OUTBOX = """
    INSERT INTO outbox (kind, payload, idempotency_key, next_attempt_at)
    VALUES (%(kind)s, %(payload)s, %(idempotency_key)s,
            now() + make_interval(secs => %(delay_seconds)s))
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
"""

PREPARED_INSERT_OUTBOX = Prepared("insert_outbox", INSERT_OUTBOX)


async def insert_outbox_txn(cur: Cursor, kind: str, payload: dict[str, Any],
                            idempotency_key: str, delay_seconds: float = 0) -> int | None:
    """Queue one delivery; None when a row with this idempotency key already exists."""
    row_id = await cur.fetch_value(PREPARED_INSERT_OUTBOX, {
        "kind": kind, "payload": Json(payload), "idempotency_key": idempotency_key,
        "delay_seconds": delay_seconds})
    return None if row_id is None else int(row_id)


SELECT_OLDEST_DUE_AGE = """
    SELECT coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0) AS age
    FROM outbox
    WHERE status = 'pending' AND next_attempt_at <= now()
"""


async def get_oldest_due_age(db: Database) -> float:
    """Seconds the oldest due, undelivered row has waited; 0 when nothing is due."""
    return float(await db.fetch_value(SELECT_OLDEST_DUE_AGE))


# A row is claimable when it is due, or when its holder's lease ran out (a killed process).
CLAIMABLE = """
    (o.status = 'pending' AND o.next_attempt_at <= now())
    OR (o.status = 'sending' AND o.locked_until < now())
"""
CLAIMED_COLUMNS = "id, kind, payload, attempts, locked_until AS lease, created_at"

CLAIM_ONE = f"""
    UPDATE outbox SET status = 'sending', attempts = attempts + 1,
                      locked_until = now() + make_interval(secs => %(lease_seconds)s)
    WHERE id = (SELECT o.id FROM outbox o
                WHERE o.id = %(id)s AND ({CLAIMABLE})
                FOR UPDATE SKIP LOCKED)
    RETURNING {CLAIMED_COLUMNS}
"""
PREPARED_CLAIM_ONE = Prepared("claim_outbox_row", CLAIM_ONE)

# Two index-ordered scans, each stopping at the batch size: rows whose lease ran out (a killed
# process's, oldest lease first) and then due pending rows, oldest first. One scan with an OR
# of the two would read and sort every due row to return a handful: with a backlog of 10,000
# that was ~20 ms per batch of 8.
CLAIM_DUE = f"""
    WITH orphans AS (
        SELECT o.id FROM outbox o
        WHERE o.status = 'sending' AND o.locked_until < now()
          AND o.id <> ALL(%(held)s::bigint[])
        ORDER BY o.locked_until
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED),
    due AS (
        SELECT o.id FROM outbox o
        WHERE o.status = 'pending' AND o.next_attempt_at <= now()
          AND o.id <> ALL(%(held)s::bigint[])
        ORDER BY o.next_attempt_at
        LIMIT %(limit)s - (SELECT count(*) FROM orphans)
        FOR UPDATE SKIP LOCKED)
    UPDATE outbox SET status = 'sending', attempts = attempts + 1,
                      locked_until = now() + make_interval(secs => %(lease_seconds)s)
    WHERE id = ANY(ARRAY(SELECT id FROM orphans UNION ALL SELECT id FROM due))
    RETURNING {CLAIMED_COLUMNS}
"""


async def claim_outbox_row(db: Database, row_id: int, lease_seconds: float) -> Row | None:
    """Take one row for delivery; None if it is not due or another worker holds it."""
    return await db.fetch_one_write(PREPARED_CLAIM_ONE, {"id": row_id,
                                                         "lease_seconds": lease_seconds})


async def claim_due_outbox_rows(db: Database, limit: int, lease_seconds: float,
                                held: Collection[int]) -> list[Row]:
    """The sweeper's batch: due retries and rows whose lease expired, oldest first; ``held``
    are rows this process already holds (waiting in its queue), never claimed twice."""
    return await db.fetch_all_write(CLAIM_DUE, {"limit": limit, "lease_seconds": lease_seconds,
                                                "held": list(held)})


RENEW_LEASE = """
    UPDATE outbox SET locked_until = now() + make_interval(secs => %(lease_seconds)s)
    WHERE id = %(id)s AND status = 'sending' AND locked_until = %(lease)s
    RETURNING locked_until
"""


async def renew_lease(db: Database, row_id: int, lease: datetime,
                      lease_seconds: float) -> datetime | None:
    """A fresh lease for a row we hold, or None if another worker took it over meanwhile."""
    value = await db.fetch_one_write(RENEW_LEASE, {"id": row_id, "lease": lease,
                                                   "lease_seconds": lease_seconds})
    return None if value is None else value["locked_until"]


@dataclass(frozen=True)
class Finish:
    """One attempt's result, recorded only while ``lease`` still proves the row is ours."""

    id: int
    lease: datetime
    status: str
    error: str | None = None
    delay_seconds: float = 0.0


# Many attempts' results in one statement. Rows go in id order so two statements that touch
# the same rows lock them in the same order.
FINISH_MANY = """
    UPDATE outbox o
    SET status = f.status, last_error = f.error, locked_until = NULL,
        sent_at = CASE WHEN f.status = 'sent' THEN now() END,
        next_attempt_at = now() + make_interval(secs => f.delay_seconds)
    FROM unnest(%(ids)s::bigint[], %(leases)s::timestamptz[], %(statuses)s::text[],
                %(errors)s::text[], %(delays)s::float8[])
         AS f(id, lease, status, error, delay_seconds)
    WHERE o.id = f.id AND o.status = 'sending' AND o.locked_until = f.lease
    RETURNING o.id
"""
PREPARED_FINISH_MANY = Prepared("finish_outbox_rows", FINISH_MANY)


async def finish_outbox_rows(db: Database, finishes: Sequence[Finish]) -> set[int]:
    """Record attempts' results; the ids recorded (a row whose lease we lost is not)."""
    ordered = sorted(finishes, key=lambda finish: finish.id)
    rows = await db.fetch_all_write(PREPARED_FINISH_MANY, {
        "ids": [f.id for f in ordered], "leases": [f.lease for f in ordered],
        "statuses": [f.status for f in ordered], "errors": [f.error for f in ordered],
        "delays": [f.delay_seconds for f in ordered]})
    return {row["id"] for row in rows}


async def finish_outbox_row(db: Database, row_id: int, lease: datetime, status: str,
                            error: str | None = None, delay_seconds: float = 0) -> bool:
    """Record one attempt's result, only while we still hold the lease; False if we lost it."""
    finish = Finish(row_id, lease, status, error, delay_seconds)
    return row_id in await finish_outbox_rows(db, [finish])


EXTEND_LEASE = """
    UPDATE outbox SET locked_until = now() + make_interval(secs => %(lease_seconds)s),
                      payload = %(payload)s
    WHERE id = %(id)s AND status = 'sending' AND locked_until = %(lease)s
    RETURNING locked_until
"""


async def save_progress_txn(cur: Cursor, row_id: int, lease: datetime, payload: dict[str, Any],
                            lease_seconds: float) -> datetime | None:
    """A long job's checkpoint: new payload and a renewed lease, or None if the lease is lost."""
    value = await cur.fetch_value(EXTEND_LEASE, {
        "id": row_id, "lease": lease, "payload": Json(payload), "lease_seconds": lease_seconds})
    return value  # type: ignore[no-any-return]


PRUNE = """
    DELETE FROM outbox
    WHERE id IN (SELECT id FROM outbox
                 WHERE status IN ('sent', 'dead', 'skipped')
                   AND created_at < now() - interval '30 days'
                 LIMIT %(limit)s)
"""


async def prune_outbox(db: Database, limit: int = 10_000) -> int:
    """Forget finished rows older than 30 days, in bounded batches."""
    return await db.execute(PRUNE, {"limit": limit})
