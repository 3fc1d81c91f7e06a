"""The admin console in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright, against the app served on a real port, with no JavaScript of ours anywhere.

One walk through a moderator's day: sign in, suspend a user (whose API calls then fail),
retry a dead email (which then arrives at the SMTP sink), resolve a report, and find each
action in the audit log. A screenshot of every page is saved under tests/artifacts/admin/
(ignored by git) for people to look at when the test fails or the pages change.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from service.admin.figures import SAMPLER
from sql.db import Database
from tests.admin_client import Client, make_admin
from tests.conftest import API, PASSWORD, register
from tests.helpers import wait_until
from tests.smtp_sink import SmtpSink

ARTIFACTS = Path(__file__).parent / "artifacts" / "admin"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "install Debian's chromium package (.ci/run does)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1200, "height": 800},
                                        java_script_enabled=False)
    opened = await context.new_page()
    yield opened
    await context.close()


async def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_a_moderators_day_in_a_real_browser(client: Client, db: Database, page: Page,
                                                  smtp_sink: SmtpSink) -> None:
    admin = await make_admin(client, db, first_name="Mo", last_name="Derator")
    troll = await register(client, first_name="Troll", last_name="<b>Bridge</b>")
    reporter = await register(client, first_name="Rita", last_name="Reporter")
    post = await client.post(f"{API}/posts", headers=troll.headers, json={"body": "<b>buy</b>"})
    report = await client.post(f"{API}/reports", headers=reporter.headers, json={
        "target_type": "post", "target_id": (await post.json())["id"],
        "reason": "Spams <i>everyone</i>"})
    assert report.status == 201
    await smtp_sink.wait_for(3)  # the three welcome emails so far went out
    smtp_sink.reject_with = (550, "mailbox unavailable")
    bounced = await register(client, email="bounced@example.com")
    await wait_until(
        lambda: db.fetch_value("SELECT count(*) = 1 FROM outbox WHERE status = 'dead'"),
        "a dead welcome email", interval=0.1)
    smtp_sink.reject_with = None
    base = str(client.make_url("/admin")).rstrip("/")
    # Three minutes of live figures for the dashboard's charts, with traffic between them.
    sampler, minute = client.app[SAMPLER], datetime.now(UTC).replace(second=0, microsecond=0)
    for step, calls in ((3, 0), (2, 30), (1, 10), (0, 20)):
        for _ in range(calls):
            await client.get(f"{API}/me", headers=reporter.headers)
        await sampler.sample(minute - timedelta(minutes=step))

    # Signed out: the console sends the browser to the sign-in form.
    await page.goto(f"{base}/users")
    await expect(page).to_have_url(f"{base}/login")
    await _shot(page, "01-sign-in")
    await page.fill("#email", admin.email)
    await page.fill("#password", PASSWORD)
    await page.click("button:has-text('Sign in')")
    await expect(page).to_have_url(f"{base}/")
    await expect(page.locator("h1")).to_have_text("Dashboard")
    await expect(page.locator("svg.chart polyline")).to_have_count(9)
    await _shot(page, "02-dashboard")

    # Find the troll, suspend them: their token stops working at once.
    await page.click("nav >> text=Users")
    await page.fill("#q", "troll")
    await page.click("button:has-text('Search')")
    await _shot(page, "03-users")
    await page.click("text=Troll <b>Bridge</b>")
    await expect(page.locator("h1")).to_have_text("Troll <b>Bridge</b>")
    assert (await client.get(f"{API}/me", headers=troll.headers)).status == 200
    await page.click("button:has-text('Suspend')")
    await expect(page.locator("text=suspended since")).to_be_visible()
    await _shot(page, "04-user-suspended")
    assert (await client.get(f"{API}/me", headers=troll.headers)).status == 401
    login = await client.post(f"{API}/auth/login", json={"email": troll.email,
                                                         "password": PASSWORD})
    assert login.status == 403

    # The dead welcome email, retried, arrives.
    await page.click("nav >> text=Deliveries")
    await expect(page.locator("text=mailbox unavailable")).to_be_visible()
    await _shot(page, "05-deliveries-dead")
    await page.click("tbody button:has-text('Retry')")
    await expect(page.locator("text=1 delivery queued again.")).to_be_visible()
    message = (await smtp_sink.wait_for(4))[-1]
    assert message["To"] == bounced.email and message["X-Hireme-Type"] == "welcome"

    # The report on the troll's post: resolve it; the queue is empty then.
    await page.click("nav >> text=Reports")
    await expect(page.locator("text=Spams <i>everyone</i>")).to_be_visible()
    await _shot(page, "06-reports")
    await page.click("button:has-text('Resolve')")
    await expect(page.locator("text=The queue is empty.")).to_be_visible()

    # Each action is in the audit log, newest first, and the filter narrows it.
    await page.click("nav >> text=Audit log")
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_contain_text("resolve_report")
    await expect(rows.nth(1)).to_contain_text("retry_delivery")
    await expect(rows.nth(2)).to_contain_text("suspend_user")
    await expect(rows.nth(2)).to_contain_text(f"user {troll.id}")
    await expect(rows.nth(2)).to_contain_text(admin.email)
    await _shot(page, "07-audit-log")
    await page.fill("#action", "suspend_user")
    await page.click("button:has-text('Filter')")
    await expect(rows).to_have_count(1)

    for name in ("jobs", "posts", "comments"):
        await page.click(f"nav >> text={name.capitalize()}")
        await expect(page.locator("h1")).to_have_text(name.capitalize())
        await _shot(page, f"08-{name}")

    # Signing out ends the session: the pages send the browser back to sign in.
    await page.click("button:has-text('Sign out')")
    await expect(page).to_have_url(f"{base}/login")
    await page.goto(f"{base}/audit")
    await expect(page).to_have_url(f"{base}/login")
