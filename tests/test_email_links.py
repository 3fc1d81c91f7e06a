"""Every link in every email opens a page of this service, and the account pages' forms work.

Each email type is triggered the way a user would, received by the real SMTP sink, and every
http link in its text and HTML parts is opened through the test client.
"""

from __future__ import annotations

import asyncio
import re
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import pytest
from aiohttp import ClientResponse, FormData, web
from aiohttp.test_utils import TestClient

from service.appkeys import SETTINGS, STORES
from sql.db import Database
from tasks.alerts import run_due_alerts
from tests.conftest import API, PASSWORD, Account, ClientFactory, register
from tests.smtp_sink import SmtpSink

Client = TestClient[web.Request, web.Application]
BASE = "http://hireme.test"  # PUBLIC_BASE_URL in the test settings
TEXT_LINK = re.compile(r"https?://[^\s<>\"']+")
NEW_PASSWORD = "a brand new passphrase"


class _Links(HTMLParser):
    """Every href, and the inputs of every form, of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "a" and "href" in values:
            self.hrefs.append(values["href"])
        elif tag == "form":
            self.forms.append({"method": values.get("method", "get"),
                               "action": values.get("action", ""), "inputs": {}})
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1]["inputs"][values["name"]] = values.get("value", "")


def parse_html(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def links_in(message: EmailMessage) -> set[str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    links = set(TEXT_LINK.findall(str(text.get_content())))
    html_links = {href for href in parse_html(str(html.get_content())).hrefs
                  if href.startswith("http")}
    assert links == html_links, "the text and HTML parts link to different places"
    return links


async def wait_for_email(sink: SmtpSink, email_type: str, to: str) -> EmailMessage:
    async with asyncio.timeout(10):
        while True:
            for message in sink.messages:
                if message["X-Hireme-Type"] == email_type and message["To"] == to:
                    return message
            await asyncio.sleep(0.02)


async def open_link(client: Client, url: str) -> tuple[ClientResponse, str]:
    assert url.startswith(f"{BASE}/"), url
    response = await client.get(url.removeprefix(BASE))
    return response, await response.text()


async def assert_every_link_opens(client: Client, message: EmailMessage) -> dict[str, str]:
    """Open each link: a 200 HTML page of ours with the security headers; the pages by URL."""
    pages = {}
    links = links_in(message)
    assert links
    for url in links:
        response, body = await open_link(client, url)
        assert response.status == 200, (url, response.status, body)
        assert response.content_type == "text/html", (url, body)
        assert "<html" in body and "not_found" not in body
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        pages[url] = body
    return pages


async def submit(client: Client, url: str, page: str,
                 **fields: str) -> tuple[ClientResponse, str]:
    """Submit the page at ``url``'s one form as a browser would: its hidden inputs plus
    ``fields``, to its action resolved against the page's address."""
    [form] = parse_html(page).forms
    assert form["method"].lower() == "post"
    action = urljoin(url, form["action"]).removeprefix(BASE)
    response = await client.post(action, data={**form["inputs"], **fields})
    return response, await response.text()


async def create_job(client: Client, employer: Account, **fields: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/jobs", headers=employer.headers, json={
        "title": "Compiler engineer", "description": "Write the A-0 system.\nIn Philadelphia.",
        "employment_type": "full_time", "location": "Philadelphia", **fields})
    body: dict[str, Any] = await response.json()
    assert response.status == 201, body
    return body


async def apply(client: Client, seeker: Account, job_id: int) -> dict[str, Any]:
    response = await client.post(f"{API}/jobs/{job_id}/applications", json={},
                                 headers=seeker.headers)
    body: dict[str, Any] = await response.json()
    assert response.status == 201, body
    return body


async def me(client: Client, token: str) -> ClientResponse:
    return await client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})


async def login(client: Client, email: str, password: str) -> int:
    response = await client.post(f"{API}/auth/login",
                                 json={"email": email, "password": password})
    return response.status


# -- the account emails and their forms -------------------------------------------------------

async def test_the_verification_link_confirms_the_email_once(client: Client, user: Account,
                                                             smtp_sink: SmtpSink) -> None:
    message = await wait_for_email(smtp_sink, "welcome", user.email)
    [url] = links_in(message)
    assert url.startswith(f"{BASE}/verify-email?token=")
    pages = await assert_every_link_opens(client, message)
    # Opening the link (as a mail scanner does) changes nothing: only the form does.
    assert (await (await me(client, user.token)).json())["user"]["email_verified"] is False

    response, body = await submit(client, url, pages[url])

    assert response.status == 200, body
    assert "confirmed" in body
    assert (await (await me(client, user.token)).json())["user"]["email_verified"] is True
    again, body = await submit(client, url, pages[url])
    assert again.status == 400
    assert "invalid or already used" in body


