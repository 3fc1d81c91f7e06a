"""Deliver one claimed outbox row: re-read what it refers to, check it is still wanted, send.

Rows carry ids, not rendered content: the user, the notification and the subscription are
read again just before sending, so a notification read in the app, a preference turned off
or a suspended account stops the delivery (recorded as skipped, with the reason).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from email.mime.multipart import MIMEMultipart
from typing import Any

import jinja2

from sql.alerts import get_alert_jobs_to_send
from sql.db import Database, Row
from sql.notifications import get_delivery_context
from sql.push import delete_subscription, get_subscription
from tasks.email import EmailSender
from tasks.fanout import Fanouts, run_fanout
from tasks.mail_render import ACCOUNT_EMAIL_TYPES, outbox_message_id, render_email
from tasks.outcome import Outcome
from tasks.push import PushSender, is_subscription_gone
from tasks.queue import Claim
from tasks.settings import TaskSettings
from tasks.unsubscribe import make_unsubscribe_token, unsubscribe_url

log = logging.getLogger(__name__)

PUSH_TTL_SECONDS = 24 * 3600
PUSH_TEXT = {
    "follow": ("New follower", "{actor} started following you"),
    "post_like": ("New like", "{actor} liked your post"),
    "post_comment": ("New comment", "{actor} commented on your post"),
    "application_received": ("New application", "{actor} applied to {job_title}"),
    "application_status": ("Application update",
                           "Your application for {job_title} is now {status}"),
    "job_closed": ("Job closed", "{job_title} is no longer open"),
    "message": ("New message", "{actor}: {preview}"),
}


class OutboxDispatcher:
    """The queue's ``deliver`` callable: dispatches a claim by its kind."""

    def __init__(self, settings: TaskSettings, db: Database, email: EmailSender,
                 push: PushSender, fanouts: Fanouts) -> None:
        self.settings = settings
        self.db = db
        self.email = email
        self.push = push
        self.fanouts = fanouts

    async def __call__(self, claim: Claim) -> Outcome:
        if claim.kind == "email":
            return await self.deliver_email(claim)
        if claim.kind == "push":
            return await self.deliver_push(claim)
        return await run_fanout(self.fanouts, claim)

    async def deliver_email(self, claim: Claim) -> Outcome:
        payload = claim.payload
        row = await get_delivery_context(self.db, payload["user_id"],
                                         payload.get("notification_id"),
                                         payload.get("unread_message_id"))
        skip = why_not_send(row, payload.get("notification_id"), channel="email")
        if skip or row is None:
            return Outcome.skipped(skip or "user deleted")
        extra = payload.get("context", {})
        if payload["email_type"] == "job_alert":
            extra = await self.job_alert_context(row["user_id"], extra)
            if isinstance(extra, Outcome):
                return extra
        try:
            message = self.render(claim.id, payload["email_type"], row, extra)
        except (ValueError, KeyError, jinja2.TemplateError) as error:
            log.exception("outbox row %s cannot be rendered", claim.id)
            return Outcome.dead(f"render failed: {type(error).__name__}: {error}")
        return await self.email.send(message)

    async def job_alert_context(self, user_id: int,
                                extra: dict[str, Any]) -> dict[str, Any] | Outcome:
        """The alert's jobs still open right now; skipped if the alert or every job is gone."""
        rows = await get_alert_jobs_to_send(self.db, user_id, extra["alert_id"], extra["job_ids"])
        if rows is None:
            return Outcome.skipped("alert deleted")
        if not rows:
            return Outcome.skipped("jobs closed")
        base = self.settings.public_base_url.rstrip("/")
        jobs = [{"title": row["title"], "location": row["location"],
                 "url": f"{base}/jobs/{row['id']}"} for row in rows]
        return {**extra, "jobs": jobs, "alert_url": f"{base}/job_alerts"}

    def render(self, outbox_id: int, email_type: str, row: Row,
               extra: dict[str, Any]) -> MIMEMultipart:
        unsubscribe = None
        if email_type not in ACCOUNT_EMAIL_TYPES:
            token = make_unsubscribe_token(self.settings.secret_key, row["user_id"], email_type,
                                           extra.get("alert_id"))
            unsubscribe = unsubscribe_url(self.settings.public_base_url, token)
        return render_email(
            email_type, self.email_context(email_type, row, extra), to=row["email"],
            mail_from=self.settings.mail_from,
            message_id=outbox_message_id(outbox_id, self.settings.mail_from),
            unsubscribe_url=unsubscribe)

    def email_context(self, email_type: str, row: Row, extra: dict[str, Any]) -> dict[str, Any]:
        base = self.settings.public_base_url.rstrip("/")
        data = row["data"] or {}
        context: dict[str, Any] = {"first_name": row["first_name"], **data, **extra}
        context.setdefault("url", base + data.get("path", "/notifications"))
        if row["actor_first_name"] is not None:
            actor = f"{row['actor_first_name']} {row['actor_last_name']}"
            context.update(applicant_name=actor, sender_name=actor)
        if email_type == "welcome":
            context["verify_url"] = f"{base}/verify-email?token={extra['verify_token']}"
        elif email_type == "password_reset":
            context["reset_url"] = f"{base}/reset-password?token={extra['reset_token']}"
        return context

    async def deliver_push(self, claim: Claim) -> Outcome:
        payload = claim.payload
        subscription = await get_subscription(self.db, payload["subscription_id"])
        if subscription is None:
            return Outcome.skipped("subscription removed")
        row = await get_delivery_context(self.db, subscription["user_id"],
                                         payload["notification_id"])
        skip = why_not_send(row, payload["notification_id"], channel="push")
        if skip or row is None:
            return Outcome.skipped(skip or "user deleted")
        outcome = await self.push.send(
            subscription["endpoint"], subscription["p256dh"], subscription["auth"],
            self.push_message(row), topic=payload["topic"], ttl=PUSH_TTL_SECONDS)
        if is_subscription_gone(outcome):
            await delete_subscription(self.db, subscription["id"])
        return outcome

    def push_message(self, row: Row) -> dict[str, Any]:
        data = row["data"] or {}
        title, body = PUSH_TEXT[row["notification_type"]]
        names: defaultdict[str, str] = defaultdict(str, {k: str(v) for k, v in data.items()})
        if row["actor_first_name"] is not None:
            names["actor"] = f"{row['actor_first_name']} {row['actor_last_name']}"
        base = self.settings.public_base_url.rstrip("/")
        return {"type": row["notification_type"], "title": title,
                "body": body.format_map(names), "url": base + data.get("path", "/notifications"),
                "notification_id": row["notification_id"]}


def why_not_send(row: Row | None, notification_id: int | None, channel: str) -> str | None:
    """The reason this delivery is no longer wanted, or None to go ahead."""
    if row is None:
        return "user deleted"
    if row["suspended_at"] is not None:
        return "user suspended"
    if notification_id is None:
        return None
    if row["notification_id"] is None:
        return "notification deleted"
    if row["is_read"] or row["message_read"]:
        return "read in app"
    if not row[f"{channel}_enabled"]:
        return "preference off"
    return None
