"""Notifications: the in-app rows, their outbox deliveries, reads and preferences."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from psycopg2.extras import Json

from sql.db import Cursor, Database, Prepared, Row
from sql.social import BLOCKED_PAIR, FOLLOWS_LOOKUP
from sql.users import prefixed_profile_columns

NOTIFICATION_TYPES = ("follow", "post_like", "post_comment", "application_received",
                      "application_status", "job_closed", "message")

# The same event (same dedup_key) never notifies twice: a repeat is ignored, or, for
# "refresh" events such as new messages in one conversation, brings the one row back unread.
# Nothing at all is written when the user and the actor block each other either way (API.md,
# "Follows": no notification passes between them): checked here, in the statement that
# writes the row, so every type and every caller is covered, and no email or push follows a
# notification that was not written. A block that commits while this runs is read as later.
NEW_NOTIFICATION = f"""
    INSERT INTO notifications (user_id, actor_id, notification_type, related_id, data, dedup_key)
    SELECT %(user_id)s::bigint, %(actor_id)s::bigint, %(type)s::text, %(related_id)s::bigint,
           %(data)s::jsonb, %(dedup_key)s::text
    WHERE NOT {BLOCKED_PAIR.format(a="%(user_id)s", b="%(actor_id)s::bigint")}
"""
ON_REPEAT = {
    False: "DO NOTHING",
    True: """DO UPDATE SET is_read = false, actor_id = EXCLUDED.actor_id, data = EXCLUDED.data,
                        created_at = now()""",
}

# An absent preference row means "on": every type is on for email and push by default.
CHANNEL_ENABLED = """
    NOT EXISTS (SELECT 1 FROM notification_preferences p
                WHERE p.user_id = %(user_id)s AND p.notification_type = %(type)s
                  AND NOT p.{channel})
"""

# The notification and, when asked, its deliveries, in one statement (one round trip): one
# push per subscription of the user (%(push)s), so one failing browser never repeats
# another's, and the email (%(email)s). Each channel is skipped when the user turned it off
# for the type. The deliveries' topic and keys default to ones made from the notification's id.
def _insert_notification(on_repeat: str) -> str:
    return f"""
    WITH notification AS (
        {NEW_NOTIFICATION}
        ON CONFLICT (user_id, dedup_key) WHERE dedup_key IS NOT NULL {on_repeat}
        RETURNING id
    ), pushed AS (
        INSERT INTO outbox (kind, payload, idempotency_key)
        SELECT 'push',
               jsonb_build_object('notification_id', n.id, 'subscription_id', s.id,
                                  'topic', coalesce(%(topic)s::text, %(type)s || '-' || n.id)),
               'push:' || coalesce(%(occurrence)s::text, 'n' || n.id) || ':' || s.id
        FROM notification n
        JOIN push_subscriptions s ON s.user_id = %(user_id)s
        WHERE %(push)s::boolean AND {CHANNEL_ENABLED.format(channel="push")}
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id
    ), emailed AS (
        INSERT INTO outbox (kind, payload, idempotency_key, next_attempt_at)
        SELECT 'email',
               jsonb_build_object('email_type', %(type)s::text, 'user_id', %(user_id)s::bigint,
                                  'notification_id', n.id) || %(email_extra)s::jsonb,
               coalesce(%(email_key)s::text,
                        'email:' || coalesce(%(occurrence)s::text, 'n' || n.id)),
               now() + make_interval(secs => %(email_delay_seconds)s::float8)
        FROM notification n
        WHERE %(email)s::boolean AND {CHANNEL_ENABLED.format(channel="email")}
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id
    )
    SELECT n.id, ARRAY(SELECT id FROM pushed) AS push_ids,
           (SELECT id FROM emailed) AS email_id
    FROM notification n
