"""The admin audit log: every admin action, written in the action's own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg2.extras import Json

from sql.db import Cursor, Database, Row

Before = tuple[datetime, int] | None

INSERT_ENTRY = """
    INSERT INTO admin_audit_log (admin_id, action, target_type, target_id, details)
    VALUES (%(admin_id)s, %(action)s, %(target_type)s, %(target_id)s, %(details)s)
"""


async def insert_audit_entry_txn(cur: Cursor, admin_id: int, action: str,
                                 target_type: str | None, target_id: int | None,
                                 details: dict[str, Any] | None = None) -> None:
    await cur.execute(INSERT_ENTRY, {
        "admin_id": admin_id, "action": action, "target_type": target_type,
        "target_id": target_id, "details": Json(details or {})})


# Newest first. Each filter has its own index (admin_audit_log_*_created_idx, migration
# 0004), so whichever is given, the page is one index range read.
LIST_ENTRIES = """
    SELECT l.id, l.admin_id, l.action, l.target_type, l.target_id, l.details, l.created_at,
           u.email AS admin_email
    FROM admin_audit_log l
    LEFT JOIN users u ON u.id = l.admin_id
    WHERE (%(action)s::text IS NULL OR l.action = %(action)s)
      AND (%(admin_id)s::bigint IS NULL OR l.admin_id = %(admin_id)s)
      AND (%(target_type)s::text IS NULL OR l.target_type = %(target_type)s)
      AND (%(target_id)s::bigint IS NULL OR l.target_id = %(target_id)s)
      AND (%(before_created_at)s::timestamptz IS NULL
           OR (l.created_at, l.id) < (%(before_created_at)s, %(before_id)s))
    ORDER BY l.created_at DESC, l.id DESC
    LIMIT %(limit)s
"""


async def list_audit_entries(db: Database, *, action: str | None, admin_id: int | None,
                             target_type: str | None, target_id: int | None, before: Before,
                             limit: int) -> list[Row]:
    before_created_at, before_id = before or (None, None)
    return await db.fetch_all(LIST_ENTRIES, {
        "action": action, "admin_id": admin_id, "target_type": target_type,
        "target_id": target_id, "before_created_at": before_created_at,
        "before_id": before_id, "limit": limit})
