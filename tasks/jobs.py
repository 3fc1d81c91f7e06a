"""Job notifications: one to the employer per application, one to each applicant per change,
and the fan-out to every applicant still in the pipeline when a job closes."""

from __future__ import annotations

from typing import Any

from sql.applications import pipeline_batch_txn
from sql.db import Row
from tasks.fanout import enqueue_fanout_txn
from tasks.notify import NewNotification, notify_txn
from tasks.work import Work

JOB_CLOSED = "job_closed"


async def notify_application_received_txn(work: Work, application: Row, job: Row) -> None:
    await notify_txn(work, NewNotification(
        user_id=job["employer_id"], type="application_received",
        actor_id=application["applicant_id"], related_id=application["id"],
        dedup_key=f"application_received:{application['id']}",
        data={"job_id": job["id"], "job_title": job["title"], "application_id": application["id"],
              "path": f"/jobs/{job['id']}/applications"}))


async def notify_application_status_txn(work: Work, application: Row, job_title: str,
                                        changed_by: int, history_key: str) -> None:
    await notify_txn(work, NewNotification(
        user_id=application["applicant_id"], type="application_status", actor_id=changed_by,
        related_id=application["id"], dedup_key=f"application_status:{history_key}",
        data={"job_id": application["job_id"], "job_title": job_title,
              "status": application["status"], "application_id": application["id"],
              "path": f"/applications/{application['id']}"}))


async def enqueue_job_closed_txn(work: Work, job: Row) -> None:
    """One fan-out row per closing; the queue notifies the applicants in batches."""
    closed_at = job["updated_at"].isoformat()
    await enqueue_fanout_txn(work, JOB_CLOSED,
                             {"job_id": job["id"], "job_title": job["title"],
                              "employer_id": job["employer_id"], "closed_at": closed_at},
                             f"job_closed:{job['id']}:{closed_at}")


async def notify_job_closed_batch(work: Work, args: dict[str, Any], after: Any,
                                  batch_size: int) -> Any:
    """Fan-out handler: notify one batch of applicants; where the next batch starts."""
    rows = await pipeline_batch_txn(work.cur, args["job_id"], after or 0, batch_size)
    for row in rows:
        await notify_txn(work, NewNotification(
            # The employer is the actor, so a block between the two stops it like any other
            # notification (rows queued before the employer was recorded have none).
            user_id=row["applicant_id"], type="job_closed", actor_id=args.get("employer_id"),
            related_id=args["job_id"],
            dedup_key=f"job_closed:{args['job_id']}:{args['closed_at']}",
            data={"job_id": args["job_id"], "job_title": args["job_title"],
                  "path": f"/jobs/{args['job_id']}"}))
    return rows[-1]["id"] if len(rows) == batch_size else None
