"""The job list, filter and search queries use indexes on a realistic table (EXPLAIN).

The data is built once per test session in a database of its own: 100,000 jobs from 2,000
employers over 50 categories and 200 locations, a tenth closed, a tenth expired, with
100,000 applications, 100,000 saved jobs and 100,000 follows of employers from 5,000 job
seekers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from sql import applications, jobs, users
from tests.explain import analyzed_plan, plan_nodes, scans, seeded_database, walk

SEED = """
    INSERT INTO users (email, password_hash, first_name, last_name, role)
    SELECT 'employer' || g || '@example.com', 'x', 'E', 'Mployer', 'employer'
    FROM generate_series(1, 2000) g;

    INSERT INTO jobs (employer_id, title, description, category, location, employment_type,
                      remote, status, expires_at, created_at)
    SELECT 1 + g % 2000,
           (ARRAY['Python', 'Rust', 'Nurse', 'Cook', 'Driver', 'Teacher'])[1 + g % 6]
               || ' position ' || g,
           'We are hiring for role number ' || g || ' with ' ||
               (ARRAY['postgres', 'kitchen', 'care', 'logistics'])[1 + g % 4],
           'category-' || g % 50, 'city-' || g % 200, 'full_time', g % 3 = 0,
           CASE WHEN g % 10 = 0 THEN 'closed' ELSE 'open' END,
           now() + CASE WHEN g % 10 = 1 THEN interval '-1 day' ELSE interval '20 days' END,
           now() - (g || ' minutes')::interval
    FROM generate_series(1, 100000) g;

    INSERT INTO users (email, password_hash, first_name, last_name, role)
    SELECT 'seeker' || g || '@example.com', 'x', 'S', 'Eeker', 'job_seeker'
    FROM generate_series(1, 5000) g;

    INSERT INTO job_applications (job_id, applicant_id, status)
    SELECT 1 + g % 100000, 2001 + g % 5000,
           (ARRAY['submitted', 'reviewed', 'rejected'])[1 + g % 3]
    FROM generate_series(1, 100000) g
    ON CONFLICT DO NOTHING;

    INSERT INTO saved_jobs (user_id, job_id, created_at)
    SELECT 2001 + g % 5000, 1 + (g * 7) % 100000, now() - (g || ' seconds')::interval
    FROM generate_series(1, 100000) g
    ON CONFLICT DO NOTHING;

    INSERT INTO follows (follower_id, followed_id)
    SELECT 2001 + g % 5000, 1 + (g * 13) % 2000
    FROM generate_series(1, 100000) g
    ON CONFLICT DO NOTHING;

    ANALYZE;
