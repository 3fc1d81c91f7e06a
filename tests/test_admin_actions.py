"""What the admin console's actions do, seen where users and operators notice it: the API,
the SMTP sink, the queue, and the audit log."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from sql.db import Database
from tests.admin_client import Client, make_admin, post_form, sign_in
from tests.conftest import API, Account, register
from tests.helpers import post_job, wait_until
from tests.smtp_sink import SmtpSink


@pytest.fixture
async def admin(client: Client, db: Database) -> Account:
    return await make_admin(client, db)


async def _report(client: Client, account: Account, target_type: str, target_id: int,
                  reason: str) -> int:
    answer = await client.post(f"{API}/reports", headers=account.headers, json={
        "target_type": target_type, "target_id": target_id, "reason": reason})
    assert answer.status == 201, await answer.text()
    return int((await answer.json())["id"])


async def _post(client: Client, account: Account, body: str) -> int:
    answer = await client.post(f"{API}/posts", headers=account.headers, json={"body": body})
    assert answer.status == 201
    return int((await answer.json())["id"])


async def _audit(db: Database) -> list[tuple[str, str | None, int | None]]:
    rows = await db.fetch_all("SELECT action, target_type, target_id FROM admin_audit_log "
                              "ORDER BY id")
    return [(row["action"], row["target_type"], row["target_id"]) for row in rows]


async def test_the_queue_is_oldest_first_and_resolving_takes_a_report_off(
        client: Client, admin: Account, user: Account, employer: Account,
        db: Database) -> None:
    first = await _report(client, user, "user", employer.id, "first reason")
    second = await _report(client, employer, "user", user.id, "second reason")
    csrf = await sign_in(client, admin)
    html = await (await client.get("/admin/reports")).text()
    assert html.index("first reason") < html.index("second reason")
    answer = await post_form(client, f"/admin/reports/{first}/resolve", csrf)
    assert answer.status == 200 and answer.url.path == "/admin/reports"
    html = await answer.text()
    assert "first reason" not in html and "second reason" in html
    assert await _audit(db) == [("resolve_report", "report", first)]
    # The reporter may report again: a new open report, not the resolved one.
    assert await _report(client, user, "user", employer.id, "again") not in (first, second)


async def test_acting_on_a_post_removes_it_and_settles_every_report_on_it(
        client: Client, admin: Account, user: Account, employer: Account,
        db: Database) -> None:
    post_id = await _post(client, employer, "buy cheap watches")
    report_id = await _report(client, user, "post", post_id, "spam")
    other = await register(client)
    await _report(client, other, "post", post_id, "also spam")
    csrf = await sign_in(client, admin)
    answer = await post_form(client, f"/admin/reports/{report_id}/act", csrf,
                             action="remove_post")
    assert answer.status == 200
    assert "The queue is empty." in await answer.text()
    gone = await client.get(f"{API}/posts/{post_id}", headers=user.headers)
    assert gone.status == 404
    assert await _audit(db) == [("remove_post", "post", post_id),
                                ("resolve_report", "report", report_id)]


async def test_an_action_that_does_not_fit_the_target_does_nothing(
        client: Client, admin: Account, user: Account, employer: Account) -> None:
    report_id = await _report(client, user, "user", employer.id, "rude")
    csrf = await sign_in(client, admin)
    answer = await post_form(client, f"/admin/reports/{report_id}/act", csrf,
                             action="remove_post")
    assert answer.status == 200
    assert "rude" in await answer.text()
    bogus = await post_form(client, f"/admin/reports/{report_id}/act", csrf, action="drop")
    assert bogus.status == 400


async def test_acting_on_a_user_report_suspends_them(client: Client, admin: Account,
                                                     user: Account, employer: Account) -> None:
    report_id = await _report(client, user, "user", employer.id, "scam employer")
    csrf = await sign_in(client, admin)
    await post_form(client, f"/admin/reports/{report_id}/act", csrf, action="suspend_user")
    me = await client.get(f"{API}/me", headers=employer.headers)
    assert me.status == 401
    page = await (await client.get(f"/admin/users/{employer.id}")).text()
    assert "suspended since" in page and "scam employer" in page


async def test_a_dead_email_retried_arrives(client: Client, admin: Account, db: Database,
                                            smtp_sink: SmtpSink) -> None:
    await smtp_sink.wait_for(1)  # the admin's own welcome email went out
    smtp_sink.reject_with = (550, "mailbox unavailable")  # permanent: dead on the first try
    victim = await register(client, email="victim@example.com")
    dead = await _wait_for(db, "SELECT id, last_error FROM outbox WHERE status = 'dead'")
    assert "550" in dead["last_error"]
    smtp_sink.reject_with = None
    csrf = await sign_in(client, admin)
    page = await (await client.get("/admin/deliveries?state=dead")).text()
    assert f'id="delivery-{dead["id"]}"' in page and "mailbox unavailable" in page
    answer = await post_form(client, f"/admin/deliveries/{dead['id']}/retry", csrf)
    assert answer.status == 200 and "1 delivery queued again" in await answer.text()
    message = (await smtp_sink.wait_for(2))[-1]
    assert message["To"] == victim.email and message["X-Hireme-Type"] == "welcome"
    assert await _audit(db) == [("retry_delivery", "delivery", dead["id"])]


async def test_retry_all_dead(client: Client, admin: Account, db: Database,
                              smtp_sink: SmtpSink) -> None:
    await smtp_sink.wait_for(1)  # the admin's own welcome email went out
    smtp_sink.reject_with = (550, "no")
    for _ in range(3):
        await register(client)
    await _wait_for(db, "SELECT count(*) AS n FROM outbox WHERE status = 'dead' "
                        "HAVING count(*) = 3")
    smtp_sink.reject_with = None
    csrf = await sign_in(client, admin)
    answer = await post_form(client, "/admin/deliveries/retry_dead", csrf)
    assert "3 deliveries queued again" in await answer.text()
    await smtp_sink.wait_for(4)
    assert await _audit(db) == [("retry_dead_deliveries", None, None)]


async def test_deliveries_list_pending_and_failed(client: Client, admin: Account,
                                                  db: Database) -> None:
    await db.execute("""
        INSERT INTO outbox (kind, payload, idempotency_key, next_attempt_at, last_error,
                            attempts)
        VALUES ('push', '{"notification_id": 1}', 'later', now() + interval '1 hour',
                NULL, 0),
               ('email', '{"email_type": "welcome", "user_id": 7}', 'retrying',
                now() + interval '1 hour', 'connection refused', 2)
    """)
    await sign_in(client, admin)
    pending = await (await client.get("/admin/deliveries?state=pending")).text()
    failed = await (await client.get("/admin/deliveries?state=failed")).text()
    assert pending.count('id="delivery-') == 2
    assert failed.count('id="delivery-') == 1 and "connection refused" in failed
    pushes = await (await client.get("/admin/deliveries?state=pending&kind=push")).text()
    assert pushes.count('id="delivery-') == 1
    bad = await client.get("/admin/deliveries?state=lost")
    assert bad.status == 400


async def test_jobs_close_and_delete(client: Client, admin: Account, employer: Account,
                                     user: Account, db: Database,
                                     smtp_sink: SmtpSink) -> None:
    job = await post_job(client, employer, title="Closing soon")
    applied = await client.post(f"{API}/jobs/{job['id']}/applications",
                                headers=user.headers, json={"cover_letter": "hi"})
    assert applied.status == 201
    other = await post_job(client, employer, title="Doomed")
    csrf = await sign_in(client, admin)
    listed = await (await client.get("/admin/jobs?q=closing")).text()
    assert "Closing soon" in listed and "Doomed" not in listed
    await post_form(client, f"/admin/jobs/{job['id']}/close", csrf)
    closed = await client.get(f"{API}/jobs/{job['id']}", headers=user.headers)
    assert (await closed.json())["status"] == "closed"
    await wait_until(lambda: any(m["X-Hireme-Type"] == "job_closed" and m["To"] == user.email
                                 for m in smtp_sink.messages), "the job_closed email",
                     interval=0.1)
    await post_form(client, f"/admin/jobs/{other['id']}/delete", csrf)
    deleted = await client.get(f"{API}/jobs/{other['id']}", headers=user.headers)
    assert deleted.status == 404
    assert await _audit(db) == [("close_job", "job", job["id"]),
                                ("delete_job", "job", other["id"])]


async def test_posts_and_comments_by_author_and_removal(client: Client, admin: Account,
                                                        user: Account, employer: Account,
                                                        db: Database) -> None:
    mine = await _post(client, user, "user's post")
    theirs = await _post(client, employer, "employer's post")
    comment = await client.post(f"{API}/posts/{theirs}/comments", headers=user.headers,
                                json={"body": "user's comment"})
    comment_id = (await comment.json())["id"]
    csrf = await sign_in(client, admin)
    by_user = await (await client.get(f"/admin/posts?author_id={user.id}")).text()
    assert "user&#39;s post" in by_user and "employer&#39;s post" not in by_user
    comments = await (await client.get(f"/admin/comments?author_id={user.id}")).text()
    assert "user&#39;s comment" in comments
    await post_form(client, f"/admin/posts/{mine}/remove", csrf)
    await post_form(client, f"/admin/comments/{comment_id}/remove", csrf)
    listed = await client.get(f"{API}/posts/{theirs}/comments", headers=user.headers)
    assert (await listed.json())["items"] == []
    gone = await client.get(f"{API}/posts/{mine}", headers=user.headers)
    assert gone.status == 404
    assert await _audit(db) == [("remove_post", "post", mine),
                                ("remove_comment", "comment", comment_id)]


async def test_the_audit_log_filters(client: Client, admin: Account, user: Account,
                                     employer: Account) -> None:
    csrf = await sign_in(client, admin)
    await post_form(client, f"/admin/users/{user.id}/suspend", csrf)
    await post_form(client, f"/admin/users/{employer.id}/suspend", csrf)
    await post_form(client, f"/admin/users/{user.id}/reinstate", csrf)
    every = await (await client.get("/admin/audit")).text()
    assert _rows(every) == 3
    assert admin.email in every
    by_action = await (await client.get("/admin/audit?action=suspend_user")).text()
    assert _rows(by_action) == 2
    by_target = await (await client.get(
        f"/admin/audit?target_type=user&target_id={user.id}")).text()
    assert _rows(by_target) == 2
    by_admin = await (await client.get(f"/admin/audit?admin_id={admin.id + 1000}")).text()
    assert _rows(by_admin) == 0
    bad = await client.get("/admin/audit?target_id=x")
    assert bad.status == 400


async def test_users_search(client: Client, admin: Account, db: Database) -> None:
    ada = await register(client, first_name="Adalind", last_name="Zed")
    await register(client, first_name="Bob", last_name="Adams")
    await register(client, first_name="Carol", last_name="Young")
    await sign_in(client, admin)
    by_prefix = await (await client.get("/admin/users?q=ada")).text()
    assert "Adalind" in by_prefix and "Adams" in by_prefix and "Carol" not in by_prefix
    by_email = await (await client.get(f"/admin/users?q={ada.email.upper()}")).text()
    assert "Adalind" in by_email and "Bob" not in by_email
    by_id = await (await client.get(f"/admin/users?q={ada.id}")).text()
    assert "Adalind" in by_id and "Bob" not in by_id
    wildcard = await (await client.get("/admin/users?q=%25")).text()
    assert "No users found." in wildcard
    await db.execute("UPDATE users SET suspended_at = now() WHERE id = %(id)s", {"id": ada.id})
    suspended = await (await client.get("/admin/users?state=suspended")).text()
    assert "Adalind" in suspended and "Carol" not in suspended


async def test_the_dashboard_counts_today(client: Client, admin: Account,
                                          employer: Account) -> None:
    await post_job(client, employer)
    await _post(client, employer, "hello")
    await sign_in(client, admin)
    html = await (await client.get("/admin/")).text()
    assert re.search(r"<th scope=\"row\">Users</th><td>2</td><td>2</td>", html), html
    assert re.search(r"<th scope=\"row\">Jobs</th><td>1</td><td>1</td>", html)
    assert re.search(r"<th scope=\"row\">Posts</th><td>2</td><td>2</td>", html)  # + job post


def _rows(html: str) -> int:
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    return 0 if "No entries." in body else body.count("<tr>")


async def _wait_for(db: Database, query: str) -> dict[str, Any]:
    for _ in range(100):
        row = await db.fetch_one(query)
        if row is not None:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"never true: {query}")
