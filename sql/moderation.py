"""The reports review queue: open reports oldest first, and resolving them."""

from __future__ import annotations

from datetime import datetime

from sql.db import Cursor, Database, Row

Position = tuple[datetime, int] | None

# What a report is about, in a line: each arm one primary-key lookup.
TARGET_SUMMARY = """
    CASE r.target_type
    WHEN 'user' THEN (SELECT u.first_name || ' ' || u.last_name || ' <' || u.email || '>'
                      FROM users u WHERE u.id = r.target_id)
    WHEN 'post' THEN (SELECT left(p.body, 200) FROM posts p WHERE p.id = r.target_id)
    WHEN 'comment' THEN (SELECT left(c.body, 200) FROM post_comments c
                         WHERE c.id = r.target_id)
    WHEN 'job' THEN (SELECT j.title FROM jobs j WHERE j.id = r.target_id)
    END
"""
REPORT_COLUMNS = f"""
    r.id, r.reporter_id, r.target_type, r.target_id, r.reason, r.status, r.created_at,
    r.resolved_at, reporter.email AS reporter_email, {TARGET_SUMMARY} AS target_summary
"""

# Oldest first from reports_open_created_idx.
LIST_OPEN = f"""
    SELECT {REPORT_COLUMNS}
    FROM reports r
    JOIN users reporter ON reporter.id = r.reporter_id
    WHERE r.status = 'open'
      AND (%(after_created_at)s::timestamptz IS NULL
           OR (r.created_at, r.id) > (%(after_created_at)s, %(after_id)s))
    ORDER BY r.created_at, r.id
    LIMIT %(limit)s
"""


async def list_open_reports(db: Database, *, after: Position, limit: int) -> list[Row]:
    after_created_at, after_id = after or (None, None)
    return await db.fetch_all(LIST_OPEN, {"after_created_at": after_created_at,
                                          "after_id": after_id, "limit": limit})


# Every report on one target, newest first (reports_target_created_idx).
LIST_ON_TARGET = f"""
    SELECT {REPORT_COLUMNS}
    FROM reports r
    JOIN users reporter ON reporter.id = r.reporter_id
    WHERE r.target_type = %(target_type)s AND r.target_id = %(target_id)s
    ORDER BY r.created_at DESC, r.id DESC
    LIMIT %(limit)s
"""


async def list_reports_on(db: Database, target_type: str, target_id: int,
                          limit: int = 20) -> list[Row]:
    return await db.fetch_all(LIST_ON_TARGET, {"target_type": target_type,
                                               "target_id": target_id, "limit": limit})


SELECT_OPEN_REPORT = """
    SELECT id, target_type, target_id FROM reports WHERE id = %(id)s AND status = 'open'
    FOR UPDATE
"""


async def lock_open_report_txn(cur: Cursor, report_id: int) -> Row | None:
    return await cur.fetch_one(SELECT_OPEN_REPORT, {"id": report_id})


RESOLVE = """
    UPDATE reports SET status = 'resolved', resolved_at = now(), resolved_by = %(admin_id)s
    WHERE id = %(id)s AND status = 'open'
    RETURNING id
"""


async def resolve_report_txn(cur: Cursor, report_id: int, admin_id: int) -> bool:
    return await cur.fetch_value(RESOLVE, {"id": report_id, "admin_id": admin_id}) is not None


# Acting on a target settles every open report about it (reports_open_target_idx).
RESOLVE_ON_TARGET = """
    UPDATE reports SET status = 'resolved', resolved_at = now(), resolved_by = %(admin_id)s
    WHERE target_type = %(target_type)s AND target_id = %(target_id)s AND status = 'open'
"""


async def resolve_reports_on_txn(cur: Cursor, target_type: str, target_id: int,
                                 admin_id: int) -> None:
    await cur.execute(RESOLVE_ON_TARGET, {"target_type": target_type, "target_id": target_id,
                                          "admin_id": admin_id})
