"""Job alerts."""

from __future__ import annotations

from sql.db import Database

DELETE_ALERT = "DELETE FROM job_alerts WHERE id = %(id)s AND user_id = %(user_id)s"


async def delete_alert(db: Database, user_id: int, alert_id: int) -> bool:
    """False when the user has no such alert (someone else's included)."""
    return await db.execute(DELETE_ALERT, {"id": alert_id, "user_id": user_id}) == 1
