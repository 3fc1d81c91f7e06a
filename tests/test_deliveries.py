"""End-to-end delivery through the outbox: a real SMTP server, retries, skips, dead rows."""

from __future__ import annotations

import asyncio
from email.message import Message
from typing import Any

from aiohttp.test_utils import TestClient
from aiosmtpd.smtp import SMTP, Envelope, Session

from service.appkeys import DELIVERY_RUNTIME, STORES
from service.config import Settings
from sql.db import Database
from sql.outbox import CLAIM_DUE, Finish
from tasks.email import EmailSender
from tasks.mail_render import outbox_message_id, render_email
from tasks.notify import NewNotification, notify_txn
from tasks.recorder import ResultRecorder
from tasks.work import unit_of_work
from tests.conftest import API, ClientFactory, register
from tests.explain import walk
from tests.helpers import wait_until
from tests.smtp_sink import SlowSmtpSink, SmtpSink, _Handler, _TrackedSMTP


async def notify(client: TestClient[Any, Any], event: NewNotification) -> int | None:
    async with unit_of_work(client.server.app[STORES], "test_notify") as work:
        return await notify_txn(work, event)


async def outbox_statuses(db: Database) -> list[str]:
    rows = await db.fetch_all("SELECT status FROM outbox ORDER BY id")
    return [row["status"] for row in rows]


async def all_sent(db: Database, count: int) -> bool:
    return await outbox_statuses(db) == ["sent"] * count


def application_event(user_id: int, actor_id: int, **changes: Any) -> NewNotification:
    fields: dict[str, Any] = {
        "user_id": user_id, "type": "application_received", "actor_id": actor_id,
        "related_id": 1, "data": {"job_title": "Pastry <b>chef</b>", "path": "/jobs/1"}}
    fields.update(changes)
    return NewNotification(**fields)


async def test_welcome_email_arrives_with_a_working_verification_link(
        client: TestClient[Any, Any], smtp_sink: SmtpSink):
    user = await register(client)
    [message] = await smtp_sink.wait_for(1)
    assert message["To"] == user.email
    assert message["X-Hireme-Type"] == "welcome"
    assert "List-Unsubscribe" not in message
    text = message.get_body(("plain",)).get_content()
    token = text.split("verify-email?token=")[1].split()[0]
    response = await client.post(f"{API}/auth/verify_email", json={"token": token})
    assert response.status == 204


async def test_notification_email_has_both_parts_escaping_and_one_click_unsubscribe(
        client: TestClient[Any, Any], smtp_sink: SmtpSink, db: Database):
    employer = await register(client, role="employer", first_name="<script>x</script>")
    seeker = await register(client, first_name="Sam")
    await smtp_sink.wait_for(2)
    await notify(client, application_event(employer.id, seeker.id))
    message = (await smtp_sink.wait_for(3))[-1]
    assert message["X-Hireme-Type"] == "application_received"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Pastry &lt;b&gt;chef&lt;/b&gt;" in html and "Pastry <b>chef</b>" in text
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith("http://hireme.test/api/v1/email/unsubscribe?token=")
    path = link.removeprefix("http://hireme.test")
    page = await client.get(path)
    assert page.status == 200 and "Unsubscribe" in await page.text()
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert (await client.post(path, data="List-Unsubscribe=One-Click")).status == 204
    prefs = await (await client.get(f"{API}/notifications/preferences",
                                    headers=employer.headers)).json()
    assert prefs["email"]["application_received"] is False
    assert prefs["email"]["job_closed"] is True
    await notify(client, application_event(employer.id, seeker.id, related_id=2))
    assert await db.fetch_value("SELECT count(*) FROM outbox WHERE kind = 'email'") == 3


async def test_a_tampered_unsubscribe_link_is_refused(client: TestClient[Any, Any]):
    response = await client.post(f"{API}/email/unsubscribe", params={"token": "abc.def"})
    assert response.status == 400
    page = await client.get(f"{API}/email/unsubscribe", params={"token": "abc.def"})
    assert page.status == 400 and "not valid" in await page.text()


