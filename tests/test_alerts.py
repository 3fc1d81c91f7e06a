"""Job alerts: the endpoints, the scheduler's runs, and the email a real SMTP server receives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.appkeys import SETTINGS, STORES
from sql import alerts
from sql.db import Database
from tasks.alerts import AlertScheduler, run_due_alerts
from tests.conftest import API, Account, ClientFactory, register
from tests.explain import scans, seeded_database
from tests.smtp_sink import SmtpSink

ALERT = {"q": "python", "frequency": "daily"}


async def create_alert(client: TestClient[Any, Any], account: Account,
                       **fields: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/job_alerts", json=fields or ALERT,
                                 headers=account.headers)
    body: dict[str, Any] = await response.json()
    assert response.status == 201, body
    return body


INSERT_JOB = """
    INSERT INTO jobs (employer_id, title, description, employment_type, category,
                      location, remote, status, expires_at)
    VALUES (%(employer_id)s, %(title)s, %(description)s, 'full_time', %(category)s,
            %(location)s, %(remote)s, %(status)s, now() + %(expires_in)s::interval)
    RETURNING id
"""


def job_fields(employer: Account, title: str, *, description: str = "Work with our team",
               category: str = "", location: str = "", remote: bool = False,
               status: str = "open", expires_in: str = "30 days") -> dict[str, Any]:
    return {"employer_id": employer.id, "title": title, "description": description,
            "category": category, "location": location, "remote": remote, "status": status,
            "expires_in": expires_in}


async def insert_job(db: Database, employer: Account, title: str, **fields: Any) -> int:
    """A job written straight to the table, as the jobs API would."""
    row = await db.fetch_one_write(INSERT_JOB, job_fields(employer, title, **fields))
    assert row is not None
    return int(row["id"])


async def run_alerts(client: TestClient[Any, Any]) -> int:
    return await run_due_alerts(client.server.app[STORES], client.server.app[SETTINGS])


@contextlib.asynccontextmanager
async def mail_server_down(sink: SmtpSink) -> AsyncIterator[None]:
    """Sends fail and wait to retry meanwhile: the time between a run and its email."""
    await sink.stop()
    try:
        yield
    finally:
        await sink.start()


async def next_attempt_done(db: Database) -> None:
    """Wait until the alert email is delivered, skipped or given up, or until an attempt that
    started after this call has failed: what changed before the call is then what the last
    attempt read just before sending."""
    query = "SELECT attempts, status FROM outbox WHERE payload->>'email_type' = 'job_alert'"
    before = await db.fetch_one(query)
    assert before is not None
    async with asyncio.timeout(10):
        while True:
            row = await db.fetch_one(query)
            assert row is not None
            if row["status"] not in ("pending", "sending"):
                return
            if row["status"] == "pending" and row["attempts"] > before["attempts"]:
                return
            await asyncio.sleep(0.02)


async def make_due(db: Database) -> None:
    """Drive the clock: every alert's next run is now."""
    await db.execute("UPDATE job_alerts SET next_run_at = now()")


async def settled(db: Database, timeout: float = 10.0) -> None:
    """Wait until every delivery has been sent, skipped or given up."""
    async with asyncio.timeout(timeout):
        while await db.fetch_value(
                "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"):
            await asyncio.sleep(0.05)


async def alert_emails(db: Database, sink: SmtpSink) -> list[EmailMessage]:
    await settled(db)
    return [message for message in sink.messages if message["X-Hireme-Type"] == "job_alert"]


