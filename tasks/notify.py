"""The one way to notify: in-app row + email and push deliveries, inside the caller's work.

Every feature calls ``notify_txn`` (or ``enqueue_email_txn`` for account emails that are not
notifications, ``enqueue_alert_email_txn`` for job alerts) with its open unit of work; nothing
else writes notifications or outbox rows.
The rows commit with the change that causes them, and the queue delivers them after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sql.notifications import NOTIFICATION_TYPES, EmailDelivery, insert_notification_txn
from sql.outbox import insert_outbox_txn
from tasks.mail_render import ACCOUNT_EMAIL_TYPES
from tasks.work import Work

# Notification types that also have an email (API.md, "Email"); the others are in-app + push.
EMAIL_FOR_TYPE = frozenset({"application_received", "application_status", "job_closed",
                            "message"})


@dataclass(frozen=True)
class NewNotification:
    """Something that happened to ``user_id``, caused by ``actor_id``."""

    user_id: int
    type: str
    actor_id: int | None = None
    related_id: int | None = None
    data: dict[str, Any] | None = None
    dedup_key: str | None = None  # the same key never notifies twice
    refresh: bool = False  # a repeat brings the one notification back unread (messages)
    event_key: str | None = None  # names this occurrence in idempotency keys
    topic: str | None = None  # push Topic: a newer push with it replaces an undelivered one
    email: bool = True
    push: bool = True
    email_delay_seconds: float = 0
    email_key: str | None = None  # overrides the email's idempotency key (one per streak)
    # A reminder about this message: its email is not sent once the message has been read.
    unread_message_id: int | None = None


async def notify_txn(work: Work, event: NewNotification) -> int | None:
    """Write the notification and its deliveries; the notification id, or None on a repeat.

    Also None, with nothing written, when the user and the actor block each other either way:
    the insert checks ``blocks`` in its own WHERE (sql/notifications.py), so no caller has to.
    """
    if event.type not in NOTIFICATION_TYPES:
        raise ValueError(f"unknown notification type {event.type!r}")
    email = None
    if event.email and event.type in EMAIL_FOR_TYPE:
        extra = ({} if event.unread_message_id is None
                 else {"unread_message_id": event.unread_message_id})
        email = EmailDelivery(key=event.email_key, delay_seconds=event.email_delay_seconds,
                              extra=extra)
    inserted = await insert_notification_txn(
        work.cur, user_id=event.user_id, type=event.type, actor_id=event.actor_id,
        related_id=event.related_id, data=event.data or {}, dedup_key=event.dedup_key,
        refresh=event.refresh, push=event.push, topic=event.topic, occurrence=event.event_key,
        email=email)
    if inserted is None:
        return None
    notification_id, delivery_ids = inserted
    work.unread_count_changed("notifications", event.user_id)
    work.live_event(event.user_id, "notification", notification_id)
    work.deliver_after_commit(*delivery_ids)
    return notification_id


async def enqueue_email_txn(work: Work, email_type: str, user_id: int,
                            context: dict[str, Any], idempotency_key: str) -> None:
    """An account email (welcome, password reset): always sent, no preference applies."""
    if email_type not in ACCOUNT_EMAIL_TYPES:
        raise ValueError(f"{email_type!r} is sent through notify_txn")
    payload = {"email_type": email_type, "user_id": user_id, "context": context}
    row_id = await insert_outbox_txn(work.cur, "email", payload, f"email:{idempotency_key}")
    work.deliver_after_commit(row_id)


async def enqueue_alert_email_txn(work: Work, user_id: int, alert_id: int,
                                  job_ids: list[int]) -> None:
    """A job alert's email (ids only: the jobs still open are read again just before sending).

    No notification and no preference: the alert itself is the subscription, and its
    unsubscribe link deletes it. The key makes a rerun of the same run a no-op.
    """
    payload = {"email_type": "job_alert", "user_id": user_id,
               "context": {"alert_id": alert_id, "job_ids": job_ids}}
    key = f"email:job_alert:{alert_id}:{max(job_ids)}"
    work.deliver_after_commit(await insert_outbox_txn(work.cur, "email", payload, key))
