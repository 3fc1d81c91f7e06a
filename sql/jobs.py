"""Jobs: create, read, update, delete, and the filtered keyset list."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sql.db import Cursor, Database, Row

# An expired job reads as closed in every query: no cron job has to close it.
JOB_COLUMNS = """
    j.id, j.employer_id, j.title, j.description, j.category, j.location, j.employment_type,
    j.remote, j.salary_min, j.salary_max,
    CASE WHEN j.status = 'open' AND j.expires_at > now() THEN 'open' ELSE 'closed' END AS status,
    j.expires_at, j.applications_count, j.created_at, j.updated_at
"""
IS_OPEN = "(j.status = 'open' AND j.expires_at > now())"

# Columns an owner may change with PATCH; the only names ever formatted into SQL.
EDITABLE_COLUMNS = ("title", "description", "category", "location", "employment_type", "remote",
                    "salary_min", "salary_max", "status", "expires_at")

INSERT_JOB = f"""
    INSERT INTO jobs AS j (employer_id, title, description, category, location,
                           employment_type, remote, salary_min, salary_max, expires_at)
    VALUES (%(employer_id)s, %(title)s, %(description)s, %(category)s, %(location)s,
            %(employment_type)s, %(remote)s, %(salary_min)s, %(salary_max)s,
            coalesce(%(expires_at)s, now() + interval '30 days'))
    RETURNING {JOB_COLUMNS}
"""


async def insert_job_txn(cur: Cursor, fields: Mapping[str, Any]) -> Row:
    row = await cur.fetch_one(INSERT_JOB, fields)
    assert row is not None
    return row


SELECT_JOB = f"SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = %(id)s"


async def get_job(db: Database, job_id: int, *, stale_ok: bool = True) -> Row | None:
    return await db.fetch_one(SELECT_JOB, {"id": job_id}, stale_ok=stale_ok)


SELECT_JOBS = f"SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = ANY(%(ids)s::bigint[])"


async def get_jobs(db: Database, job_ids: Collection[int]) -> list[Row]:
    """Several jobs by id in one query (hydrating lists); missing ids are absent."""
    if not job_ids:
        return []
    return await db.fetch_all(SELECT_JOBS, {"ids": list(set(job_ids))}, stale_ok=True)


LOCK_JOB = f"SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = %(id)s FOR UPDATE"


async def lock_job_txn(cur: Cursor, job_id: int) -> Row | None:
    """The job, locked until the transaction ends (updates and applies serialise on it)."""
    return await cur.fetch_one(LOCK_JOB, {"id": job_id})


async def update_job_txn(cur: Cursor, job_id: int, changes: Mapping[str, Any]) -> Row:
    assignments = ", ".join(f"{column} = %({column})s"
                            for column in EDITABLE_COLUMNS if column in changes)
    query = f"""
        UPDATE jobs AS j SET {assignments}, updated_at = now()
        WHERE j.id = %(job_id)s
        RETURNING {JOB_COLUMNS}
    """
    row = await cur.fetch_one(query, {**changes, "job_id": job_id})
    assert row is not None
    return row


DELETE_JOB = "DELETE FROM jobs WHERE id = %(id)s RETURNING id"


async def delete_job_txn(cur: Cursor, job_id: int) -> bool:
    return await cur.fetch_value(DELETE_JOB, {"id": job_id}) is not None


# Filters are fixed fragments chosen by which parameters are given; values always go as
# parameters. Each single filter is served by its (column, created_at DESC, id DESC) index.
FILTERS = {
    "category": "j.category = %(category)s",
    "location": "j.location = %(location)s",
    "employer_id": "j.employer_id = %(employer_id)s",
    "remote": "j.remote = %(remote)s",
    "q": "j.search @@ websearch_to_tsquery('english', %(q)s)",
}
STATUS_FILTERS = {
    "open": "j.status = 'open' AND j.expires_at > now()",
    "closed": "(j.status = 'closed' OR j.expires_at <= now())",
}
RANK = "ts_rank(j.search, websearch_to_tsquery('english', %(q)s))::float8"


def list_jobs_query(filters: Mapping[str, Any], status: str, *, after: bool,
                    ranked: bool) -> str:
    conditions = [STATUS_FILTERS[status]]
    conditions += [FILTERS[name] for name in FILTERS if filters.get(name) is not None]
    if ranked:
        # Best match first, ties newest first; the keyset covers the rank too.
        if after:
            conditions.append(f"({RANK}, j.created_at, j.id) < "
                              "(%(after_rank)s, %(after_created_at)s, %(after_id)s)")
        order = f"{RANK} DESC, j.created_at DESC, j.id DESC"
        extra = f", {RANK} AS rank"
    else:
        if after:
            conditions.append("(j.created_at, j.id) < (%(after_created_at)s, %(after_id)s)")
        order = "j.created_at DESC, j.id DESC"
        extra = ""
    return f"""
        SELECT {JOB_COLUMNS}{extra}
        FROM jobs j
        WHERE {" AND ".join(conditions)}
        ORDER BY {order}
        LIMIT %(limit)s
    """


async def list_jobs(db: Database, filters: Mapping[str, Any], *, status: str,
                    after: tuple[Any, ...] | None, limit: int) -> list[Row]:
    ranked = filters.get("q") is not None
    params: dict[str, Any] = {**filters, "limit": limit}
    if after is not None:
        if ranked:
            params["after_rank"], params["after_created_at"], params["after_id"] = after
        else:
            params["after_created_at"], params["after_id"] = after
    query = list_jobs_query(filters, status, after=after is not None, ranked=ranked)
    return await db.fetch_all(query, params, stale_ok=True)


SELECT_SAVED_AMONG = """
    SELECT job_id FROM saved_jobs WHERE user_id = %(user_id)s AND job_id = ANY(%(ids)s::bigint[])
