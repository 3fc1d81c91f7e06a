"""Unread counts, straight from PostgreSQL (the cache layer keeps copies of these)."""

from __future__ import annotations

from dataclasses import dataclass

from sql.db import Database

# Both counts are answered from partial indexes on the unread rows alone.
SELECT_UNREAD_COUNTS = """
    SELECT (SELECT count(*) FROM notifications
            WHERE user_id = %(user_id)s AND NOT is_read) AS notifications,
           (SELECT count(*) FROM messages
            WHERE receiver_id = %(user_id)s AND NOT is_read) AS messages
"""


@dataclass(frozen=True)
class UnreadCounts:
    notifications: int
    messages: int


async def get_unread_counts(db: Database, user_id: int) -> UnreadCounts:
    row = await db.fetch_one(SELECT_UNREAD_COUNTS, {"user_id": user_id})
    assert row is not None
    return UnreadCounts(int(row["notifications"]), int(row["messages"]))