async def test_smtp_down_is_retried_with_growing_gaps_then_delivered(
        client: TestClient[Any, Any], smtp_sink: SmtpSink, db: Database):
    await smtp_sink.stop()
    user = await register(client)
    gaps: list[float] = []

    async def three_attempts_seen() -> bool:
        row = await db.fetch_one("""
            SELECT attempts, extract(epoch FROM next_attempt_at - now()) AS wait
            FROM outbox WHERE status = 'pending'""")
        if row and row["attempts"] > len(gaps):
            gaps.append(float(row["wait"]))
        return len(gaps) >= 3

    await wait_until(three_attempts_seen)
    assert gaps[0] < gaps[1] < gaps[2]
    await smtp_sink.start()
    [message] = await smtp_sink.wait_for(1)
    assert message["To"] == user.email
    await wait_until(lambda: all_sent(db, 1))


async def test_permanent_smtp_failure_is_dead_after_one_attempt(
        client: TestClient[Any, Any], smtp_sink: SmtpSink, db: Database):
    smtp_sink.reject_with = (550, "5.1.1 mailbox unavailable")
    await register(client)

    async def dead() -> bool:
        return await outbox_statuses(db) == ["dead"]

    await wait_until(dead)
    row = await db.fetch_one("SELECT attempts, last_error FROM outbox")
    assert row is not None and row["attempts"] == 1 and "550" in row["last_error"]
    assert client.server.app[DELIVERY_RUNTIME].queue.stats.dead == 1


async def test_transient_failures_stop_at_the_attempt_limit(
        make_client: ClientFactory, smtp_sink: SmtpSink, db: Database):
    client = await make_client(delivery_max_attempts=2, delivery_retry_base_seconds=0.05)
    smtp_sink.reject_with = (451, "4.3.0 try later")
    await register(client)

    async def dead() -> bool:
        return await outbox_statuses(db) == ["dead"]

    await wait_until(dead)
    assert await db.fetch_value("SELECT attempts FROM outbox") == 2


async def test_read_before_send_skips_the_email(client: TestClient[Any, Any],
                                                smtp_sink: SmtpSink, db: Database):
    employer, seeker = await register(client, role="employer"), await register(client)
    await smtp_sink.wait_for(2)
    notification_id = await notify(client, application_event(employer.id, seeker.id,
                                                             email_delay_seconds=0.5))
    await client.post(f"{API}/notifications/{notification_id}/read", headers=employer.headers)

    async def settled() -> bool:
        return not {"pending", "sending"} & set(await outbox_statuses(db))

    await wait_until(settled)
    row = await db.fetch_one("SELECT status, last_error FROM outbox ORDER BY id DESC LIMIT 1")
    assert row == {"status": "skipped", "last_error": "read in app"}
    assert len(smtp_sink.messages) == 2


async def test_preference_off_writes_no_email(client: TestClient[Any, Any], db: Database):
    employer, seeker = await register(client, role="employer"), await register(client)
    await client.put(f"{API}/notifications/preferences", headers=employer.headers,
                     json={"email": {"application_received": False}})
    await notify(client, application_event(employer.id, seeker.id))
    assert await db.fetch_value(
        "SELECT count(*) FROM outbox WHERE payload->>'email_type' = 'application_received'") == 0
    assert await db.fetch_value("SELECT count(*) FROM notifications") == 1


async def test_suspended_user_gets_no_email(client: TestClient[Any, Any], smtp_sink: SmtpSink,
                                            db: Database):
    employer, seeker = await register(client, role="employer"), await register(client)
    await smtp_sink.wait_for(2)
    await db.execute("UPDATE users SET suspended_at = now() WHERE id = %(id)s",
                     {"id": employer.id})
    await notify(client, application_event(employer.id, seeker.id))

    async def settled() -> bool:
        return not {"pending", "sending"} & set(await outbox_statuses(db))

    await wait_until(settled)
    assert (await outbox_statuses(db))[-1] == "skipped"
    assert len(smtp_sink.messages) == 2


