"""What an admin can do, each one transaction that also writes its audit-log entry.

The effects users notice follow the same paths as the API's own writes: a suspension
revokes the user's tokens (the cached ones after commit, so every process stops accepting
them at once), removing a post forgets its notifications, closing a job notifies its
applicants, retried deliveries wake the queue after commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from service.api.posting import posts_removed_txn, remove_job_posts_txn
from sql import jobs, posts, tokens
from sql.admin_users import reinstate_account_txn, suspend_account_txn
from sql.audit import insert_audit_entry_txn
from sql.deliveries import retry_dead_deliveries_txn, retry_dead_delivery_txn
from sql.moderation import lock_open_report_txn, resolve_report_txn, resolve_reports_on_txn
from tasks.jobs import enqueue_job_closed_txn
from tasks.work import Stores, Work, unit_of_work

RETRY_ALL_BATCH = 1000


async def _audit(work: Work, admin_id: int, action: str, target_type: str | None,
                 target_id: int | None, details: dict[str, Any] | None = None) -> None:
    await insert_audit_entry_txn(work.cur, admin_id, action, target_type, target_id, details)


async def suspend_user_txn(work: Work, admin_id: int, user_id: int) -> bool:
    if not await suspend_account_txn(work.cur, user_id):
        return False
    revoked = await tokens.delete_user_tokens_txn(work.cur, user_id)
    work.token_revoked(*revoked)
    await _audit(work, admin_id, "suspend_user", "user", user_id, {"tokens_revoked": len(revoked)})
    return True


async def reinstate_user(stores: Stores, admin_id: int, user_id: int) -> bool:
    async with unit_of_work(stores, "admin_reinstate_user") as work:
        if not await reinstate_account_txn(work.cur, user_id):
            return False
        await _audit(work, admin_id, "reinstate_user", "user", user_id)
    return True


async def remove_post_txn(work: Work, admin_id: int, post_id: int) -> bool:
    if not await posts.delete_post_txn(work.cur, post_id, admin_id, is_admin=True):
        return False
    await posts_removed_txn(work, [post_id])
    await _audit(work, admin_id, "remove_post", "post", post_id)
    return True


async def remove_comment_txn(work: Work, admin_id: int, comment_id: int) -> bool:
    removed = await posts.delete_comment_txn(work.cur, comment_id, admin_id, is_admin=True)
    if removed is None:
        return False
    if await posts.delete_comment_notification_txn(
            work.cur, removed["post_author_id"], f"post_comment:{comment_id}"):
        work.unread_count_changed("notifications", removed["post_author_id"])
    await _audit(work, admin_id, "remove_comment", "comment", comment_id,
                 {"post_id": removed["post_id"]})
    return True


async def close_job_txn(work: Work, admin_id: int, job_id: int) -> bool:
    """Closing notifies the applicants still in the pipeline, as the owner's closing does."""
    job = await jobs.lock_job_txn(work.cur, job_id)
    if job is None or job["status"] == "closed":
        return False
    row = await jobs.update_job_txn(work.cur, job_id, {"status": "closed"})
    await enqueue_job_closed_txn(work, row)
    work.job_changed(job_id)
    await _audit(work, admin_id, "close_job", "job", job_id, {"title": job["title"]})
    return True


async def delete_job_txn(work: Work, admin_id: int, job_id: int) -> bool:
    job = await jobs.lock_job_txn(work.cur, job_id)
    if job is None:
        return False
    await remove_job_posts_txn(work, job_id)
    await jobs.delete_job_txn(work.cur, job_id)
    work.job_changed(job_id)
    await _audit(work, admin_id, "delete_job", "job", job_id, {"title": job["title"]})
    return True


Action = Callable[[Work, int, int], Awaitable[bool]]
# Each action on a target: the kind of target it takes, and the step inside the transaction.
TARGET_ACTIONS: dict[str, tuple[str, Action]] = {
    "suspend_user": ("user", suspend_user_txn),
    "remove_post": ("post", remove_post_txn),
    "remove_comment": ("comment", remove_comment_txn),
    "close_job": ("job", close_job_txn),
    "delete_job": ("job", delete_job_txn),
}


def actions_for(target_type: str) -> list[str]:
    return [name for name, (kind, _) in TARGET_ACTIONS.items() if kind == target_type]


async def act(stores: Stores, admin_id: int, action: str, target_id: int) -> bool:
    """Suspend a user, remove a post or comment, close or delete a job; this settles the
    open reports about it. False when there was nothing to do (gone, or done already)."""
    target_type, step = TARGET_ACTIONS[action]
    async with unit_of_work(stores, f"admin_{action}") as work:
        if not await step(work, admin_id, target_id):
            return False
        await resolve_reports_on_txn(work.cur, target_type, target_id, admin_id)
    return True


async def act_on_report(stores: Stores, admin_id: int, report_id: int,
                        action: str) -> bool:
    """Act on the report's target, and settle it (and every open report on that target),
    also when the target is already gone. False when the report is not open."""
    async with unit_of_work(stores, f"admin_report_{action}") as work:
        report = await lock_open_report_txn(work.cur, report_id)
        if report is None or action not in actions_for(report["target_type"]):
            return False
        acted = await TARGET_ACTIONS[action][1](work, admin_id, report["target_id"])
        await resolve_reports_on_txn(work.cur, report["target_type"], report["target_id"],
                                     admin_id)
        await _audit(work, admin_id, "resolve_report", "report", report_id,
                     {"target_type": report["target_type"],
                      "target_id": report["target_id"], "action": action, "acted": acted})
    return True


async def resolve_report(stores: Stores, admin_id: int, report_id: int) -> bool:
    """Close the report with no action on its target."""
    async with unit_of_work(stores, "admin_resolve_report") as work:
        report = await lock_open_report_txn(work.cur, report_id)
        if report is None or not await resolve_report_txn(work.cur, report_id, admin_id):
            return False
        await _audit(work, admin_id, "resolve_report", "report", report_id,
                     {"target_type": report["target_type"],
                      "target_id": report["target_id"]})
    return True


async def retry_delivery(stores: Stores, admin_id: int, delivery_id: int) -> bool:
    async with unit_of_work(stores, "admin_retry_delivery") as work:
        if not await retry_dead_delivery_txn(work.cur, delivery_id):
            return False
        work.deliver_after_commit(delivery_id)
        await _audit(work, admin_id, "retry_delivery", "delivery", delivery_id)
    return True


async def retry_dead_deliveries(stores: Stores, admin_id: int) -> int:
    async with unit_of_work(stores, "admin_retry_dead_deliveries") as work:
        retried = await retry_dead_deliveries_txn(work.cur, RETRY_ALL_BATCH)
        work.deliver_after_commit(*retried)
        if retried:
            await _audit(work, admin_id, "retry_dead_deliveries", None, None,
                         {"count": len(retried)})
    return len(retried)
