"""Jobs: create, read, update, delete, and the filtered keyset list."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sql.db import Cursor, Database, Prepared, Row
from sql.social import FOLLOWS_LOOKUP
from sql.users import PROFILE_COLUMNS, prefixed_profile_columns

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
}
MATCHES = "j.search @@ websearch_to_tsquery('english', %(q)s)"
STATUS_FILTERS = {
    "open": "j.status = 'open' AND j.expires_at > now()",
    "closed": "(j.status = 'closed' OR j.expires_at <= now())",
}
# A search first tests this many of the newest listed jobs; a word that fills the page from
# them (one job in 50 or more) never costs more, whatever the number of its matches.
SEARCH_WINDOW = 1000


def _conditions(filters: Mapping[str, Any], status: str, after: bool) -> list[str]:
    conditions = [STATUS_FILTERS[status]]
    conditions += [FILTERS[name] for name in FILTERS if filters.get(name) is not None]
    if after:
        conditions.append("(j.created_at, j.id) < (%(after_created_at)s, %(after_id)s)")
    return conditions


def list_jobs_query(filters: Mapping[str, Any], status: str, *, after: bool) -> str:
    """One page, newest first: the index of the filter, read for one page of rows.

    With ``q`` this is the first step of a search: the match test runs on the newest
    SEARCH_WINDOW jobs only, so a common word costs about a page (see ``list_jobs``).
    """
    where = " AND ".join(_conditions(filters, status, after))
    if filters.get("q") is None:
        return f"""
            SELECT {JOB_COLUMNS} FROM jobs j WHERE {where}
            ORDER BY j.created_at DESC, j.id DESC LIMIT %(limit)s
        """
    # The window's LIMIT fences the match test off from the planner's guess of how common
    # the word is: it always walks the newest-first index, and stops after one page of
    # matches or SEARCH_WINDOW rows, whichever comes first.
    return f"""
        SELECT {JOB_COLUMNS}
        FROM (SELECT * FROM jobs j WHERE {where}
              ORDER BY j.created_at DESC, j.id DESC LIMIT {SEARCH_WINDOW}) j
        WHERE {MATCHES}
        ORDER BY j.created_at DESC, j.id DESC LIMIT %(limit)s
    """


def search_jobs_query(filters: Mapping[str, Any], status: str, *, after: bool) -> str:
    """The second step of a search, for a word too rare to fill a page from the window: its
    few matches from the full-text index (jobs_search_idx), filtered, then sorted.

    MATERIALIZED keeps the planner from walking the newest-first index here on a guess that
    the word is common: it is known to be rare among the newest jobs.
    """
    where = " AND ".join(_conditions(filters, status, after))
    return f"""
        WITH matches AS MATERIALIZED (SELECT j.id FROM jobs j WHERE {MATCHES})
        SELECT {JOB_COLUMNS}
        FROM matches m JOIN jobs j ON j.id = m.id
        WHERE {where}
        ORDER BY j.created_at DESC, j.id DESC LIMIT %(limit)s
    """


EMPLOYER_PREFIX = "employer_"
EMPLOYER_COLUMNS = prefixed_profile_columns(EMPLOYER_PREFIX, "u", with_id=False)


def seen_by_viewer(page: str) -> str:
    """A page of jobs as one viewer sees it: each row with its employer's profile
    (``employer_`` columns), whether the viewer follows the employer and saved the job, by
    primary-key lookups per row of the page, never the viewer's whole follow or saved list.
    Read where the page is (a replica may answer): the caller's own fresh saves and follows
    are still seen, as a caller who wrote in the last seconds reads the primary
    (service/freshness.py)."""
    return f"""
    SELECT page.*, {EMPLOYER_COLUMNS},
           followed.yes IS NOT NULL AS employer_followed_by_me,
           saved.yes IS NOT NULL AS saved_by_me
    FROM ({page}) AS page
    JOIN users u ON u.id = page.employer_id
    {FOLLOWS_LOOKUP.format(follower="%(viewer_id)s", followed="page.employer_id",
                           alias="followed")}
    LEFT JOIN LATERAL (
        SELECT true AS yes FROM saved_jobs s
        WHERE s.user_id = %(viewer_id)s AND s.job_id = page.id
        LIMIT 1
    ) AS saved ON true
    ORDER BY page.created_at DESC, page.id DESC