async def test_the_reset_link_sets_a_new_password_and_revokes_old_tokens(
        client: Client, user: Account, smtp_sink: SmtpSink) -> None:
    other_session = await client.post(f"{API}/auth/login",
                                      json={"email": user.email, "password": PASSWORD})
    other_token = (await other_session.json())["token"]
    response = await client.post(f"{API}/auth/password_reset", json={"email": user.email})
    assert response.status == 202
    message = await wait_for_email(smtp_sink, "password_reset", user.email)
    [url] = links_in(message)
    assert url.startswith(f"{BASE}/reset-password?token=")
    pages = await assert_every_link_opens(client, message)

    too_short, body = await submit(client, url, pages[url], new_password="short")
    assert too_short.status == 422
    assert "at least 8 characters" in body
    assert len(parse_html(body).forms) == 1  # the form again, to try once more
    response, body = await submit(client, url, pages[url], new_password=NEW_PASSWORD)

    assert response.status == 200, body
    assert "password has been changed" in body
    assert await login(client, user.email, NEW_PASSWORD) == 200
    assert await login(client, user.email, PASSWORD) == 401
    assert (await me(client, user.token)).status == 401
    assert (await me(client, other_token)).status == 401
    again, body = await submit(client, url, pages[url], new_password="yet another password")
    assert again.status == 400
    assert "invalid or already used" in body
    assert await login(client, user.email, NEW_PASSWORD) == 200


# -- the notification emails ------------------------------------------------------------------

async def test_application_email_links_open(client: Client, employer: Account, user: Account,
                                            smtp_sink: SmtpSink) -> None:
    job = await create_job(client, employer)
    application = await apply(client, user, job["id"])

    received = await wait_for_email(smtp_sink, "application_received", employer.email)
    pages = await assert_every_link_opens(client, received)
    assert f"{BASE}/jobs/{job['id']}/applications" in pages

    response = await client.patch(f"{API}/applications/{application['id']}",
                                  json={"status": "interview"}, headers=employer.headers)
    assert response.status == 200
    status = await wait_for_email(smtp_sink, "application_status", user.email)
    pages = await assert_every_link_opens(client, status)
    application_page = pages[f"{BASE}/applications/{application['id']}"]
    assert "An application" in application_page
    assert user.email not in application_page and "Lovelace" not in application_page


async def test_the_job_closed_email_opens_the_job_page_saying_it_is_closed(
        client: Client, employer: Account, user: Account, smtp_sink: SmtpSink) -> None:
    job = await create_job(client, employer)
    await apply(client, user, job["id"])
    response = await client.patch(f"{API}/jobs/{job['id']}", json={"status": "closed"},
                                  headers=employer.headers)
    assert response.status == 200

    message = await wait_for_email(smtp_sink, "job_closed", user.email)
    pages = await assert_every_link_opens(client, message)

    page = pages[f"{BASE}/jobs/{job['id']}"]
    assert "This job is closed" in page
    for shown in ("Compiler engineer", "Grace Hopper", "Philadelphia", "Full time",
                  "Write the A-0 system."):
        assert shown in page


async def test_the_message_reminder_links_open(make_client: ClientFactory,
                                               smtp_sink: SmtpSink) -> None:
    client = await make_client(message_email_delay=0.2)
    ada = await register(client)
    grace = await register(client, first_name="Grace", last_name="Hopper")
    response = await client.post(f"{API}/conversations", json={"user_id": grace.id},
                                 headers=ada.headers)
    conversation = await response.json()
    assert response.status in (200, 201), conversation
    response = await client.post(f"{API}/conversations/{conversation['id']}/messages",
                                 json={"body": "Private words"}, headers=ada.headers)
    assert response.status == 201

    message = await wait_for_email(smtp_sink, "message", grace.email)
    pages = await assert_every_link_opens(client, message)

    page = pages[f"{BASE}/conversations/{conversation['id']}"]
    assert "A conversation" in page and "Private words" not in page


