"""Applications: apply, lists, the status pipeline with its notifications, withdraw."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from sql.db import Database
from tests.conftest import API, Account, register
from tests.helpers import post_job
from tests.smtp_sink import SmtpSink


async def apply(client: TestClient[Any, Any], seeker: Account, job_id: int,
                **body: Any) -> Any:
    return await client.post(f"{API}/jobs/{job_id}/applications", headers=seeker.headers,
                             json={"cover_letter": "I would love to", **body})


async def notification_types(client: TestClient[Any, Any], account: Account) -> list[str]:
    page = await (await client.get(f"{API}/notifications", headers=account.headers)).json()
    return [item["type"] for item in page["items"]]


async def emails_of_type(sink: SmtpSink, kind: str, count: int) -> list[Any]:
    async with asyncio.timeout(10):
        while len(found := [m for m in sink.messages if m["X-Hireme-Type"] == kind]) < count:
            await asyncio.sleep(0.05)
    return found


async def test_apply_counts_notifies_and_emails_the_employer(
        client: TestClient[Any, Any], employer: Account, user: Account, smtp_sink: SmtpSink):
    job = await post_job(client, employer)
    assert (await client.get(f"{API}/jobs/{job['id']}", headers=user.headers)).status == 200
    response = await apply(client, user, job["id"], resume_url="https://cv.example/ada.pdf")
    assert response.status == 201
    application = await response.json()
    assert application["status"] == "submitted" and application["applicant_id"] == user.id
    seen = await (await client.get(f"{API}/jobs/{job['id']}", headers=user.headers)).json()
    assert seen["applications_count"] == 1
    assert await notification_types(client, employer) == ["application_received"]
    [email] = await emails_of_type(smtp_sink, "application_received", 1)
    assert email["To"] == employer.email
    assert "Backend engineer" in email.get_body(("plain",)).get_content()


async def test_apply_errors(client: TestClient[Any, Any], employer: Account, user: Account):
    job = await post_job(client, employer)
    assert (await apply(client, employer, job["id"])).status == 403
    assert (await apply(client, user, 999999)).status == 404
    bad = await apply(client, user, job["id"], cover_letter="x" * 10001, resume_url="ftp://x")
    assert bad.status == 422
    assert set((await bad.json())["error"]["fields"]) == {"cover_letter", "resume_url"}
    first = await apply(client, user, job["id"])
    assert first.status == 201
    assert (await apply(client, user, job["id"])).status == 409
    withdrawn = await client.delete(f"{API}/applications/{(await first.json())['id']}",
                                    headers=user.headers)
    assert withdrawn.status == 204
    assert (await apply(client, user, job["id"])).status == 409  # withdrawn still counts


async def test_two_concurrent_applies_give_one_201_and_one_409(
        client: TestClient[Any, Any], employer: Account, user: Account, db: Database):
    job = await post_job(client, employer)
    first, second = await asyncio.gather(apply(client, user, job["id"]),
                                         apply(client, user, job["id"]))
    assert sorted([first.status, second.status]) == [201, 409]
    assert await db.fetch_value("SELECT applications_count FROM jobs") == 1


async def test_status_pipeline_notifies_the_applicant_and_keeps_history(
        client: TestClient[Any, Any], employer: Account, user: Account, smtp_sink: SmtpSink):
    job = await post_job(client, employer)
    application = await (await apply(client, user, job["id"])).json()
    path = f"{API}/applications/{application['id']}"
    for status in ("reviewed", "interview", "offered", "hired"):
        response = await client.patch(path, json={"status": status}, headers=employer.headers)
        assert response.status == 200, await response.text()
        assert (await response.json())["status"] == status
    final = await client.patch(path, json={"status": "rejected"}, headers=employer.headers)
    assert final.status == 422
    answer = await (await client.get(path, headers=user.headers)).json()
    assert [entry["status"] for entry in answer["history"]] == [
        "submitted", "reviewed", "interview", "offered", "hired"]
    assert answer["history"][1]["changed_by"] == employer.id
    assert await notification_types(client, user) == ["application_status"] * 4
    emails = await emails_of_type(smtp_sink, "application_status", 4)
    assert {email["To"] for email in emails} == {user.email}


async def test_who_may_see_and_change_an_application(client: TestClient[Any, Any],
                                                     employer: Account, user: Account):
    job = await post_job(client, employer)
    application = await (await apply(client, user, job["id"])).json()
    path = f"{API}/applications/{application['id']}"
    stranger = await register(client, role="employer")
    assert (await client.get(path, headers=stranger.headers)).status == 404
    assert (await client.patch(path, json={"status": "reviewed"},
                               headers=stranger.headers)).status == 404
    assert (await client.delete(path, headers=stranger.headers)).status == 404
    assert (await client.patch(path, json={"status": "hired"},
                               headers=user.headers)).status == 403
    assert (await client.delete(path, headers=employer.headers)).status == 403
    assert (await client.patch(path, json={"status": "withdrawn"},
                               headers=employer.headers)).status == 422
    listing = await client.get(f"{API}/jobs/{job['id']}/applications",
                               headers=stranger.headers)
    assert listing.status == 403


async def test_withdraw_keeps_the_application_and_its_history(
        client: TestClient[Any, Any], employer: Account, user: Account):
    job = await post_job(client, employer)
    application = await (await apply(client, user, job["id"])).json()
    path = f"{API}/applications/{application['id']}"
    assert (await client.delete(path, headers=user.headers)).status == 204
    answer = await (await client.get(path, headers=employer.headers)).json()
    assert answer["status"] == "withdrawn"
    assert [entry["status"] for entry in answer["history"]] == ["submitted", "withdrawn"]
    assert (await client.delete(path, headers=user.headers)).status == 422
    assert (await client.patch(path, json={"status": "reviewed"},
                               headers=employer.headers)).status == 422


async def test_employer_list_with_status_filter_and_own_list_with_job(
        client: TestClient[Any, Any], employer: Account):
    job = await post_job(client, employer)
    seekers = [await register(client) for _ in range(3)]
    applied = [(await (await apply(client, s, job["id"])).json())["id"] for s in seekers]
    await client.patch(f"{API}/applications/{applied[0]}", json={"status": "rejected"},
                       headers=employer.headers)
    path = f"{API}/jobs/{job['id']}/applications"
    page = await (await client.get(path, params={"limit": "2"}, headers=employer.headers)).json()
    assert [item["id"] for item in page["items"]] == applied[:0:-1]
    assert page["items"][0]["applicant"]["id"] == seekers[2].id
    rest = await (await client.get(path, params={"limit": "2", "cursor": page["next_cursor"]},
                                   headers=employer.headers)).json()
    assert [item["id"] for item in rest["items"]] == [applied[0]]
    rejected = await (await client.get(path, params={"status": "rejected"},
                                       headers=employer.headers)).json()
    assert [item["id"] for item in rejected["items"]] == [applied[0]]
    mine = await (await client.get(f"{API}/me/applications",
                                   headers=seekers[1].headers)).json()
    assert [item["id"] for item in mine["items"]] == [applied[1]]
    assert mine["items"][0]["job"]["title"] == "Backend engineer"


async def test_closing_notifies_applicants_still_in_the_pipeline(
        client: TestClient[Any, Any], employer: Account, smtp_sink: SmtpSink, db: Database):
    job = await post_job(client, employer)
    seekers = [await register(client) for _ in range(4)]
    applied = [(await (await apply(client, s, job["id"])).json())["id"] for s in seekers]
    await client.patch(f"{API}/applications/{applied[0]}", json={"status": "rejected"},
                       headers=employer.headers)
    await client.delete(f"{API}/applications/{applied[1]}", headers=seekers[1].headers)
    await client.patch(f"{API}/applications/{applied[2]}", json={"status": "interview"},
                       headers=employer.headers)
    closed = await client.patch(f"{API}/jobs/{job['id']}", json={"status": "closed"},
                                headers=employer.headers)
    assert closed.status == 200
    emails = await emails_of_type(smtp_sink, "job_closed", 2)
    assert {email["To"] for email in emails} == {seekers[2].email, seekers[3].email}
    for seeker in seekers[2:]:
        assert "job_closed" in await notification_types(client, seeker)
    for seeker in seekers[:2]:
        assert "job_closed" not in await notification_types(client, seeker)
    assert await db.fetch_value(
        "SELECT status FROM outbox WHERE kind = 'fanout'") == "sent"


async def test_closing_does_not_notify_an_applicant_either_side_blocked(
        client: TestClient[Any, Any], employer: Account, smtp_sink: SmtpSink, db: Database):
    job = await post_job(client, employer)
    blocked, blocker, other = [await register(client) for _ in range(3)]
    for seeker in (blocked, blocker, other):
        assert (await apply(client, seeker, job["id"])).status == 201
    await client.post(f"{API}/users/{blocked.id}/block", headers=employer.headers)
    await client.post(f"{API}/users/{employer.id}/block", headers=blocker.headers)
    await client.patch(f"{API}/jobs/{job['id']}", json={"status": "closed"},
                       headers=employer.headers)
    emails = await emails_of_type(smtp_sink, "job_closed", 1)
    assert [email["To"] for email in emails] == [other.email]
    assert "job_closed" in await notification_types(client, other)
    for seeker in (blocked, blocker):
        assert "job_closed" not in await notification_types(client, seeker)


async def test_closing_fans_out_in_batches(client: TestClient[Any, Any], employer: Account,
                                           db: Database):
    job = await post_job(client, employer)
    await db.execute("""
        WITH seekers AS (
            INSERT INTO users (email, password_hash, first_name, last_name, role)
            SELECT 'seeker' || g || '@example.com', 'x', 'S', 'K', 'job_seeker'
            FROM generate_series(1, 1200) g RETURNING id)
        INSERT INTO job_applications (job_id, applicant_id) SELECT %(job)s, id FROM seekers
    """, {"job": job["id"]})
    await client.patch(f"{API}/jobs/{job['id']}", json={"status": "closed"},
                       headers=employer.headers)
    async with asyncio.timeout(30):
        while await db.fetch_value("SELECT status FROM outbox WHERE kind = 'fanout'") != "sent":
            await asyncio.sleep(0.1)
    assert await db.fetch_value(
        "SELECT count(*) FROM notifications WHERE notification_type = 'job_closed'") == 1200
    assert await db.fetch_value(
        "SELECT payload->'after' FROM outbox WHERE kind = 'fanout'") is None