async def test_a_killed_process_lease_is_reclaimed_by_the_sweeper(
        client: TestClient[Any, Any], smtp_sink: SmtpSink, db: Database):
    user = await register(client)
    await smtp_sink.wait_for(1)
    # As a process killed mid-delivery leaves it: claimed, lease already run out.
    await db.execute("""
        INSERT INTO outbox (kind, payload, idempotency_key, status, attempts, locked_until)
        VALUES ('email', %(payload)s, 'orphan', 'sending', 1, now() - interval '1 second')""",
                     {"payload": f'{{"email_type": "password_reset", "user_id": {user.id}, '
                      f'"context": {{"reset_token": "abc"}}}}'})
    messages = await smtp_sink.wait_for(2)
    assert messages[-1]["X-Hireme-Type"] == "password_reset"
    await wait_until(lambda: all_sent(db, 2))



async def test_a_slow_smtp_server_causes_no_duplicates(make_client: ClientFactory, db: Database):
    """Rows claimed ahead must not outlive their lease in the local queue and be sent twice."""
    sink = SlowSmtpSink(0.3)
    await sink.start()
    try:
        await make_client(smtp_url=f"smtp://127.0.0.1:{sink.port}", delivery_lease_seconds=1,
                          delivery_workers=2)
        await db.execute("""
            WITH people AS (
                INSERT INTO users (email, password_hash, first_name, last_name, role)
                SELECT 'slow' || g || '@example.com', 'x', 'S', 'Low', 'job_seeker'
                FROM generate_series(1, 16) g RETURNING id)
            INSERT INTO outbox (kind, payload, idempotency_key)
            SELECT 'email', jsonb_build_object('email_type', 'password_reset', 'user_id', id,
                                               'context', jsonb_build_object('reset_token', 't')),
                   'slow:' || id
            FROM people""")
        await wait_until(lambda: all_sent(db, 16), timeout=30)
        await asyncio.sleep(0.5)  # a stale duplicate would still be arriving
        ids = [message["Message-ID"] for message in sink.messages]
        assert len(ids) == len(set(ids)) == 16
        assert await db.fetch_value("SELECT max(attempts) FROM outbox") == 1
    finally:
        await sink.stop()


async def test_a_backlog_larger_than_the_claim_ahead_drains_without_waiting_for_sweeps(
        make_client: ClientFactory, smtp_sink: SmtpSink, db: Database):
    """Rows written straight into the outbox (nothing woke the queue) are found by one sweep;
    the sweeper must keep claiming as workers free up, not wait a sweep interval per batch."""
    client = await make_client(delivery_sweep_seconds=60, delivery_workers=4)
    queue = client.server.app[DELIVERY_RUNTIME].queue
    await db.execute("""
        WITH people AS (
            INSERT INTO users (email, password_hash, first_name, last_name, role)
            SELECT 'backlog' || g || '@example.com', 'x', 'Back', 'Log', 'job_seeker'
            FROM generate_series(1, 120) g RETURNING id)
        INSERT INTO outbox (kind, payload, idempotency_key)
        SELECT 'email', jsonb_build_object('email_type', 'password_reset', 'user_id', id,
                                           'context', jsonb_build_object('reset_token', 't')),
               'backlog:' || id
        FROM people""")
    queue.sweep_soon()  # one nudge, as the first sweep after start would be
    # 120 rows are 15 times what 4 workers may hold claimed ahead (8); the sweep interval is a
    # minute, so a sweeper that waits it out between batches cannot finish in time.
    await wait_until(lambda: all_sent(db, 120), timeout=30)
    ids = [message["Message-ID"] for message in smtp_sink.messages]
    assert len(ids) == len(set(ids)) == 120
    assert queue.stats.sent == 120


class _RefusingHandler(_Handler):
    """Refuses, for good, every recipient whose address starts with "refused"."""

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, rcpt_options: list[str]) -> str:
        if address.startswith("refused"):
            return "550 5.1.1 mailbox unavailable"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


class CountingSmtpSink(SmtpSink):
    """The test sink, counting the connections it accepted and refusing some recipients."""

    def __init__(self) -> None:
        super().__init__()
        self.connections_accepted = 0

    def _protocol(self) -> SMTP:
        self.connections_accepted += 1
        connection = _TrackedSMTP(_RefusingHandler(self), hostname="smtp-sink.test",
                                  loop=asyncio.get_running_loop())
        connection.sink_connections = self._connections
        self._connections.add(connection)
        return connection


MAIL_FROM = "hireme <no-reply@hireme.test>"