"""


async def list_jobs(db: Database, filters: Mapping[str, Any], *, status: str,
                    after: tuple[datetime, int] | None, limit: int,
                    viewer_id: int | None = None) -> list[Row]:
    """Newest first, searches included (API.md); never more than two bounded queries. With
    ``viewer_id``, each row is as that viewer sees it (``seen_by_viewer``), in the same query.

    A search is not ordered by ts_rank: ranking needs every match, so a common word would
    cost what its tens of thousands of matches cost. Newest first, a common word fills the
    page from the newest jobs; a rare one, from its few matches in the full-text index.
    """
    params: dict[str, Any] = {**filters, "limit": limit, "viewer_id": viewer_id}
    if after is not None:
        params["after_created_at"], params["after_id"] = after

    def seen(page: str) -> str:
        return page if viewer_id is None else seen_by_viewer(page)

    query = seen(list_jobs_query(filters, status, after=after is not None))
    rows = await db.fetch_all(query, params, stale_ok=True)
    if filters.get("q") is None or len(rows) == limit:
        return rows
    query = seen(search_jobs_query(filters, status, after=after is not None))
    return await db.fetch_all(query, params, stale_ok=True)


# The per-viewer part of a page of job answers in one round trip: the employers' public
# profiles with followed_by_me (follows primary key), and which of the jobs the viewer saved
# (saved_jobs primary key), an uncorrelated subquery PostgreSQL runs once.
SELECT_VIEWER_PARTS = f"""
    SELECT {PROFILE_COLUMNS},
           EXISTS (SELECT 1 FROM follows f
                   WHERE f.follower_id = %(viewer_id)s AND f.followed_id = u.id) AS followed_by_me,
           ARRAY(SELECT s.job_id FROM saved_jobs s
                 WHERE s.user_id = %(viewer_id)s AND s.job_id = ANY(%(job_ids)s::bigint[])
                ) AS saved_job_ids
    FROM users u
    WHERE u.id = ANY(%(employer_ids)s::bigint[])
"""

PREPARED_SELECT_VIEWER_PARTS = Prepared("job_viewer_parts", SELECT_VIEWER_PARTS)


async def get_viewer_parts(db: Database, viewer_id: int, employer_ids: Collection[int],
                           job_ids: Collection[int]) -> tuple[dict[int, Row], set[int]]:
    """Employers' profiles as the viewer sees them, and which of the jobs the viewer saved:
    the per-user part of job answers, never cached. Read from the primary, so a save is
    seen by the saver's next read."""
    if not employer_ids:
        return {}, set()
    rows = await db.fetch_all(PREPARED_SELECT_VIEWER_PARTS, {
        "viewer_id": viewer_id, "employer_ids": list(set(employer_ids)),
        "job_ids": list(job_ids)})
    saved = set(rows[0]["saved_job_ids"]) if rows else set()
    return {row["id"]: row for row in rows}, saved


SELECT_JOB_FLAGS = """
    SELECT ARRAY(SELECT s.job_id FROM saved_jobs s
                 WHERE s.user_id = %(viewer_id)s AND s.job_id = ANY(%(job_ids)s::bigint[])
                ) AS saved,
           ARRAY(SELECT f.followed_id FROM follows f
                 WHERE f.follower_id = %(viewer_id)s
                   AND f.followed_id = ANY(%(employer_ids)s::bigint[])) AS followed
"""


async def get_job_flags(db: Database, viewer_id: int, job_ids: Collection[int],
                        employer_ids: Collection[int]) -> tuple[list[int], list[int]]:
    """Which of the jobs the viewer saved and which of the employers they follow (primary
    keys of saved_jobs and follows), read from the primary: the answer is cached."""
    row = await db.fetch_one(SELECT_JOB_FLAGS, {
        "viewer_id": viewer_id, "job_ids": list(job_ids), "employer_ids": list(employer_ids)})
    assert row is not None  # a SELECT without FROM answers one row
    return list(row["saved"]), list(row["followed"])


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