async def alert_outbox(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all("""
        SELECT status, last_error, payload->'context' AS context FROM outbox
        WHERE payload->>'email_type' = 'job_alert' ORDER BY id
    """)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


# -- endpoints --------------------------------------------------------------------------------

async def test_create_list_and_delete_alerts(client: TestClient[Any, Any], user: Account):
    first = await create_alert(client, user, q="python", frequency="daily")
    second = await create_alert(client, user, category="engineering", location="Berlin",
                                remote=True, frequency="weekly")
    assert set(first) == {"id", "q", "category", "location", "remote", "frequency",
                          "last_sent_at", "created_at"}
    assert first | {"id": 0, "created_at": ""} == {
        "id": 0, "q": "python", "category": None, "location": None, "remote": None,
        "frequency": "daily", "last_sent_at": None, "created_at": ""}
    assert second["remote"] is True and second["frequency"] == "weekly"

    listed = await client.get(f"{API}/job_alerts", headers=user.headers)
    assert listed.status == 200
    assert await listed.json() == {"items": [second, first]}

    deleted = await client.delete(f"{API}/job_alerts/{first['id']}", headers=user.headers)
    assert deleted.status == 204
    listed = await client.get(f"{API}/job_alerts", headers=user.headers)
    assert await listed.json() == {"items": [second]}
    again = await client.delete(f"{API}/job_alerts/{first['id']}", headers=user.headers)
    assert again.status == 404


async def test_an_alert_needs_a_criterion_and_a_known_frequency(
        client: TestClient[Any, Any], user: Account, db: Database):
    async def refused(body: dict[str, Any]) -> dict[str, str]:
        response = await client.post(f"{API}/job_alerts", json=body, headers=user.headers)
        assert response.status == 422, await response.text()
        fields: dict[str, str] = (await response.json())["error"]["fields"]
        return fields

    assert set(await refused({"frequency": "daily"})) == {"q", "category", "location", "remote"}
    assert set(await refused({"q": None, "remote": None, "frequency": "weekly"})) == {
        "q", "category", "location", "remote"}
    assert set(await refused({"q": "python", "frequency": "hourly"})) == {"frequency"}
    assert set(await refused({"q": "python"})) == {"frequency"}
    assert set(await refused({"q": "x" * 101, "category": "", "location": "y" * 201,
                              "remote": "yes", "frequency": "daily"})) == {
        "q", "category", "location", "remote"}
    assert set(await refused({"q": "   ", "frequency": "daily"})) == {"q"}
    assert await db.fetch_value("SELECT count(*) FROM job_alerts") == 0
    # The upper bounds themselves are accepted (they are the table's CHECKs).
    await create_alert(client, user, q="x" * 100, category="c" * 100, location="l" * 200,
                       frequency="daily")


async def test_at_most_20_alerts_even_when_created_at_once(
        client: TestClient[Any, Any], user: Account, db: Database):
    responses = await asyncio.gather(*(
        client.post(f"{API}/job_alerts", json={"q": f"term{n}", "frequency": "daily"},
                    headers=user.headers) for n in range(25)))
    assert sorted(response.status for response in responses) == [201] * 20 + [422] * 5
    assert await db.fetch_value("SELECT count(*) FROM job_alerts") == 20

    response = await client.post(f"{API}/job_alerts", json=ALERT, headers=user.headers)
    assert response.status == 422
    assert set((await response.json())["error"]["fields"]) == {"job_alerts"}
    other = await register(client)
    await create_alert(client, other)
    listed = await client.get(f"{API}/job_alerts", headers=user.headers)
    assert len((await listed.json())["items"]) == 20


async def test_someone_elses_alert_is_not_found(client: TestClient[Any, Any], user: Account):
    alert = await create_alert(client, user)
    other = await register(client)
    for alert_id in (alert["id"], alert["id"] + 1000, "abc"):
        response = await client.delete(f"{API}/job_alerts/{alert_id}", headers=other.headers)
        assert response.status == 404
    listed = await client.get(f"{API}/job_alerts", headers=other.headers)
    assert await listed.json() == {"items": []}
    listed = await client.get(f"{API}/job_alerts", headers=user.headers)
    assert [item["id"] for item in (await listed.json())["items"]] == [alert["id"]]


async def test_alerts_need_a_token(client: TestClient[Any, Any], user: Account):
    alert = await create_alert(client, user)
    assert (await client.post(f"{API}/job_alerts", json=ALERT)).status == 401
    assert (await client.get(f"{API}/job_alerts")).status == 401
    assert (await client.delete(f"{API}/job_alerts/{alert['id']}")).status == 401


# -- runs and the email -----------------------------------------------------------------------

async def test_runs_send_matching_open_jobs_once_then_only_new_ones(
        client: TestClient[Any, Any], user: Account, employer: Account, db: Database,
        smtp_sink: SmtpSink):
    older = await insert_job(db, employer, "Python developer", location="Berlin")
    newer = await insert_job(db, employer, "Backend engineer",
                             description="Services in Python and PostgreSQL")
    await insert_job(db, employer, "Line cook", description="Grill and sauce")
    await insert_job(db, employer, "Closed Python role", status="closed")
    await insert_job(db, employer, "Expired Python role", expires_in="-1 minute")
    alert = await create_alert(client, user, q="python", frequency="daily")

    assert await run_alerts(client) == 1
    [email] = await alert_emails(db, smtp_sink)
    assert email["To"] == user.email
    assert email["Subject"] == "2 new jobs matching your alert"
    text = text_of(email)
    assert text.index("Backend engineer") < text.index("Python developer (Berlin)")
    assert f"http://hireme.test/jobs/{newer}" in text
    assert f"http://hireme.test/jobs/{older}" in text
    for absent in ("Line cook", "Closed Python role", "Expired Python role"):
        assert absent not in text
    listed = await (await client.get(f"{API}/job_alerts", headers=user.headers)).json()
    assert listed["items"][0]["last_sent_at"] is not None

    assert await run_alerts(client) == 0  # not due again until tomorrow
    await make_due(db)
    assert await run_alerts(client) == 1  # due, but nothing new: no email
    assert len(await alert_outbox(db)) == 1

    newest = await insert_job(db, employer, "Senior Python engineer")
    await insert_job(db, employer, "Pastry chef")
    await make_due(db)
    assert await run_alerts(client) == 1
    emails = await alert_emails(db, smtp_sink)
    assert len(emails) == 2
    text = text_of(emails[1])
    assert emails[1]["Subject"] == "1 new job matching your alert"
    assert "Senior Python engineer" in text and f"/jobs/{newest}" in text
    assert "Python developer" not in text and "Backend engineer" not in text
    assert [row["context"] for row in await alert_outbox(db)] == [
        {"alert_id": alert["id"], "job_ids": [newer, older]},
        {"alert_id": alert["id"], "job_ids": [newest]}]


async def test_a_job_that_commits_after_a_newer_one_is_still_sent_once(
        client: TestClient[Any, Any], user: Account, employer: Account, db: Database,
        smtp_sink: SmtpSink):
    """Ids are taken before commit: the lower id can commit after the alert saw a higher one."""
    alert = await create_alert(client, user)
    async with db.transaction("slow_employer") as cur:
        slow = await cur.fetch_value(INSERT_JOB, job_fields(employer, "Python developer"))
        fast = await insert_job(db, employer, "Python engineer")  # commits at once
        assert slow < fast
        assert await run_alerts(client) == 1  # sends the fast job, or nothing yet
    await make_due(db)
    assert await run_alerts(client) == 1
    await make_due(db)
    assert await run_alerts(client) == 1  # nothing new: no third email

    sent = [job_id for row in await alert_outbox(db) for job_id in row["context"]["job_ids"]]
    assert sorted(sent) == [slow, fast]  # each exactly once
    emails = await alert_emails(db, smtp_sink)
    for job_id in (slow, fast):
        assert sum(f"/jobs/{job_id}" in text_of(email) for email in emails) == 1
    assert {email["To"] for email in emails} == {user.email}
    assert [row["context"]["alert_id"] for row in await alert_outbox(db)] == \
        [alert["id"]] * len(emails)


async def test_a_run_advances_the_next_run_by_the_period(
        client: TestClient[Any, Any], user: Account, db: Database):
    daily = await create_alert(client, user, q="python", frequency="daily")
    weekly = await create_alert(client, user, q="python", frequency="weekly")
    assert await run_alerts(client) == 2
    rows = await db.fetch_all("""
        SELECT id, round(extract(epoch FROM next_run_at - now()) / 3600) AS hours
        FROM job_alerts
    """)
    assert {row["id"]: row["hours"] for row in rows} == {daily["id"]: 24, weekly["id"]: 168}


async def test_every_criterion_must_match(client: TestClient[Any, Any], user: Account,
                                          employer: Account, db: Database,
                                          smtp_sink: SmtpSink):
    match = await insert_job(db, employer, "Match", category="engineering", location="Berlin",
                             remote=True)
    await insert_job(db, employer, "Wrong category", category="kitchen", location="Berlin",
                     remote=True)
    await insert_job(db, employer, "Wrong place", category="engineering", location="Paris",
                     remote=True)
    await insert_job(db, employer, "On site", category="engineering", location="Berlin")
    await create_alert(client, user, category="engineering", location="Berlin", remote=True,
                       frequency="weekly")

    assert await run_alerts(client) == 1
    [email] = await alert_emails(db, smtp_sink)
    assert email["Subject"] == "1 new job matching your alert"
    assert f"/jobs/{match}" in text_of(email)
    for absent in ("Wrong category", "Wrong place", "On site"):
        assert absent not in text_of(email)


async def test_nothing_matching_sends_nothing(client: TestClient[Any, Any], user: Account,
                                              employer: Account, db: Database):
    await insert_job(db, employer, "Line cook")
    await create_alert(client, user, q="astronaut", frequency="daily")
    assert await run_alerts(client) == 1
    await make_due(db)
    assert await run_alerts(client) == 1
    assert await alert_outbox(db) == []


async def test_a_job_closed_before_the_send_is_left_out(
        client: TestClient[Any, Any], user: Account, employer: Account, db: Database,
        smtp_sink: SmtpSink):
    kept = await insert_job(db, employer, "Python developer")
    closed = await insert_job(db, employer, "Python tester")
    await create_alert(client, user)

    async with mail_server_down(smtp_sink):
        assert await run_alerts(client) == 1
        await db.execute("UPDATE jobs SET status = 'closed' WHERE id = %(id)s", {"id": closed})
        await next_attempt_done(db)

    [email] = await alert_emails(db, smtp_sink)
    assert [row["context"]["job_ids"] for row in await alert_outbox(db)] == [[closed, kept]]
    assert f"/jobs/{kept}" in text_of(email) and "Python tester" not in text_of(email)
    assert email["Subject"] == "1 new job matching your alert"


async def test_an_email_whose_jobs_all_closed_is_skipped(
        client: TestClient[Any, Any], user: Account, employer: Account, db: Database,
        smtp_sink: SmtpSink):
    job = await insert_job(db, employer, "Python developer")
    await create_alert(client, user)

    async with mail_server_down(smtp_sink):
        assert await run_alerts(client) == 1
        await db.execute("UPDATE jobs SET expires_at = now() WHERE id = %(id)s", {"id": job})
        await next_attempt_done(db)

    assert await alert_emails(db, smtp_sink) == []
    [row] = await alert_outbox(db)
    assert (row["status"], row["last_error"]) == ("skipped", "jobs closed")


async def test_a_deleted_alert_sends_nothing(client: TestClient[Any, Any], user: Account,
                                             employer: Account, db: Database,
                                             smtp_sink: SmtpSink):
    await insert_job(db, employer, "Python developer")
    alert = await create_alert(client, user)

    async with mail_server_down(smtp_sink):
        assert await run_alerts(client) == 1
        deleted = await client.delete(f"{API}/job_alerts/{alert['id']}", headers=user.headers)
        assert deleted.status == 204
        await next_attempt_done(db)

    assert await alert_emails(db, smtp_sink) == []
    [row] = await alert_outbox(db)
    assert (row["status"], row["last_error"]) == ("skipped", "alert deleted")
    await insert_job(db, employer, "Python engineer")
    assert await run_alerts(client) == 0


async def test_two_processes_running_at_once_send_each_alert_once(
        make_client: ClientFactory, employer: Account, db: Database, smtp_sink: SmtpSink):
    first, second = await make_client(), await make_client()
    seekers = [await register(first), await register(second)]
    await insert_job(db, employer, "Python developer")
    for seeker in seekers:
        for _ in range(10):
            await create_alert(first, seeker)

    async def both() -> list[int]:
        return list(await asyncio.gather(run_alerts(first), run_alerts(second)))

    ran = await both()
    assert sum(ran) == 20
    await make_due(db)
    assert sum(await both()) == 20  # due again, nothing new
    emails = await alert_emails(db, smtp_sink)
    assert len(emails) == 20
    assert sorted(email["To"] for email in emails) == sorted(
        [seekers[0].email] * 10 + [seekers[1].email] * 10)
    alert_ids = [row["context"]["alert_id"] for row in await alert_outbox(db)]
    assert len(set(alert_ids)) == 20


async def test_the_unsubscribe_link_deletes_the_alert(
        client: TestClient[Any, Any], user: Account, employer: Account, db: Database,
        smtp_sink: SmtpSink):
    await insert_job(db, employer, "Python developer")
    await create_alert(client, user)
    kept = await create_alert(client, user, category="engineering", frequency="weekly")
    assert await run_alerts(client) == 2
    [email] = await alert_emails(db, smtp_sink)

    link = email["List-Unsubscribe"].strip("<>")
    assert link in text_of(email)
    response = await client.post(link.removeprefix("http://hireme.test"),
                                 data="List-Unsubscribe=One-Click")
    assert response.status == 204
    listed = await (await client.get(f"{API}/job_alerts", headers=user.headers)).json()
    assert [item["id"] for item in listed["items"]] == [kept["id"]]


async def test_the_scheduler_runs_due_alerts_in_the_background(
        client: TestClient[Any, Any], user: Account, employer: Account, db: Database,
        smtp_sink: SmtpSink):
    await insert_job(db, employer, "Python developer")
    await create_alert(client, user)
    scheduler = AlertScheduler(client.server.app[STORES], client.server.app[SETTINGS],
                               interval=0.05)
    scheduler.start()
    try:
        async with asyncio.timeout(10):
            while not await alert_outbox(db):
                await asyncio.sleep(0.05)
    finally:
        await scheduler.stop()
    assert len(await alert_emails(db, smtp_sink)) == 1


async def test_stopping_the_scheduler_mid_scan_always_ends_it(client: TestClient[Any, Any]):
    # A cancellation can be lost inside aiopg on Python 3.11; stop() must still end the loop.
    for attempt in range(30):
        scheduler = AlertScheduler(client.server.app[STORES], client.server.app[SETTINGS],
                                   interval=0)
        scheduler.start()
        await asyncio.sleep(0.002 * (attempt % 5))
        async with asyncio.timeout(3):
            await scheduler.stop()


async def test_an_alert_whose_run_fails_is_postponed(
        make_client: ClientFactory, user: Account, employer: Account, db: Database,
        smtp_sink: SmtpSink):
    impatient = await make_client(statement_timeout=0.3)
    await insert_job(db, employer, "Python developer")
    await create_alert(impatient, user)

    async with db.transaction("hold_jobs") as cur:  # the match query waits past its timeout
        await cur.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        assert await run_alerts(impatient) == 1
    hours = await db.fetch_value(
        "SELECT round(extract(epoch FROM next_run_at - now()) / 3600) FROM job_alerts")
    assert hours == 1
    assert await alert_outbox(db) == []

    await make_due(db)
    assert await run_alerts(impatient) == 1
    assert len(await alert_emails(db, smtp_sink)) == 1


# -- the scheduler's queries use indexes on realistic tables (EXPLAIN) ------------------------

EXPLAIN_SEED = """
    INSERT INTO users (email, password_hash, first_name, last_name, role)
    SELECT 'alerts' || g || '@example.com', 'x', 'U', 'Ser', 'employer'
    FROM generate_series(1, 5000) g;

    -- 50,000 jobs over 50 categories and 200 cities, a tenth closed, a tenth expired, each
    -- from a transaction of its own (job g from transaction 1000 + g).
    INSERT INTO jobs (employer_id, title, description, category, location, employment_type,
                      remote, status, expires_at, created_at, created_xid)
    SELECT 1 + g % 1000,
           (ARRAY['Python', 'Rust', 'Nurse', 'Cook', 'Driver', 'Teacher'])[1 + g % 6]
               || ' position ' || g,
           'Role number ' || g || ' with ' || (ARRAY['postgres', 'kitchen', 'care'])[1 + g % 3],
           'category-' || g % 50, 'city-' || g % 200, 'full_time', g % 3 = 0,
           CASE WHEN g % 10 = 0 THEN 'closed' ELSE 'open' END,
           now() + CASE WHEN g % 10 = 1 THEN interval '-1 day' ELSE interval '20 days' END,
           now() - ((50000 - g) || ' minutes')::interval, (1000 + g)::text::xid8
    FROM generate_series(1, 50000) g;

    -- 50,000 alerts, one criterion each, due over the next day; each has seen most jobs.
    INSERT INTO job_alerts (user_id, q, category, location, remote, frequency, last_job_id,
                            next_run_at)
    SELECT 1 + g % 5000,
           CASE WHEN g % 4 = 0 THEN (ARRAY['python', 'rust postgres', 'nurse'])[1 + g % 3] END,
           CASE WHEN g % 4 = 1 THEN 'category-' || g % 50 END,
           CASE WHEN g % 4 = 2 THEN 'city-' || g % 200 END,
           CASE WHEN g % 4 = 3 THEN true END,
           'daily', 49000 + g % 500, now() + (g % 1440 || ' minutes')::interval
    FROM generate_series(1, 50000) g;

    ANALYZE;
"""
MATCH_PARAMS = {"q": None, "category": None, "location": None, "remote": None, "limit": 20}
# Every job is committed in the run's snapshot. An alert that ran before 0002 has only an id
# mark; one that ran since has the snapshot of its last run: the last 800 jobs are new since,
# and two of the ones before were still running then.
WINDOWS = {
    "id mark": {"snapshot": "51001:51001:", "after": None, "after_id": 49_200},
    "snapshot": {"snapshot": "51001:51001:", "after": "50163:50200:50163,50164",
                 "after_id": None},
}


@pytest.fixture(scope="session")
def alerts_seeded(postgres_admin_url: str) -> Iterator[str]:
    yield from seeded_database(postgres_admin_url, "alerts", EXPLAIN_SEED)


def test_the_due_scan_uses_the_next_run_index(alerts_seeded: str):
    assert scans(alerts_seeded, alerts.CLAIM_DUE_ALERT, {}) == [
        ("Index Scan", "job_alerts_next_run_at_idx")]


@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("criteria", [
    {"q": "python"}, {"q": "rust postgres"}, {"category": "category-7"},
    {"location": "city-42"}, {"remote": True},
    {"q": "nurse", "category": "category-7", "location": "city-42", "remote": False},
])
def test_matching_new_jobs_reads_an_index(alerts_seeded: str, criteria: dict[str, Any],
                                          window: str):
    found = scans(alerts_seeded, alerts.MATCHING_JOBS, MATCH_PARAMS | WINDOWS[window] | criteria)
    assert found and all(node != "Seq Scan" for node, _ in found), found


def test_the_checks_before_sending_and_the_list_read_indexes(alerts_seeded: str):
    for query, params, index in [
        (alerts.ALERT_JOBS_TO_SEND,
         {"alert_id": 42, "user_id": 43, "job_ids": [49_990, 49_900, 49_500]}, "jobs_pkey"),
        (alerts.LIST_ALERTS, {"user_id": 42}, "job_alerts_user_id_idx"),
        (alerts.COUNT_ALERTS, {"user_id": 42}, "job_alerts_user_id_idx"),
    ]:
        found = scans(alerts_seeded, query, params)
        assert all(node != "Seq Scan" for node, _ in found), (query, found)
        assert index in {name for _, name in found}, (query, found)