def password_reset_email(row_id: int, to: str) -> Message:
    return render_email("password_reset", {"first_name": "Ada", "reset_url": "http://x/r"},
                        to=to, mail_from=MAIL_FROM,
                        message_id=outbox_message_id(row_id, MAIL_FROM), unsubscribe_url=None)


async def test_emails_share_a_connection_and_one_refusal_fails_no_other():
    """Connecting and greeting per message cost as much as the message: one connection
    carries many, while each message keeps its own outcome and a server that dropped the
    idle connection costs no failed attempt."""
    sink = CountingSmtpSink()
    await sink.start()
    sender = EmailSender(Settings(smtp_url=f"smtp://127.0.0.1:{sink.port}",
                                  secret_key="x" * 40))
    try:
        outcomes = [await sender.send(password_reset_email(n, to))
                    for n, to in enumerate(["a@example.com", "refused@example.com",
                                            "b@example.com", "c@example.com"], start=1)]
        assert [o.status for o in outcomes] == ["sent", "dead", "sent", "sent"]
        assert "550" in outcomes[1].reason
        assert sink.connections_accepted == 1
        await sink.stop()  # drops the idle session, as a server's idle timeout would
        await sink.start()
        assert (await sender.send(password_reset_email(5, "d@example.com"))).status == "sent"
        assert sink.connections_accepted == 2
        assert [m["Message-ID"] for m in sink.messages] == [
            outbox_message_id(n, MAIL_FROM) for n in (1, 3, 4, 5)]
    finally:
        await sender.close()
        await sink.stop()


async def test_claiming_a_batch_reads_the_batch_not_the_whole_backlog(db: Database):
    """The sweeper claims a few rows at a time: each claim must cost a few rows' reading,
    not a read and sort of every due row (a backlog of 10,000 made each batch ~20 ms)."""
    await db.execute("""
        INSERT INTO outbox (kind, payload, idempotency_key, next_attempt_at)
        SELECT 'email', '{}', 'backlog:' || g, now() - make_interval(secs => g)
        FROM generate_series(1, 10000) g;
        ANALYZE outbox""")
    plan = await db.fetch_value("EXPLAIN (ANALYZE, FORMAT JSON) " + CLAIM_DUE,
                                {"limit": 8, "lease_seconds": 60, "held": [1, 2]})
    nodes = list(walk(plan[0]["Plan"]))
    read = {node.get("Index Name") or node.get("Relation Name"): node["Actual Rows"]
            for node in nodes if "Scan" in node["Node Type"] and "CTE" not in node["Node Type"]}
    assert plan[0]["Plan"]["Actual Rows"] == 8  # claimed
    assert all(rows <= 8 for rows in read.values()), read
    assert not [node for node in nodes if node["Node Type"] == "Sort"]


async def test_results_ready_together_are_recorded_in_one_statement_each_only_under_its_lease(
        db: Database):
    """Workers finishing at the same time share one UPDATE; a row whose lease another process
    took over keeps that process's state, and its worker hears it lost the row."""
    rows = await db.fetch_all("""
        INSERT INTO outbox (kind, payload, idempotency_key, status, attempts, locked_until)
        SELECT 'email', '{}', 'together:' || g, 'sending', 1, now() + interval '1 minute'
        FROM generate_series(1, 10) g
        RETURNING id, locked_until""")
    stolen = rows[-1]
    await db.execute("UPDATE outbox SET locked_until = locked_until + interval '1 second' "
                     "WHERE id = %(id)s", {"id": stolen["id"]})
    recorder = ResultRecorder(db)
    outcomes = ["sent"] * 8 + ["pending", "sent"]
    kept = await asyncio.gather(*[
        recorder.record(Finish(row["id"], row["locked_until"], status, delay_seconds=30))
        for row, status in zip(rows, outcomes, strict=True)])
    assert kept == [True] * 9 + [False]
    assert recorder.statements == 1
    assert await outbox_statuses(db) == ["sent"] * 8 + ["pending", "sending"]
    retry_in = await db.fetch_value(
        "SELECT extract(epoch FROM next_attempt_at - now()) FROM outbox WHERE id = %(id)s",
        {"id": rows[8]["id"]})
    assert 25 < retry_in <= 30
