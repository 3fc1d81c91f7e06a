"""The admin deliveries page: outbox rows by state, and sending dead ones again."""

from __future__ import annotations

from datetime import datetime

from sql.db import Cursor, Database, Row

Before = tuple[datetime, int] | None

DELIVERY_COLUMNS = """
    o.id, o.kind, o.status, o.attempts, o.last_error, o.next_attempt_at, o.created_at,
    o.payload ->> 'email_type' AS email_type, (o.payload ->> 'user_id')::bigint AS user_id
"""
# Newest first. Pending and failed (pending again after an error) come from
# outbox_pending_created_idx, dead ones from outbox_dead_idx.
STATE_FILTERS = {
    "pending": "o.status = 'pending'",
    "failed": "o.status = 'pending' AND o.last_error IS NOT NULL",
    "dead": "o.status = 'dead'",
}
LIST_DELIVERIES = """
    SELECT {columns}
    FROM outbox o
    WHERE {state}
      AND o.kind IN ('email', 'push')
      AND (%(kind)s::text IS NULL OR o.kind = %(kind)s)
      AND (%(before_created_at)s::timestamptz IS NULL
           OR (o.created_at, o.id) < (%(before_created_at)s, %(before_id)s))
    ORDER BY o.created_at DESC, o.id DESC
    LIMIT %(limit)s
"""


def list_deliveries_query(state: str) -> str:
    return LIST_DELIVERIES.format(columns=DELIVERY_COLUMNS, state=STATE_FILTERS[state])


async def list_deliveries(db: Database, state: str, *, kind: str | None, before: Before,
                          limit: int) -> list[Row]:
    before_created_at, before_id = before or (None, None)
    return await db.fetch_all(list_deliveries_query(state), {
        "kind": kind, "before_created_at": before_created_at, "before_id": before_id,
        "limit": limit})


# Dead again to pending, due now, with a fresh attempt budget; the sender re-checks that it
# is still wanted (a suspended user's is skipped then). The last error stays until the next
# attempt replaces it.
RETRY_ONE = """
    UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = now()
    WHERE id = %(id)s AND status = 'dead'
    RETURNING id
"""
# A bounded batch per click, newest dead first (outbox_dead_idx).
RETRY_DEAD = """
    UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = now()
    WHERE id = ANY(ARRAY(SELECT o.id FROM outbox o WHERE o.status = 'dead'
                         ORDER BY o.created_at DESC, o.id DESC
                         LIMIT %(limit)s
                         FOR UPDATE SKIP LOCKED))
    RETURNING id
"""


async def retry_dead_delivery_txn(cur: Cursor, delivery_id: int) -> bool:
    return await cur.fetch_value(RETRY_ONE, {"id": delivery_id}) is not None


async def retry_dead_deliveries_txn(cur: Cursor, limit: int) -> list[int]:
    return [row["id"] for row in await cur.fetch_all(RETRY_DEAD, {"limit": limit})]