"""


@pytest.fixture(scope="session")
def jobs_seeded(postgres_admin_url: str) -> Iterator[str]:
    yield from seeded_database(postgres_admin_url, "jobs", SEED)


def list_params(**filters: Any) -> dict[str, Any]:
    base = {"category": None, "location": None, "employer_id": None, "remote": None, "q": None}
    return {**base, **filters, "limit": 21}


# Most jobs are open, so the planner may walk either newest-first index and filter; both
# read only about one page of rows.
NEWEST_FIRST = {"jobs_status_created_idx", "jobs_created_idx"}


@pytest.mark.parametrize(("filters", "indexes"), [
    ({}, NEWEST_FIRST),
    ({"category": "category-7"}, {"jobs_category_created_idx"}),
    ({"location": "city-42"}, {"jobs_location_created_idx"}),
    ({"employer_id": 17}, {"jobs_employer_created_idx"}),
    ({"remote": True}, NEWEST_FIRST),
    ({"q": "rust"}, NEWEST_FIRST),
    ({"q": "python", "category": "category-7"}, {"jobs_category_created_idx"}),
])
def test_job_lists_use_their_index(jobs_seeded: str, filters: dict[str, Any],
                                   indexes: set[str]):
    query = jobs.list_jobs_query(filters, "open", after=False)
    found = scans(jobs_seeded, query, list_params(**filters))
    assert ("Seq Scan", "jobs") not in found, found
    assert any(name in indexes for _, name in found), found


# Words every job has ("position"), a sixth has ("rust"), ...: a search walks the
# newest-first index and stops after one page, so the rows it reads stay near the page size
# however many jobs match (ordered by rank, it read every match: 60,000 for "rust").
@pytest.mark.parametrize("filters", [
    {"q": "position"}, {"q": "rust"}, {"q": "hiring role"}, {"q": "python", "remote": True},
])
def test_a_common_word_reads_about_one_page_of_jobs(jobs_seeded: str, filters: dict[str, Any]):
    query = jobs.list_jobs_query(filters, "open", after=False)
    read = rows_read(jobs_seeded, query, list_params(**filters))
    assert read and ("Seq Scan", "jobs") not in read, read
    assert sum(read.values()) <= 300, read


# Words in one job ("54321"), or in none together ("rust" and "postgres" never meet): the
# first step gives up after the window, and the second reads only the matches, from the
# full-text index, whatever the planner guessed of the word.
@pytest.mark.parametrize("q", ["54321", "rust postgres", "12346"])
def test_a_rare_word_reads_the_window_then_only_its_matches(jobs_seeded: str, q: str):
    params = list_params(q=q)
    window = rows_read(jobs_seeded, jobs.list_jobs_query({"q": q}, "open", after=False), params)
    # The window counts listed (open) jobs; the closed and expired fifth between them are
    # read and skipped too.
    assert sum(window.values()) <= jobs.SEARCH_WINDOW * 1.3, window
    found = scans(jobs_seeded, jobs.search_jobs_query({"q": q}, "open", after=False), params)
    assert ("Seq Scan", "jobs") not in found, found
    assert ("Bitmap Index Scan", "jobs_search_idx") in found, found


# A search's full-text index scan reads the index pages of its words, not a pending list of
# recent inserts (GIN's fastupdate): with one, every search read all of it, 329 pages for a
# word with two matches at seed scale 1, where its words' entries take a handful.
@pytest.mark.parametrize("q", ["54321", "12346"])
def test_a_rare_word_reads_a_few_index_pages(jobs_seeded: str, q: str):
    plan = analyzed_plan(jobs_seeded, jobs.search_jobs_query({"q": q}, "open", after=False),
                         list_params(q=q))
    [scan] = [node for node in walk(plan) if node.get("Index Name") == "jobs_search_idx"]
    pages = scan["Shared Hit Blocks"] + scan["Shared Read Blocks"]
    assert pages <= 10, (pages, scan["Index Cond"])


def rows_read(url: str, query: str, params: dict[str, Any]) -> dict[tuple[str, str], int]:
    """Rows each scan of jobs actually read (returned plus removed by its filter), by
    (node type, index or relation), from EXPLAIN ANALYZE."""
    read: dict[tuple[str, str], int] = {}
    for node in walk(analyzed_plan(url, query, params)):
        if "Scan" in node["Node Type"] and node.get("Relation Name") == "jobs":
            key = (node["Node Type"], node.get("Index Name") or "jobs")
            read[key] = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
    return read


def test_a_deep_page_uses_the_index_too(jobs_seeded: str):
    query = jobs.list_jobs_query({}, "open", after=True)
    params = list_params(after_created_at=datetime(2026, 1, 1, tzinfo=UTC), after_id=50_000)
    found = scans(jobs_seeded, query, params)
    assert found and all(node != "Seq Scan" for node, _ in found), found


def test_application_lists_use_their_index(jobs_seeded: str):
    params = {"job_id": 42, "status": None, "after_created_at": None, "after_id": None,
              "limit": 21, "applicant_id": 2042}
    for query in (applications.LIST_FOR_JOB, applications.LIST_FOR_APPLICANT):
        found = scans(jobs_seeded, query, params)
        assert found and all(node != "Seq Scan" for node, _ in found), (query, found)


@pytest.mark.parametrize("filters", [{"category": "category-7"}, {"q": "rust"}])
def test_a_page_as_its_viewer_sees_it_looks_up_each_row(jobs_seeded: str,
                                                          filters: dict[str, Any]):
    """A listed or searched page carries its employers and the viewer's flags: the follow
    and the save are looked up by each row's employer and job, never by reading the viewer's
    whole follow or saved list."""
    for query in (jobs.list_jobs_query(filters, "open", after=False),
                  jobs.search_jobs_query(filters, "open", after=False)):
        nodes = plan_nodes(jobs_seeded, jobs.seen_by_viewer(query),
                           list_params(**filters) | {"viewer_id": 2042})
        for table, key in (("follows", "followed_id = j.employer_id"),
                           ("saved_jobs", "job_id = j.id")):
            found = [node.get("Index Cond", "") for node in nodes
                     if node.get("Relation Name") == table]
            assert found and all(key in condition for condition in found), (table, found)
        assert ("Seq Scan", "users") not in [(node["Node Type"], node.get("Relation Name"))
                                             for node in nodes]


def test_saved_jobs_list_uses_its_index(jobs_seeded: str):
    found = scans(jobs_seeded, jobs.LIST_SAVED_JOBS, {
        "user_id": 2042, "after_saved_at": None, "after_id": None, "limit": 21})
    assert ("Seq Scan", "jobs") not in found and ("Seq Scan", "saved_jobs") not in found



def test_a_cached_job_pages_misses_read_by_primary_keys(jobs_seeded: str):
    """The caller's flags and the employers' profiles of GET /jobs page 1, when not cached."""
    flags = scans(jobs_seeded, jobs.SELECT_JOB_FLAGS, {
        "viewer_id": 2042, "employer_ids": list(range(1, 21)), "job_ids": list(range(1, 21))})
    employers = scans(jobs_seeded, users.SELECT_OWN_USERS, {"ids": list(range(1, 21))})
    assert ("Seq Scan", "saved_jobs") not in flags, flags
    assert ("Seq Scan", "users") not in employers, employers


@pytest.mark.parametrize("generic", [False, True], ids=["custom plan", "generic plan"])
def test_the_viewer_part_of_a_job_page_uses_primary_keys(jobs_seeded: str, generic: bool):
    found = scans(jobs_seeded, jobs.SELECT_VIEWER_PARTS, {
        "viewer_id": 2042, "employer_ids": list(range(1, 21)), "job_ids": list(range(1, 21))},
        generic=generic)
    # follows is empty in this data set (a scan of nothing); users and saved_jobs are not.
    assert ("Seq Scan", "users") not in found and ("Seq Scan", "saved_jobs") not in found, found