"""


async def saved_among(db: Database, user_id: int, job_ids: Collection[int]) -> set[int]:
    """Which of these jobs the user saved: the per-user part of a job answer, never cached."""
    if not job_ids:
        return set()
    rows = await db.fetch_all(SELECT_SAVED_AMONG, {"user_id": user_id, "ids": list(job_ids)})
    return {row["job_id"] for row in rows}


SAVE_JOB = """
    INSERT INTO saved_jobs (user_id, job_id) VALUES (%(user_id)s, %(job_id)s)
    ON CONFLICT DO NOTHING
    RETURNING job_id
"""


async def save_job(db: Database, user_id: int, job_id: int) -> bool:
    """True when newly saved; False when it already was. ForeignKeyViolation: no such job."""
    return await db.fetch_one_write(SAVE_JOB, {"user_id": user_id, "job_id": job_id}) is not None


UNSAVE_JOB = "DELETE FROM saved_jobs WHERE user_id = %(user_id)s AND job_id = %(job_id)s"


async def unsave_job(db: Database, user_id: int, job_id: int) -> None:
    await db.execute(UNSAVE_JOB, {"user_id": user_id, "job_id": job_id})


LIST_SAVED_JOBS = f"""
    SELECT {JOB_COLUMNS}, s.created_at AS saved_at
    FROM saved_jobs s
    JOIN jobs j ON j.id = s.job_id
    WHERE s.user_id = %(user_id)s
      AND (%(after_saved_at)s::timestamptz IS NULL
           OR (s.created_at, s.job_id) < (%(after_saved_at)s, %(after_id)s))
    ORDER BY s.created_at DESC, s.job_id DESC
    LIMIT %(limit)s
"""


async def list_saved_jobs(db: Database, user_id: int, after: tuple[datetime, int] | None,
                          limit: int) -> list[Row]:
    after_saved_at, after_id = after or (None, None)
    return await db.fetch_all(LIST_SAVED_JOBS, {
        "user_id": user_id, "after_saved_at": after_saved_at, "after_id": after_id,
        "limit": limit})