"""


INSERT_NOTIFICATION = {
    False: Prepared("insert_notification", _insert_notification(ON_REPEAT[False])),
    True: Prepared("refresh_notification", _insert_notification(ON_REPEAT[True])),
}


@dataclass(frozen=True)
class EmailDelivery:
    """A notification's email: its outbox key (default: one made from the occurrence), how
    long it waits, and what its payload holds besides type, user and notification."""

    key: str | None = None
    delay_seconds: float = 0
    extra: dict[str, Any] = field(default_factory=dict)


async def insert_notification_txn(cur: Cursor, *, user_id: int, type: str,
                                  actor_id: int | None, related_id: int | None,
                                  data: dict[str, Any], dedup_key: str | None,
                                  refresh: bool, push: bool, topic: str | None,
                                  occurrence: str | None,
                                  email: EmailDelivery | None
                                  ) -> tuple[int, list[int]] | None:
    """The notification's id and the outbox ids of its deliveries (push when ``push``, email
    when ``email``, each unless the user turned it off); None when this event already
    notified the user, or when the user and the actor block each other. ``occurrence`` keys
    the deliveries (default: the notification's id)."""
    emailing = email or EmailDelivery()
    row = await cur.fetch_one(INSERT_NOTIFICATION[refresh], {
        "user_id": user_id, "actor_id": actor_id, "type": type, "related_id": related_id,
        "data": Json(data), "dedup_key": dedup_key, "push": push, "topic": topic,
        "occurrence": occurrence, "email": email is not None, "email_key": emailing.key,
        "email_delay_seconds": emailing.delay_seconds, "email_extra": Json(emailing.extra)})
    if row is None:
        return None
    emailed = [] if row["email_id"] is None else [int(row["email_id"])]
    return int(row["id"]), [*row["push_ids"], *emailed]


SELECT_DELIVERY_CONTEXT = """
    SELECT u.id AS user_id, u.email, u.first_name, u.suspended_at,
           n.id AS notification_id, n.notification_type, n.data, n.is_read, n.related_id,
           n.created_at, a.first_name AS actor_first_name, a.last_name AS actor_last_name,
           coalesce(p.email, true) AS email_enabled, coalesce(p.push, true) AS push_enabled,
           (SELECT m.is_read FROM messages m
            WHERE m.id = %(message_id)s AND m.receiver_id = u.id) AS message_read
    FROM users u
    LEFT JOIN notifications n ON n.id = %(notification_id)s AND n.user_id = u.id
    LEFT JOIN users a ON a.id = n.actor_id
    LEFT JOIN notification_preferences p
           ON p.user_id = u.id AND p.notification_type = n.notification_type
    WHERE u.id = %(user_id)s
"""

PREPARED_SELECT_DELIVERY_CONTEXT = Prepared("delivery_context", SELECT_DELIVERY_CONTEXT)


async def get_delivery_context(db: Database, user_id: int, notification_id: int | None,
                               message_id: int | None = None) -> Row | None:
    """Everything the just-before-sending checks and the rendering need, in one query;
    ``message_id``: a message the delivery waits on being unread (a reminder's)."""
    return await db.fetch_one(PREPARED_SELECT_DELIVERY_CONTEXT, {
        "user_id": user_id, "notification_id": notification_id, "message_id": message_id})


# A notification's actor (``FROM notifications n {ACTOR}``), as ``actor_`` columns.
ACTOR = f"""
    LEFT JOIN users a ON a.id = n.actor_id
    {FOLLOWS_LOOKUP.format(follower="%(user_id)s", followed="a.id", alias="fa")}
"""
ACTOR_PREFIX = "actor_"
ACTOR_COLUMNS = f"""
    {prefixed_profile_columns(ACTOR_PREFIX, "a")}, fa.yes IS NOT NULL AS actor_followed_by_me
"""

# Newest first on (created_at, id). Each combination of filters is its own prepared
# statement naming only the conditions it has, so one generic plan fits every user: served
# by (user_id, created_at DESC, id DESC), unread only by its partial twin, with a type by
# (user_id, notification_type, created_at DESC, id DESC). A query of optional conditions
# ("%(type)s IS NULL OR …") would be planned anew for every request.
LIST_CONDITIONS = {
    "unread_only": "NOT n.is_read",
    "type": "n.notification_type = %(type)s",
    "before": "(n.created_at, n.id) < (%(before_created_at)s, %(before_id)s)",
}


def list_notifications_query(filters: Collection[str]) -> Prepared:
    """The page query for ``filters``, names from LIST_CONDITIONS."""
    used = [name for name in LIST_CONDITIONS if name in filters]
    where = " AND ".join(["n.user_id = %(user_id)s", *(LIST_CONDITIONS[name] for name in used)])
    return Prepared("_".join(["list_notifications", *used]), f"""
        SELECT n.id, n.notification_type AS type, n.related_id, n.data, n.is_read, n.created_at,
               {ACTOR_COLUMNS}
        FROM notifications n
        {ACTOR}
        WHERE {where}
        ORDER BY n.created_at DESC, n.id DESC
        LIMIT %(limit)s
    """)


LIST_NOTIFICATIONS = {frozenset(used): list_notifications_query(used)
                      for count in range(len(LIST_CONDITIONS) + 1)
                      for used in combinations(LIST_CONDITIONS, count)}


async def list_notifications(db: Database, user_id: int, *, unread_only: bool,
                             type: str | None, before: tuple[Any, int] | None,
                             limit: int) -> list[Row]:
    present = {"unread_only": unread_only, "type": type is not None, "before": before is not None}
    query = LIST_NOTIFICATIONS[frozenset(name for name, on in present.items() if on)]
    before_created_at, before_id = before or (None, None)
    return await db.fetch_all(query, {
        "user_id": user_id, "type": type, "before_created_at": before_created_at,
        "before_id": before_id, "limit": limit})


MARK_READ = """
    UPDATE notifications SET is_read = true
    WHERE id = %(id)s AND user_id = %(user_id)s
    RETURNING id
"""


async def mark_read_txn(cur: Cursor, user_id: int, notification_id: int) -> bool:
    """False when there is no such notification of this user (someone else's included)."""
    return await cur.fetch_value(MARK_READ, {"id": notification_id, "user_id": user_id}) \
        is not None


MARK_ALL_READ = """
    UPDATE notifications SET is_read = true WHERE user_id = %(user_id)s AND NOT is_read
"""


async def mark_all_read_txn(cur: Cursor, user_id: int) -> None:
    await cur.execute(MARK_ALL_READ, {"user_id": user_id})


SELECT_PREFERENCES = """
    SELECT notification_type, email, push FROM notification_preferences
    WHERE user_id = %(user_id)s
"""


async def get_preferences(db: Database, user_id: int) -> dict[str, dict[str, bool]]:
    """Every type's channels; an absent row means both on."""
    rows = await db.fetch_all(SELECT_PREFERENCES, {"user_id": user_id})
    stored = {row["notification_type"]: row for row in rows}
    return {channel: {t: bool(stored[t][channel]) if t in stored else True
                      for t in NOTIFICATION_TYPES}
            for channel in ("email", "push")}


async def set_preferences_txn(cur: Cursor, user_id: int, email: Mapping[str, bool],
                              push: Mapping[str, bool]) -> None:
    """Set the given channel switches; types not mentioned keep their setting."""
    await cur.execute("""
        INSERT INTO notification_preferences (user_id, notification_type)
        SELECT %(user_id)s, t FROM unnest(%(types)s::text[]) AS t
        ON CONFLICT (user_id, notification_type) DO NOTHING
    """, {"user_id": user_id, "types": sorted(set(email) | set(push))})
    for channel, switches in (("email", email), ("push", push)):
        if switches:
            await cur.execute(f"""
                UPDATE notification_preferences p SET {channel} = t.enabled
                FROM unnest(%(types)s::text[], %(enabled)s::boolean[]) AS t(type, enabled)
                WHERE p.user_id = %(user_id)s AND p.notification_type = t.type
            """, {"user_id": user_id, "types": list(switches),
                  "enabled": list(switches.values())})


SET_ONE_PREFERENCE = """
    INSERT INTO notification_preferences (user_id, notification_type, email)
    VALUES (%(user_id)s, %(type)s, false)
    ON CONFLICT (user_id, notification_type) DO UPDATE SET email = false
"""


async def turn_email_off(db: Database, user_id: int, type: str) -> None:
    """The one-click unsubscribe: this type's email off for this user."""
    await db.execute(SET_ONE_PREFERENCE, {"user_id": user_id, "type": type})
