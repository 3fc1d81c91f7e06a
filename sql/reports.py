"""Reports: what users flag for the admins' review queue.

One open report per reporter and target (``reports_open_reporter_target_key``): a repeat while
it is open finds the same row. A target the reporter cannot see is as good as missing: a user
who is suspended, a post or comment whose author and the reporter block each other (the same
``BLOCKED_PAIR`` condition posts and comments use), anything deleted.
"""

from __future__ import annotations

from sql.db import Cursor, Row
from sql.social import BLOCKED_PAIR

REPORT_COLUMNS = "r.id, r.target_type, r.target_id, r.reason, r.status, r.created_at"

# Each arm is one primary-key lookup (plus the blocks primary key).
VISIBLE_TARGET = f"""
    CASE %(target_type)s
    WHEN 'user' THEN EXISTS (
        SELECT 1 FROM users u WHERE u.id = %(target_id)s AND u.suspended_at IS NULL)
    WHEN 'post' THEN EXISTS (
        SELECT 1 FROM posts p WHERE p.id = %(target_id)s
          AND NOT {BLOCKED_PAIR.format(a="p.user_id", b="%(reporter_id)s")})
    WHEN 'comment' THEN EXISTS (
        SELECT 1 FROM post_comments c JOIN posts p ON p.id = c.post_id
        WHERE c.id = %(target_id)s
          AND NOT {BLOCKED_PAIR.format(a="c.user_id", b="%(reporter_id)s")}
          AND NOT {BLOCKED_PAIR.format(a="p.user_id", b="%(reporter_id)s")})
    WHEN 'job' THEN EXISTS (SELECT 1 FROM jobs j WHERE j.id = %(target_id)s)
    ELSE false
    END
"""

INSERT_REPORT = f"""
    WITH target AS (SELECT {VISIBLE_TARGET} AS visible),
    inserted AS (
        INSERT INTO reports AS r (reporter_id, target_type, target_id, reason)
        SELECT %(reporter_id)s, %(target_type)s, %(target_id)s, %(reason)s
        FROM target WHERE visible
        ON CONFLICT (reporter_id, target_type, target_id) WHERE status = 'open' DO NOTHING
        RETURNING {REPORT_COLUMNS}
    )
    SELECT t.visible, i.* FROM target t LEFT JOIN inserted i ON true
"""

# A new statement (and so a new snapshot): it sees the open report that made the insert a
# no-op, even one a concurrent request committed while ours waited on it.
SELECT_OPEN_REPORT = f"""
    SELECT {REPORT_COLUMNS} FROM reports r
    WHERE r.reporter_id = %(reporter_id)s AND r.target_type = %(target_type)s
      AND r.target_id = %(target_id)s AND r.status = 'open'
"""


async def insert_report_txn(cur: Cursor, *, reporter_id: int, target_type: str, target_id: int,
                            reason: str) -> tuple[Row | None, bool]:
    """(report, created): the new report, or the reporter's open one on this target; None
    when the target does not exist or the reporter cannot see it."""
    params = {"reporter_id": reporter_id, "target_type": target_type, "target_id": target_id,
              "reason": reason}
    row = await cur.fetch_one(INSERT_REPORT, params)
    if row is None or not row["visible"]:
        return None, False
    if row["id"] is not None:
        return row, True
    return await cur.fetch_one(SELECT_OPEN_REPORT, params), False
