"""A notification row as the API shows it: ``GET /notifications`` and the live stream's
``notification`` events answer through this one function, so they cannot drift apart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.responses import from_row
from service.schemas import Notification


def notification_answer(row: Mapping[str, Any]) -> Notification:
    """``row`` as ``sql/notifications.py`` lists it (the actor's columns prefixed ``actor_``);
    a stored event's copy of it (timestamps as JSON text) converts the same way."""
    actor = None
    if row["actor_id"] is not None:
        actor = {key.removeprefix("actor_"): value for key, value in row.items()
                 if key.startswith("actor_")} | {"id": row["actor_id"]}
    return from_row({"id": row["id"], "type": row["type"], "actor": actor,
                     "related_id": row["related_id"], "data": row["data"],
                     "is_read": row["is_read"], "created_at": row["created_at"]}, Notification)
