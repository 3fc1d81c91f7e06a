"""Jobs: create, list with filters and keyset pages, get, update, close, delete, save."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from sql.db import Database
from tasks import base64url
from tests.conftest import API, Account, ClientFactory, register
from tests.helpers import JOB, follow, post_job
from tests.statement_counter import StatementCounter


async def ids(client: TestClient[Any, Any], user: Account, **params: str) -> list[int]:
    response = await client.get(f"{API}/jobs", params=params, headers=user.headers)
    assert response.status == 200, await response.text()
    return [job["id"] for job in (await response.json())["items"]]


async def test_employer_posts_a_job(client: TestClient[Any, Any], employer: Account):
    job = await post_job(client, employer)
    assert job["employer"]["id"] == employer.id
    assert job["status"] == "open" and job["applications_count"] == 0
    assert job["saved_by_me"] is False
    assert job["expires_at"] > job["created_at"]
    assert {k: job[k] for k in JOB} == JOB


async def test_job_seekers_cannot_post_jobs(client: TestClient[Any, Any], user: Account):
    response = await client.post(f"{API}/jobs", json=JOB, headers=user.headers)
    assert response.status == 403


async def test_job_validation_reports_every_field(client: TestClient[Any, Any],
                                                  employer: Account, db: Database):
    response = await client.post(f"{API}/jobs", headers=employer.headers, json={
        "title": "", "description": "x" * 20001, "employment_type": "gig",
        "salary_min": -1, "expires_at": "2001-01-01T00:00:00Z"})
    assert response.status == 422
    fields = (await response.json())["error"]["fields"]
    assert set(fields) == {"title", "description", "employment_type", "salary_min"}
    crossed = await client.post(f"{API}/jobs", headers=employer.headers,
                                json=JOB | {"salary_min": 10, "salary_max": 5})
    assert crossed.status == 422
    assert list((await crossed.json())["error"]["fields"]) == ["salary_min"]
    past = await client.post(f"{API}/jobs", headers=employer.headers,
                             json=JOB | {"expires_at": "2001-01-01T00:00:00Z"})
    assert list((await past.json())["error"]["fields"]) == ["expires_at"]
    assert await db.fetch_value("SELECT count(*) FROM jobs") == 0


async def test_list_filters_and_full_text(client: TestClient[Any, Any], employer: Account,
                                          user: Account):
    python = await post_job(client, employer)
    cook = await post_job(client, employer, title="Line cook", description="Grill and sauce",
                          category="kitchen", location="Paris", remote=False)
    other = await register(client, role="employer")
    nurse = await post_job(client, other, title="Night nurse", description="Care for patients",
                           category="health", location="Paris", remote=False)
    assert await ids(client, user) == [nurse["id"], cook["id"], python["id"]]
    assert await ids(client, user, category="kitchen") == [cook["id"]]
    assert await ids(client, user, location="Paris") == [nurse["id"], cook["id"]]
    assert await ids(client, user, employer_id=str(employer.id)) == [cook["id"], python["id"]]
    assert await ids(client, user, remote="true") == [python["id"]]
    assert await ids(client, user, q="python") == [python["id"]]
    assert await ids(client, user, q="patients care") == [nurse["id"]]
    assert await ids(client, user, q="sauce", location="Berlin") == []


async def test_search_answers_newest_first_like_every_list(client: TestClient[Any, Any],
                                                          employer: Account, user: Account):
    # API.md: a jobs page is newest first, searches included (no longer best match first:
    # ranking needs every match, so a common word cost what all its matches cost).
    older_title = await post_job(client, employer, title="Rust developer", description="Code")
    newer_title = await post_job(client, employer, title="Rust engineer", description="Code")
    in_description = await post_job(client, employer, title="Engineer",
                                    description="We love rust here")
    await post_job(client, employer, title="Go developer", description="Code")
    found = await ids(client, user, q="rust")
    assert found == [in_description["id"], newer_title["id"], older_title["id"]]
    first = await client.get(f"{API}/jobs", params={"q": "rust", "limit": "2"},
                             headers=user.headers)
    cursor = (await first.json())["next_cursor"]
    rest = await client.get(f"{API}/jobs", params={"q": "rust", "limit": "2", "cursor": cursor},
                            headers=user.headers)
    assert [job["id"] for job in (await rest.json())["items"]] == [older_title["id"]]


async def test_a_search_cursor_of_the_former_ranked_shape_is_a_400(
        client: TestClient[Any, Any], employer: Account, user: Account):
    await post_job(client, employer)
    # (rank, created_at, id), as next_cursor was when searches were ordered by rank.
    ranked = base64url.encode(json.dumps([0.6, "2026-01-01T00:00:00+00:00", 5]).encode())
    response = await client.get(f"{API}/jobs", params={"q": "backend", "cursor": ranked},
                                headers=user.headers)
    assert response.status == 400
    assert (await response.json())["error"]["fields"] == {"cursor": "is malformed"}


async def test_pages_stay_correct_while_jobs_are_added(client: TestClient[Any, Any],
                                                       employer: Account, user: Account):
    posted = [(await post_job(client, employer, title=f"Job {n}"))["id"] for n in range(5)]
    first = await (await client.get(f"{API}/jobs", params={"limit": "2"},
                                    headers=user.headers)).json()
    assert [job["id"] for job in first["items"]] == posted[:2:-1][:2]
    await post_job(client, employer, title="Inserted meanwhile")
    seen = [job["id"] for job in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = await (await client.get(f"{API}/jobs", params={"limit": "2", "cursor": cursor},
                                       headers=user.headers)).json()
        seen += [job["id"] for job in page["items"]]
        cursor = page["next_cursor"]
    assert seen == list(reversed(posted))


async def test_expired_job_is_closed_everywhere_without_any_job(
        client: TestClient[Any, Any], employer: Account, user: Account):
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    job = await post_job(client, employer, expires_at=soon)
    assert await ids(client, user) == [job["id"]]  # page 1 and the job are cached now
    assert (await client.get(f"{API}/jobs/{job['id']}", headers=user.headers)).status == 200
    await asyncio.sleep(1.2)  # the expiry passes; nothing runs, nothing is invalidated
    assert await ids(client, user) == []
    assert await ids(client, user, status="closed") == [job["id"]]
    answer = await (await client.get(f"{API}/jobs/{job['id']}", headers=user.headers)).json()
    assert answer["status"] == "closed"
    apply = await client.post(f"{API}/jobs/{job['id']}/applications", headers=user.headers,
                              json={"cover_letter": "hi"})
    assert apply.status == 422
    assert list((await apply.json())["error"]["fields"]) == ["job_id"]


async def test_owner_updates_closes_and_reopens(client: TestClient[Any, Any],
                                                employer: Account, user: Account):
    job = await post_job(client, employer)
    path = f"{API}/jobs/{job['id']}"
    assert (await client.get(path, headers=user.headers)).status == 200  # cached
    changed = await client.patch(path, json={"title": "Senior backend engineer"},
                                 headers=employer.headers)
    assert changed.status == 200
    assert (await changed.json())["title"] == "Senior backend engineer"
    seen = await (await client.get(path, headers=user.headers)).json()
    assert seen["title"] == "Senior backend engineer"
    closed = await client.patch(path, json={"status": "closed"}, headers=employer.headers)
    assert (await closed.json())["status"] == "closed"
    assert await ids(client, user) == []
    reopened = await client.patch(path, json={"status": "open"}, headers=employer.headers)
    assert (await reopened.json())["status"] == "open"
    assert await ids(client, user) == [job["id"]]


async def test_only_the_owner_may_change_or_delete(client: TestClient[Any, Any],
                                                   employer: Account, user: Account):
    job = await post_job(client, employer)
    other = await register(client, role="employer")
    path = f"{API}/jobs/{job['id']}"
    assert (await client.patch(path, json={"title": "Mine now"},
                               headers=other.headers)).status == 403
    assert (await client.delete(path, headers=user.headers)).status == 403
    bad = await client.patch(path, json={"salary_min": 100000}, headers=employer.headers)
    assert bad.status == 422
    assert (await client.patch(f"{API}/jobs/999999", json={"title": "x"},
                               headers=employer.headers)).status == 404
    assert (await client.delete(path, headers=employer.headers)).status == 204
    assert (await client.get(path, headers=user.headers)).status == 404
    assert await ids(client, user) == []


async def test_admin_may_delete_any_job(client: TestClient[Any, Any], employer: Account,
                                        db: Database):
    job = await post_job(client, employer)
    admin = await register(client)
    await db.execute("UPDATE users SET is_admin = true WHERE id = %(id)s", {"id": admin.id})
    assert (await client.delete(f"{API}/jobs/{job['id']}", headers=admin.headers)).status == 204


async def test_save_unsave_and_saved_list(client: TestClient[Any, Any], employer: Account,
                                          user: Account):
    first, second = await post_job(client, employer), await post_job(client, employer)
    assert (await client.post(f"{API}/jobs/{first['id']}/save", headers=user.headers)).status \
        == 201
    assert (await client.post(f"{API}/jobs/{first['id']}/save", headers=user.headers)).status \
        == 200
    await client.post(f"{API}/jobs/{second['id']}/save", headers=user.headers)
    assert (await client.post(f"{API}/jobs/999999/save", headers=user.headers)).status == 404
    saved = await (await client.get(f"{API}/me/saved_jobs", params={"limit": "1"},
                                    headers=user.headers)).json()
    assert [job["id"] for job in saved["items"]] == [second["id"]]
    assert saved["items"][0]["saved_by_me"] is True
    rest = await (await client.get(f"{API}/me/saved_jobs",
                                   params={"limit": "1", "cursor": saved["next_cursor"]},
                                   headers=user.headers)).json()
    assert [job["id"] for job in rest["items"]] == [first["id"]] and rest["next_cursor"] is None
    # saved_by_me is per user even on the cached list page.
    mine = await (await client.get(f"{API}/jobs", headers=user.headers)).json()
    theirs = await (await client.get(f"{API}/jobs", headers=employer.headers)).json()
    assert all(job["saved_by_me"] for job in mine["items"])
    assert not any(job["saved_by_me"] for job in theirs["items"])
    assert (await client.delete(f"{API}/jobs/{first['id']}/save",
                                headers=user.headers)).status == 204
    one = await (await client.get(f"{API}/jobs/{first['id']}", headers=user.headers)).json()
    assert one["saved_by_me"] is False


async def test_the_cached_page_follows_every_write_it_shows(
        client: TestClient[Any, Any], employer: Account, user: Account):
    """Page 1 is served from the cache (rows, the caller's flags, the employer's profile);
    each write that changes what it shows is seen by the next read."""
    job = await post_job(client, employer, category="design")

    async def page_job(**params: str) -> dict[str, Any]:
        response = await client.get(f"{API}/jobs", params=params, headers=user.headers)
        [answer] = (await response.json())["items"]
        assert answer["id"] == job["id"]
        return answer  # type: ignore[no-any-return]

    for params in ({}, {"category": "design"}):  # both now cached
        answer = await page_job(**params)
        assert answer["employer"]["followed_by_me"] is False
        assert answer["employer"]["followers_count"] == 0 and answer["saved_by_me"] is False
    writes = [
        (client.patch(f"{API}/me", json={"headline": "Hiring designers"},
                      headers=employer.headers), ("employer", "headline"), "Hiring designers"),
        (client.post(f"{API}/users/{employer.id}/follow", headers=user.headers),
         ("employer", "followed_by_me"), True),
        (client.post(f"{API}/jobs/{job['id']}/save", headers=user.headers),
         ("saved_by_me",), True),
        (client.post(f"{API}/jobs/{job['id']}/applications", json={}, headers=user.headers),
         ("applications_count",), 1),
    ]
    for write, path, expected in writes:
        assert (await write).status in (200, 201)
        for params in ({}, {"category": "design"}):
            answer = await page_job(**params)
            for name in path:
                answer = answer[name]
            assert answer == expected, (path, params)
    answer = await page_job()
    assert answer["employer"]["followers_count"] == 1 and "email" not in answer["employer"]
    assert (await client.delete(f"{API}/users/{employer.id}/follow",
                                headers=user.headers)).status == 204
    assert (await page_job())["employer"]["followed_by_me"] is False
    # The employer's own view of the same cached page: their own flags, not the user's.
    mine = await (await client.get(f"{API}/jobs", headers=employer.headers)).json()
    assert mine["items"][0]["saved_by_me"] is False


async def test_job_list_survives_redis_down(make_client: Any, db: Database):
    from tests.servers import ThrowawayRedis

    with ThrowawayRedis() as redis_server:
        client = await make_client(redis_url=redis_server.url)
        employer = await register(client, role="employer")
        job = await post_job(client, employer)
        redis_server.stop()
        assert await ids(client, employer) == [job["id"]]
        second = await post_job(client, employer)
        assert await ids(client, employer) == [second["id"], job["id"]]


async def test_bad_list_parameters_are_400(client: TestClient[Any, Any], user: Account):
    for params in ({"status": "draft"}, {"remote": "maybe"}, {"employer_id": "0"},
                   {"cursor": "nope"}, {"q": "x" * 101}):
        response = await client.get(f"{API}/jobs", params=params, headers=user.headers)
        assert response.status == 400, params


async def test_a_new_job_is_a_post_in_followers_feeds_until_deleted(
        client: TestClient[Any, Any], employer: Account, user: Account):
    assert (await client.post(f"{API}/users/{employer.id}/follow",
                              headers=user.headers)).status == 201
    job = await post_job(client, employer)

    async def feed() -> list[dict[str, Any]]:
        page = await (await client.get(f"{API}/feed", headers=user.headers)).json()
        return list(page["items"])

    async with asyncio.timeout(10):
        while not (items := await feed()):
            await asyncio.sleep(0.05)
    [post] = items
    assert post["post_type"] == "job" and post["related_job_id"] == job["id"]
    assert post["author"]["id"] == employer.id
    assert (await client.delete(f"{API}/jobs/{job['id']}", headers=employer.headers)).status \
        == 204
    assert await feed() == []
    assert (await client.get(f"{API}/posts/{post['id']}", headers=user.headers)).status == 404


async def test_a_filtered_page_is_one_statement_with_the_callers_flags(
        client: TestClient[Any, Any], employer: Account, user: Account, db: Database,
        make_client: ClientFactory, statement_counter: StatementCounter):
    """Each job of a listed or searched page carries its employer as the caller sees them and
    the caller's saved flag, in the page's own query, whatever the page's size."""
    other = await register(client, role="employer")
    for n in range(30):
        await post_job(client, employer if n % 2 else other, title=f"Welder {n}",
                       category="metal")
    listed = await ids(client, user, category="metal", limit="30")
    await client.post(f"{API}/jobs/{listed[3]}/save", headers=user.headers)
    await follow(client, user, employer.id)
    measured = await make_client(database_url=await statement_counter.start(),
                                 delivery_sweep_seconds=3600)

    async def page(**params: str) -> list[dict[str, Any]]:
        response = await measured.get(f"{API}/jobs", params=params, headers=user.headers)
        assert response.status == 200, await response.text()
        return (await response.json())["items"]  # type: ignore[no-any-return]

    try:
        await page(category="metal", limit="1")  # warm: the token is cached
        for params in ({"category": "metal", "limit": "2"}, {"category": "metal", "limit": "25"},
                       {"q": "welder", "limit": "25"}):
            statement_counter.queries.clear()
            items = await page(**params)
            assert len([q for q in statement_counter.queries if "outbox" not in q]) == 1
            assert len(items) == int(params["limit"])
        for item in await page(category="metal", limit="30"):
            assert item["saved_by_me"] is (item["id"] == listed[3])
            assert item["employer"]["followed_by_me"] is (item["employer"]["id"] == employer.id)
    finally:
        await measured.close()  # before the proxy under it stops
