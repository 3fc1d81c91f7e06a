"""Job applications and their status history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sql.db import Cursor, Database, Row
from sql.jobs import IS_OPEN

APPLICATION_COLUMNS = """
    a.id, a.job_id, a.applicant_id, a.cover_letter, a.resume_url, a.status, a.created_at,
    a.updated_at
"""
FINAL_STATUSES = ("hired", "rejected", "withdrawn")
# Applicants a closed job still concerns: everyone not rejected, hired or withdrawn.
PIPELINE_STATUSES = ("submitted", "reviewed", "interview", "offered")

# Only an open, unexpired job takes applications; the unique (job_id, applicant_id) makes a
# second one (a withdrawn one included) do nothing, also when two arrive at once.
INSERT_APPLICATION = f"""
    INSERT INTO job_applications AS a (job_id, applicant_id, cover_letter, resume_url)
    SELECT j.id, %(applicant_id)s, %(cover_letter)s, %(resume_url)s
    FROM jobs j
    WHERE j.id = %(job_id)s AND {IS_OPEN}
    ON CONFLICT (job_id, applicant_id) DO NOTHING
    RETURNING {APPLICATION_COLUMNS}
"""


async def insert_application_txn(cur: Cursor, **fields: Any) -> Row | None:
    return await cur.fetch_one(INSERT_APPLICATION, fields)


SELECT_APPLY_OBSTACLE = f"""
    SELECT EXISTS (SELECT 1 FROM jobs j WHERE j.id = %(job_id)s) AS job_exists,
           EXISTS (SELECT 1 FROM jobs j WHERE j.id = %(job_id)s AND {IS_OPEN}) AS job_open,
           EXISTS (SELECT 1 FROM job_applications
                   WHERE job_id = %(job_id)s AND applicant_id = %(applicant_id)s) AS applied
"""


async def get_apply_obstacle_txn(cur: Cursor, job_id: int, applicant_id: int) -> Row:
    """Why an application was not inserted: no job, a closed job, or already applied."""
    row = await cur.fetch_one(SELECT_APPLY_OBSTACLE,
                              {"job_id": job_id, "applicant_id": applicant_id})
    assert row is not None
    return row


RECORD_APPLICATION = """
    WITH counted AS (
        UPDATE jobs SET applications_count = applications_count + 1 WHERE id = %(job_id)s
    )
    INSERT INTO application_status_history (application_id, status, changed_by)
    VALUES (%(application_id)s, 'submitted', %(applicant_id)s)
"""


async def record_application_txn(cur: Cursor, application: Row) -> None:
    """The count on the job and the first history entry, in the applying transaction."""
    await cur.execute(RECORD_APPLICATION, {"job_id": application["job_id"],
                                           "application_id": application["id"],
                                           "applicant_id": application["applicant_id"]})


# Visible to its applicant and to the job's owner; to anyone else it does not exist.
SELECT_VISIBLE = f"""
    SELECT {APPLICATION_COLUMNS}, j.employer_id, j.title AS job_title
    FROM job_applications a
    JOIN jobs j ON j.id = a.job_id
    WHERE a.id = %(id)s AND (a.applicant_id = %(viewer_id)s OR j.employer_id = %(viewer_id)s)
"""


async def get_visible_application(db: Database, application_id: int,
                                  viewer_id: int) -> Row | None:
    return await db.fetch_one(SELECT_VISIBLE, {"id": application_id, "viewer_id": viewer_id})


async def lock_visible_application_txn(cur: Cursor, application_id: int,
                                       viewer_id: int) -> Row | None:
    """As above, locked until the transaction ends: status changes serialise on it."""
    return await cur.fetch_one(SELECT_VISIBLE + " FOR UPDATE OF a",
                               {"id": application_id, "viewer_id": viewer_id})


SELECT_HISTORY = """
    SELECT status, changed_by, created_at FROM application_status_history
    WHERE application_id = %(id)s
    ORDER BY created_at, id
"""


async def get_history(db: Database, application_id: int) -> list[Row]:
    return await db.fetch_all(SELECT_HISTORY, {"id": application_id})


CHANGE_STATUS = f"""
    WITH changed AS (
        UPDATE job_applications a SET status = %(status)s, updated_at = now()
        WHERE a.id = %(id)s
        RETURNING {APPLICATION_COLUMNS}
    ), recorded AS (
        INSERT INTO application_status_history (application_id, status, changed_by)
        SELECT id, status, %(changed_by)s FROM changed
    )
    SELECT * FROM changed
"""


async def change_status_txn(cur: Cursor, application_id: int, status: str,
                            changed_by: int) -> Row:
    """Set the status and record who changed it; the caller checked the rules under lock."""
    row = await cur.fetch_one(CHANGE_STATUS, {"id": application_id, "status": status,
                                              "changed_by": changed_by})
    assert row is not None
    return row


LIST_FOR_JOB = f"""
    SELECT {APPLICATION_COLUMNS}
    FROM job_applications a
    WHERE a.job_id = %(job_id)s
      AND (%(status)s::text IS NULL OR a.status = %(status)s)
      AND (%(after_created_at)s::timestamptz IS NULL
           OR (a.created_at, a.id) < (%(after_created_at)s, %(after_id)s))
    ORDER BY a.created_at DESC, a.id DESC
    LIMIT %(limit)s
"""


async def list_for_job(db: Database, job_id: int, status: str | None,
                       after: tuple[datetime, int] | None, limit: int) -> list[Row]:
    after_created_at, after_id = after or (None, None)
    return await db.fetch_all(LIST_FOR_JOB, {
        "job_id": job_id, "status": status, "after_created_at": after_created_at,
        "after_id": after_id, "limit": limit})


LIST_FOR_APPLICANT = f"""
    SELECT {APPLICATION_COLUMNS}
    FROM job_applications a
    WHERE a.applicant_id = %(applicant_id)s
      AND (%(after_created_at)s::timestamptz IS NULL
           OR (a.created_at, a.id) < (%(after_created_at)s, %(after_id)s))
    ORDER BY a.created_at DESC, a.id DESC
    LIMIT %(limit)s
"""


async def list_for_applicant(db: Database, applicant_id: int,
                             after: tuple[datetime, int] | None, limit: int) -> list[Row]:
    after_created_at, after_id = after or (None, None)
    return await db.fetch_all(LIST_FOR_APPLICANT, {
        "applicant_id": applicant_id, "after_created_at": after_created_at,
        "after_id": after_id, "limit": limit})


SELECT_PIPELINE_BATCH = """
    SELECT id, applicant_id FROM job_applications
    WHERE job_id = %(job_id)s AND status IN ('submitted', 'reviewed', 'interview', 'offered')
      AND id > %(after_id)s
    ORDER BY id
    LIMIT %(limit)s
"""


async def pipeline_batch_txn(cur: Cursor, job_id: int, after_id: int, limit: int) -> list[Row]:
    """Applicants still in a job's pipeline, in id order from ``after_id`` (fan-out batches)."""
    return await cur.fetch_all(SELECT_PIPELINE_BATCH,
                               {"job_id": job_id, "after_id": after_id, "limit": limit})
