"""The admin console over plain HTTP: sign-in, sessions, CSRF and cross-site checks, escaping,
and what each action does to the API's users."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from service.passwords import needs_rehash
from sql.db import Database
from tests.admin_client import Client, csrf_of, make_admin, post_form, sign_in
from tests.conftest import API, PASSWORD, Account, register
from tests.helpers import password_hash_of, store_weak_password_hash
from tests.processes import RUN_PY, environment
from tests.smtp_sink import SmtpSink

PAGES = ["/admin/", "/admin/users", "/admin/reports", "/admin/jobs", "/admin/posts",
         "/admin/comments", "/admin/deliveries", "/admin/audit"]
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
async def admin(client: Client, db: Database) -> Account:
    return await make_admin(client, db, first_name="Root", last_name="Staff")


@pytest.mark.parametrize("path", [*PAGES, "/admin/users/1"])
async def test_signed_out_visitors_are_sent_to_sign_in(client: Client, user: Account,
                                                       path: str) -> None:
    answer = await client.get(path, allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"] == "/admin/login"
    assert user.email not in await answer.text()


async def test_a_non_admin_cannot_sign_in(client: Client, user: Account) -> None:
    form = await client.get("/admin/login")
    answer = await client.post("/admin/login", data={
        "email": user.email, "password": "correct horse battery",
        "csrf_token": csrf_of(await form.text())}, allow_redirects=False)
    assert answer.status == 401
    assert "hireme_admin=" not in answer.headers.get("Set-Cookie", "")
    users = await client.get("/admin/users", allow_redirects=False)
    assert users.status == 303


async def test_a_wrong_password_is_refused(client: Client, admin: Account) -> None:
    form = await client.get("/admin/login")
    answer = await client.post("/admin/login", data={
        "email": admin.email, "password": "not the password",
        "csrf_token": csrf_of(await form.text())})
    assert answer.status == 401
    assert "Wrong email or password" in await answer.text()


async def test_sign_in_sets_a_hardened_session_cookie(client: Client, admin: Account) -> None:
    form = await client.get("/admin/login")
    answer = await client.post("/admin/login", data={
        "email": admin.email, "password": "correct horse battery",
        "csrf_token": csrf_of(await form.text())}, allow_redirects=False)
    assert answer.status == 303
    cookie = answer.cookies["hireme_admin"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/admin"
    assert not cookie["secure"]  # plain http here; see the next test for TLS


async def test_sign_in_upgrades_a_hash_made_with_weaker_parameters(
        client: Client, admin: Account, db: Database) -> None:
    weak = await store_weak_password_hash(db, admin.id, PASSWORD)
    form = await client.get("/admin/login")
    answer = await client.post("/admin/login", data={
        "email": admin.email, "password": PASSWORD,
        "csrf_token": csrf_of(await form.text())}, allow_redirects=False)
    assert answer.status == 303
    upgraded = await password_hash_of(db, admin.id)
    assert upgraded != weak and not needs_rehash(upgraded)


async def test_the_cookie_is_secure_behind_tls(client: Client, admin: Account) -> None:
    form = await client.get("/admin/login", headers={"X-Forwarded-Proto": "https"})
    assert form.cookies["hireme_admin_signin"]["secure"]


async def test_every_page_renders_with_security_headers(client: Client, admin: Account) -> None:
    await sign_in(client, admin)
    for path in [*PAGES, f"/admin/users/{admin.id}", "/admin/login"]:
        answer = await client.get(path)
        assert answer.status == 200, (path, await answer.text())
        assert answer.content_type == "text/html"
        csp = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src" not in csp
        assert "default-src 'none'" in csp
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "same-origin"
        assert answer.headers["Cache-Control"] == "no-store"
    css = await client.get("/admin/static/admin.css")
    assert css.status == 200 and css.content_type == "text/css"


async def test_a_post_without_or_with_a_wrong_csrf_token_is_403(client: Client, admin: Account,
                                                                user: Account,
                                                                db: Database) -> None:
    csrf = await sign_in(client, admin)
    for token in (None, "", "wrong", csrf[:-2] + "xx"):
        answer = await post_form(client, f"/admin/users/{user.id}/suspend", token)
        assert answer.status == 403, token
        assert answer.content_type == "text/html"
    assert await _suspended_at(db, user.id) is None
    assert await _api_status(client, user) == 200


async def test_a_cross_site_post_is_403_even_with_the_token(client: Client, admin: Account,
                                                            user: Account,
                                                            db: Database) -> None:
    csrf = await sign_in(client, admin)
    path = f"/admin/users/{user.id}/suspend"
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "https://evil.example"}):
        answer = await client.post(path, data={"csrf_token": csrf}, headers=headers)
        assert answer.status == 403, headers
    assert await _suspended_at(db, user.id) is None
    same = await client.post(path, data={"csrf_token": csrf},
                             headers={"Sec-Fetch-Site": "same-origin",
                                      "Origin": f"http://{client.host}:{client.port}"})
    assert same.status == 200
    assert await _suspended_at(db, user.id) is not None


async def test_the_sign_in_form_needs_its_csrf_token(client: Client, admin: Account) -> None:
    await client.get("/admin/login")
    answer = await client.post("/admin/login", data={
        "email": admin.email, "password": "correct horse battery", "csrf_token": "forged"})
    assert answer.status == 403


async def test_sign_out_ends_the_session_on_the_server(client: Client, admin: Account,
                                                       db: Database) -> None:
    csrf = await sign_in(client, admin)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/admin/"))
    stolen = cookie["hireme_admin"].value
    answer = await post_form(client, "/admin/logout", csrf)
    assert answer.status == 200 and answer.url.path == "/admin/login"
    # The old cookie, replayed, is refused: the session row is gone.
    replay = await client.get("/admin/users", allow_redirects=False,
                              cookies={"hireme_admin": stolen})
    assert replay.status == 303


async def test_losing_is_admin_ends_the_session_at_once(client: Client, admin: Account,
                                                        db: Database) -> None:
    await sign_in(client, admin)
    await db.execute("UPDATE users SET is_admin = false WHERE id = %(id)s", {"id": admin.id})
    answer = await client.get("/admin/users", allow_redirects=False)
    assert answer.status == 303


async def test_a_tampered_cookie_is_refused(client: Client, admin: Account) -> None:
    await sign_in(client, admin)
    answer = await client.get("/admin/users", allow_redirects=False,
                              cookies={"hireme_admin": "abc.def"})
    assert answer.status == 303


async def test_suspending_revokes_tokens_blocks_login_and_skips_deliveries(
        client: Client, admin: Account, user: Account, db: Database,
        smtp_sink: SmtpSink) -> None:
    csrf = await sign_in(client, admin)
    assert await _api_status(client, user) == 200  # the token is cached now
    # A pending email for the user, due later, must not go out after the suspension.
    await db.execute("""
        INSERT INTO outbox (kind, payload, idempotency_key, next_attempt_at)
        VALUES ('email', jsonb_build_object('email_type', 'password_reset',
                                            'user_id', %(id)s::bigint,
                                            'reset_token', 'x'),
                'test-pending', now() + interval '1 second')
    """, {"id": user.id})
    answer = await post_form(client, f"/admin/users/{user.id}/suspend", csrf)
    assert answer.status == 200 and "suspended since" in await answer.text()
    assert await _api_status(client, user) == 401
    login = await client.post(f"{API}/auth/login", json={"email": user.email,
                                                         "password": "correct horse battery"})
    assert login.status == 403
    row = await _wait_for_outcome(db, "test-pending")
    assert row["status"] == "skipped", row
    assert not [m for m in smtp_sink.messages if m["X-Hireme-Type"] == "password_reset"]
    reinstated = await post_form(client, f"/admin/users/{user.id}/reinstate", csrf)
    assert reinstated.status == 200
    login = await client.post(f"{API}/auth/login", json={"email": user.email,
                                                         "password": "correct horse battery"})
    assert login.status == 200
    entries = await _audit_actions(db)
    assert entries == ["suspend_user", "reinstate_user"]


async def test_an_admin_cannot_suspend_themselves(client: Client, admin: Account,
                                                  db: Database) -> None:
    csrf = await sign_in(client, admin)
    answer = await post_form(client, f"/admin/users/{admin.id}/suspend", csrf)
    assert answer.status == 404
    assert await _suspended_at(db, admin.id) is None


async def test_hostile_text_is_escaped_on_every_page(client: Client, admin: Account,
                                                     db: Database) -> None:
    villain = await register(client, first_name=HOSTILE, last_name=HOSTILE, role="employer")
    other = await register(client)
    post = await client.post(f"{API}/posts", headers=villain.headers, json={"body": HOSTILE})
    post_id = (await post.json())["id"]
    comment = await client.post(f"{API}/posts/{post_id}/comments", headers=villain.headers,
                                json={"body": HOSTILE})
    assert comment.status == 201
    job = await client.post(f"{API}/jobs", headers=villain.headers, json={
        "title": HOSTILE, "description": HOSTILE, "category": "it", "location": "x",
        "employment_type": "full_time", "remote": False})
    assert job.status == 201
    for target_type, target_id in [("user", villain.id), ("post", post_id)]:
        report = await client.post(f"{API}/reports", headers=other.headers, json={
            "target_type": target_type, "target_id": target_id, "reason": HOSTILE})
        assert report.status == 201
    await db.execute("""
        INSERT INTO outbox (kind, payload, idempotency_key, status, last_error)
        VALUES ('email', '{"email_type": "welcome", "user_id": 1}', 'dead-1', 'dead', %(e)s)
    """, {"e": HOSTILE})
    csrf = await sign_in(client, admin)
    suspended = await post_form(client, f"/admin/users/{villain.id}/suspend", csrf)
    assert suspended.status == 200
    pages = [*PAGES, f"/admin/users/{villain.id}", "/admin/audit?action=" + HOSTILE[:20]]
    seen = 0
    for path in pages:
        answer = await client.get(path)
        html = await answer.text()
        assert answer.status == 200, path
        assert "<script" not in html, path
        seen += html.count("&lt;script&gt;")
    assert seen >= 8  # names, reasons, bodies, titles, errors: shown, escaped


async def test_lists_page_with_a_cursor(client: Client, admin: Account) -> None:
    for _ in range(26):
        await register(client)
    await sign_in(client, admin)
    first = await client.get("/admin/users")
    html = await first.text()
    assert 'rel="next"' in html
    next_href = html.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = await client.get(next_href)
    assert second.status == 200
    assert html.count("/admin/users/") >= 25 and 'rel="next"' not in await second.text()
    bad = await client.get("/admin/users?cursor=!!!")
    assert bad.status == 400 and bad.content_type == "text/html"


# -- helpers -----------------------------------------------------------------------------------

async def _api_status(client: Client, account: Account) -> int:
    return (await client.get(f"{API}/me", headers=account.headers)).status


async def _suspended_at(db: Database, user_id: int) -> Any:
    return await db.fetch_value("SELECT suspended_at FROM users WHERE id = %(id)s",
                                {"id": user_id})


async def _audit_actions(db: Database) -> list[str]:
    rows = await db.fetch_all("SELECT action FROM admin_audit_log ORDER BY id")
    return [row["action"] for row in rows]


async def _wait_for_outcome(db: Database, key: str) -> dict[str, Any]:
    for _ in range(100):
        row = await db.fetch_one("SELECT status, last_error FROM outbox "
                                 "WHERE idempotency_key = %(key)s", {"key": key})
        if row and row["status"] not in ("pending", "sending"):
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"{key} was never settled")


def _run_admin(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUN_PY), "admin", *args], input=stdin,
                          env=environment(DATABASE_URL=database_url, SECRET_KEY="k" * 40),
                          capture_output=True, text=True, timeout=60, check=False)


async def test_run_py_creates_and_promotes_admins(client: Client, user: Account,
                                                  clean_database: str) -> None:
    created = await asyncio.to_thread(_run_admin, clean_database, "create", "--email",
                                      "boss@example.com", stdin="a long password\n")
    assert created.returncode == 0, created.stderr
    again = await asyncio.to_thread(_run_admin, clean_database, "create", "--email",
                                    "BOSS@example.com", stdin="a long password\n")
    assert again.returncode == 1 and "already registered" in again.stderr
    short = await asyncio.to_thread(_run_admin, clean_database, "create", "--email",
                                    "x@example.com", stdin="short\n")
    assert short.returncode == 1 and "Traceback" not in short.stderr
    boss = Account(0, "boss@example.com", "", {})
    await sign_in(client, boss, password="a long password")
    promoted = await asyncio.to_thread(_run_admin, clean_database, "promote", "--email",
                                       user.email)
    assert promoted.returncode == 0, promoted.stderr
    unknown = await asyncio.to_thread(_run_admin, clean_database, "promote", "--email",
                                      "nobody@example.com")
    assert unknown.returncode == 1
    client.session.cookie_jar.clear()
    await sign_in(client, user)