async def test_the_job_alert_links_open(client: Client, employer: Account, user: Account,
                                        db: Database, smtp_sink: SmtpSink) -> None:
    response = await client.post(f"{API}/job_alerts", headers=user.headers,
                                 json={"q": "compiler", "frequency": "daily"})
    assert response.status == 201
    job = await create_job(client, employer, location="Remote")
    await db.execute("UPDATE job_alerts SET next_run_at = now()")
    await run_due_alerts(client.app[STORES], client.app[SETTINGS])

    message = await wait_for_email(smtp_sink, "job_alert", user.email)
    pages = await assert_every_link_opens(client, message)

    page = pages[f"{BASE}/jobs/{job['id']}"]
    assert "Compiler engineer" in page and "Remote" in page and "closed" not in page


# -- the other links: push payloads, and what is not there -----------------------------------

@pytest.mark.parametrize(("path", "what"), [
    ("/posts/7", "A post"), ("/users/7", "A profile"), ("/notifications", "Your notifications"),
    ("/job_alerts", "Your job alerts"), ("/jobs/7/applications", "Applications"),
])
async def test_every_link_path_we_generate_opens_a_page(client: Client, path: str,
                                                        what: str) -> None:
    response = await client.get(path)

    assert response.status == 200
    assert response.content_type == "text/html"
    assert what in await response.text()


@pytest.mark.parametrize("path", [
    "/jobs/999999", "/jobs/abc", "/jobs/0", "/jobs/%C2%B2", "/jobs/99999999999999999999",
    "/jobs/1%00", "/applications/x", "/conversations/-1", "/posts/1.5", "/users/%EF%BC%91",
    "/jobs/abc/applications",
])
async def test_unknown_or_malformed_ids_answer_a_404_page(client: Client, path: str) -> None:
    response = await client.get(path)

    assert response.status == 404
    assert response.content_type == "text/html"
    assert "not found" in (await response.text()).lower()


# Each as it would arrive in a query string or form body (already percent-encoded).
MALFORMED_TOKENS = ["", "a%00b", "x" * 5000, "%C3%A9" * 20, "%ED%A0%80", "%FF",
                    "%3Cscript%3Ealert(1)%3C/script%3E", "a+b", "abc%0D%0ASet-Cookie:x"]


@pytest.mark.parametrize("page", ["/verify-email", "/reset-password"])
@pytest.mark.parametrize("token", MALFORMED_TOKENS)
async def test_a_malformed_token_is_the_invalid_link_page(client: Client, page: str,
                                                          token: str) -> None:
    opened = await client.get(f"{page}?token={token}")
    posted = await client.post(page, data=f"token={token}&new_password=long+enough+password",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})

    for response in (opened, posted):
        body = await response.text()
        assert response.status == 400, body
        assert response.content_type == "text/html"
        assert "invalid or already used" in body and "<script>" not in body


@pytest.mark.parametrize("page", ["/verify-email", "/reset-password"])
async def test_an_unknown_token_is_the_invalid_link_page_once_submitted(client: Client,
                                                                        page: str) -> None:
    response = await client.get(f"{page}?token=abc")
    assert response.status == 200  # well-formed: only spending it can tell

    response, body = await submit(client, f"{BASE}{page}?token=abc", await response.text(),
                                  new_password=NEW_PASSWORD)

    assert response.status == 400
    assert "invalid or already used" in body


@pytest.mark.parametrize("page", ["/verify-email", "/reset-password"])
async def test_a_link_without_a_token_is_the_invalid_link_page(client: Client, page: str) -> None:
    response = await client.get(page)

    assert response.status == 400
    assert "invalid or already used" in await response.text()


async def test_hostile_form_bodies_are_the_invalid_link_page(client: Client) -> None:
    attempts = [
        (b"token=%FF%FE&new_password=%00%00%00%00%00%00%00%00",
         "application/x-www-form-urlencoded"),
        (b"token=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"token=abc", "application/x-www-form-urlencoded; charset=no-such-charset"),
        (b"\x00\x01\x02", "multipart/form-data; boundary=x"),
        (b'{"token": "abc"}', "application/json"),
    ]
    for page in ("/verify-email", "/reset-password"):
        for body, content_type in attempts:
            response = await client.post(page, data=body, headers={"Content-Type": content_type})
            assert response.status == 400, (page, body, await response.text())
        upload = FormData()
        upload.add_field("token", b"abc", filename="token.txt")
        response = await client.post(page, data=upload)
        assert response.status == 400
