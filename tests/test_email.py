"""Rendering, sending and unsubscribe links, against a real SMTP server on the test loop."""

from __future__ import annotations

import asyncio
import email
import itertools
import re
from email.message import EmailMessage, Message
from email.policy import default
from typing import Any

import jinja2
import pytest

from service.config import Settings
from tasks.email import EmailSender, parse_smtp_url, to_wire
from tasks.mail_render import EMAIL_TYPES, outbox_message_id, render_email
from tasks.unsubscribe import (
    UnsubscribeTarget,
    make_unsubscribe_token,
    read_unsubscribe_token,
    unsubscribe_url,
)
from tests.smtp_sink import SmtpSink

SECRET = "x" * 40
MAIL_FROM = "hireme <no-reply@hireme.test>"
TO = "ada@example.com"
UNSUBSCRIBE = "http://127.0.0.1:8000/api/v1/email/unsubscribe?token=abc"

CONTEXTS: dict[str, dict[str, Any]] = {
    "welcome": {"first_name": "Ada", "verify_url": "http://h/verify?token=v"},
    "password_reset": {"first_name": "Ada", "reset_url": "http://h/reset?token=r"},
    "application_received": {"first_name": "Ada", "applicant_name": "Grace Hopper",
                             "job_title": "Compiler engineer", "url": "http://h/jobs/1"},
    "application_status": {"first_name": "Ada", "job_title": "Compiler engineer",
                           "status": "interview", "url": "http://h/applications/2"},
    "job_closed": {"first_name": "Ada", "job_title": "Compiler engineer",
                   "url": "http://h/jobs/1"},
    "message": {"first_name": "Ada", "sender_name": "Grace Hopper",
                "url": "http://h/conversations/3"},
    "job_alert": {"first_name": "Ada", "alert_url": "http://h/alerts",
                  "jobs": [{"title": "Compiler engineer", "location": "Paris",
                            "url": "http://h/jobs/1"},
                           {"title": "Linker engineer", "location": None,
                            "url": "http://h/jobs/4"}]},
}
SUBJECTS = {
    "welcome": "Welcome to hireme, Ada: please confirm your email",
    "password_reset": "Reset your hireme password",
    "application_received": "New application from Grace Hopper for Compiler engineer",
    "application_status": "Your application for Compiler engineer: invited to interview",
    "job_closed": "Compiler engineer is no longer open",
    "message": "You have unread messages from Grace Hopper",
    "job_alert": "2 new jobs matching your alert",
}
UNSUBSCRIBABLE = {"application_received", "application_status", "job_closed", "message",
                  "job_alert"}


def render(email_type: str, message_id: str = "<outbox-1@hireme.test>",
           **overrides: Any) -> Message:
    return render_email(email_type, {**CONTEXTS[email_type], **overrides}, to=TO,
                        mail_from=MAIL_FROM, message_id=message_id,
                        unsubscribe_url=UNSUBSCRIBE)


def parts(message: Message) -> tuple[str, str]:
    """The text and HTML parts as a mail client reads them from the wire."""
    if not isinstance(message, EmailMessage):
        message = email.message_from_bytes(to_wire(message), policy=default)
        assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return _lines(text.get_content()), _lines(html.get_content())


def _lines(content: str) -> str:
    return content.replace("\r\n", "\n")


@pytest.fixture
def sender(smtp_sink: SmtpSink) -> EmailSender:
    return EmailSender(Settings(smtp_url=f"smtp://127.0.0.1:{smtp_sink.port}",
                                mail_from=MAIL_FROM, secret_key=SECRET))


def test_contexts_cover_every_type() -> None:
    assert set(CONTEXTS) == set(EMAIL_TYPES)


@pytest.mark.parametrize("email_type", sorted(CONTEXTS))
def test_every_type_renders_both_parts_and_headers(email_type: str) -> None:
    message = render(email_type)

    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert text.startswith("Hi Ada,")
    assert "<html" in html and "Hi Ada," in html
    assert message["Subject"] == SUBJECTS[email_type]
    assert message["X-Hireme-Type"] == email_type
    assert message["From"] == MAIL_FROM and message["To"] == TO
    assert message["Message-ID"] == "<outbox-1@hireme.test>"
    assert message["Date"]
    for url in (v for v in CONTEXTS[email_type].values() if str(v).startswith("http")):
        assert url in text and url in html
    if email_type in UNSUBSCRIBABLE:
        assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert UNSUBSCRIBE in text
    else:
        assert message["List-Unsubscribe"] is None
        assert message["List-Unsubscribe-Post"] is None
        assert "Unsubscribe" not in text


# A line that ends a sentence, a greeting or a heading; anything else must end its paragraph.
SENTENCE_END = re.compile(r"[.!?:,]$")
LINK = re.compile(r"https?://\S+")


@pytest.mark.parametrize("email_type", sorted(CONTEXTS))
def test_the_text_part_reads_well_as_plain_text(email_type: str) -> None:
    """Mail clients reflow nothing: a sentence broken by template layout stays broken, and a
    link sharing its line with words is easily mis-copied."""
    text, _ = parts(render(email_type))
    lines = text.splitlines()

    for line in lines:
        if LINK.search(line):
            assert LINK.fullmatch(line.strip()), f"link not on a line of its own: {line!r}"
    for index, (line, following) in enumerate(itertools.pairwise(lines)):
        in_signature = line == "-- " or (index and lines[index - 1] == "-- ")
        if in_signature or not line.strip() or LINK.fullmatch(line.strip()):
            continue
        assert SENTENCE_END.search(line) or not following.strip() \
            or LINK.fullmatch(following.strip()), f"a sentence broken across lines: {line!r}"


def test_job_alert_lists_every_job() -> None:
    text, html = parts(render("job_alert"))
    for body in (text, html):
        assert "Compiler engineer" in body and "Linker engineer" in body
        assert "Paris" in body and "None" not in body


def test_untrusted_names_are_escaped_in_html_and_intact_in_text() -> None:
    script = "<script>alert(1)</script>"
    message = render("application_received", first_name=script, applicant_name=script,
                     job_title='"R&D" lead')
    text, html = parts(message)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;R&amp;D&#34; lead" in html
    assert f"Hi {script}," in text and '"R&D" lead' in text
    assert message["Subject"] == f'New application from {script} for "R&D" lead'


def test_a_line_break_in_a_name_never_reaches_a_header() -> None:
    message = render("message", sender_name="Eve\r\nBcc: victim@example.com")
    assert message["Subject"] == "You have unread messages from Eve Bcc: victim@example.com"
    assert message["Bcc"] is None


def test_a_missing_context_key_raises() -> None:
    context = dict(CONTEXTS["message"])
    del context["sender_name"]
    with pytest.raises(ValueError, match="sender_name"):
        render_email("message", context, to=TO, mail_from=MAIL_FROM, message_id="<m@h>",
                     unsubscribe_url=UNSUBSCRIBE)


def test_a_missing_job_field_raises() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("job_alert", jobs=[{"title": "No url", "location": None}])


def test_an_unknown_status_raises() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("application_status", status="promoted")


def test_an_unknown_type_raises() -> None:
    with pytest.raises(ValueError, match="unknown email type"):
        render_email("newsletter", {"first_name": "Ada"}, to=TO, mail_from=MAIL_FROM,
                     message_id="<m@h>", unsubscribe_url=UNSUBSCRIBE)


def test_a_notification_email_needs_its_unsubscribe_link() -> None:
    with pytest.raises(ValueError, match="unsubscribe"):
        render_email("job_closed", CONTEXTS["job_closed"], to=TO, mail_from=MAIL_FROM,
                     message_id="<m@h>", unsubscribe_url=None)
    welcome = render_email("welcome", CONTEXTS["welcome"], to=TO, mail_from=MAIL_FROM,
                           message_id="<m@h>", unsubscribe_url=None)
    assert welcome["List-Unsubscribe"] is None


def test_outbox_message_id_is_stable_per_row() -> None:
    assert outbox_message_id(42, MAIL_FROM) == "<outbox-42@hireme.test>"
    assert outbox_message_id(42, MAIL_FROM) == outbox_message_id(42, MAIL_FROM)


async def test_send_delivers_with_the_same_message_id(smtp_sink: SmtpSink,
                                                      sender: EmailSender) -> None:
    message = render("application_status", message_id=outbox_message_id(7, MAIL_FROM))

    outcome = await sender.send(message)

    assert outcome.status == "sent"
    [received] = await smtp_sink.wait_for(1)
    assert received["Message-ID"] == "<outbox-7@hireme.test>"
    assert received["X-Hireme-Type"] == "application_status"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [part.replace("\r\n", "\n") for part in parts(received)] == list(parts(message))
    assert smtp_sink.envelopes == [("no-reply@hireme.test", [TO])]


async def test_list_unsubscribe_goes_on_the_wire_as_one_unencoded_line(
        smtp_sink: SmtpSink, sender: EmailSender) -> None:
    # A real link: far longer than the 78 characters past which a header line is folded.
    url = unsubscribe_url("https://hireme.example",
                          make_unsubscribe_token(SECRET, 123456, "job_closed"))
    title = "Senior compiler engineer for a long running research programme in Paris"
    message = render_email("job_closed", {**CONTEXTS["job_closed"], "job_title": title},
                           to=TO, mail_from=MAIL_FROM, message_id="<outbox-1@hireme.test>",
                           unsubscribe_url=url)

    assert (await sender.send(message)).status == "sent"

    await smtp_sink.wait_for(1)
    [raw] = smtp_sink.raw
    # RFC 2369: exactly <URL> on one line, never MIME-encoded, as mail clients read it.
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode("ascii") in raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    headers = raw.partition(b"\r\n\r\n")[0]
    assert b"=?" not in headers  # no encoded word anywhere
    # Every other header is still folded as usual: the long subject too.
    assert all(len(line) <= 78 for line in headers.split(b"\r\n")
               if not line.startswith(b"List-Unsubscribe:"))
    assert smtp_sink.messages[0]["Subject"] == f"{title} is no longer open"


async def test_smtp_down_is_retried(smtp_sink: SmtpSink, sender: EmailSender) -> None:
    await smtp_sink.stop()

    outcome = await sender.send(render("message"))

    assert outcome.status == "retry"
    assert outcome.reason.startswith("smtp")


async def test_smtp_back_up_delivers(smtp_sink: SmtpSink, sender: EmailSender) -> None:
    await smtp_sink.stop()
    assert (await sender.send(render("message"))).status == "retry"
    await smtp_sink.start()

    assert (await sender.send(render("message"))).status == "sent"
    assert len(await smtp_sink.wait_for(1)) == 1


@pytest.mark.parametrize(("stage", "code", "status"), [
    ("RCPT", 550, "dead"),
    ("RCPT", 451, "retry"),
    ("DATA", 554, "dead"),
    ("DATA", 452, "retry"),
])
async def test_a_refusal_is_judged_by_its_code(smtp_sink: SmtpSink, sender: EmailSender,
                                               stage: str, code: int, status: str) -> None:
    smtp_sink.reject_stage = "DATA" if stage == "DATA" else "RCPT"
    smtp_sink.reject_with = (code, "mailbox unavailable")

    outcome = await sender.send(render("job_closed"))

    assert outcome.status == status
    assert outcome.reason == f"smtp {code}: mailbox unavailable"
    assert smtp_sink.messages == []


async def test_required_starttls_never_falls_back_to_plaintext(smtp_sink: SmtpSink) -> None:
    sender = EmailSender(Settings(smtp_url=f"smtp://127.0.0.1:{smtp_sink.port}?starttls=1",
                                  mail_from=MAIL_FROM, secret_key=SECRET))

    outcome = await sender.send(render("message"))

    assert outcome.status == "retry"  # the sink offers no STARTTLS
    assert smtp_sink.messages == []


async def test_a_silent_server_times_out() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(reader: asyncio.StreamReader,
                                     writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = EmailSender(Settings(smtp_url=f"smtp://127.0.0.1:{port}", secret_key=SECRET),
                         timeout=0.2)
    try:
        outcome = await sender.send(render("message"))
    finally:
        server.close()
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        await server.wait_closed()

    assert outcome.status == "retry"
    assert outcome.reason == "smtp timeout"


def test_smtp_url_is_parsed() -> None:
    plain = parse_smtp_url("smtp://mail.internal:2525")
    assert (plain.hostname, plain.port, plain.use_tls, plain.start_tls) == (
        "mail.internal", 2525, False, False)
    assert plain.username is None and plain.password is None

    starttls = parse_smtp_url("smtp://us%40er:p%3Ass%40word@mail.example.com?starttls=1")
    assert (starttls.port, starttls.use_tls, starttls.start_tls) == (587, False, True)
    assert (starttls.username, starttls.password) == ("us@er", "p:ss@word")
    assert "p:ss@word" not in repr(starttls)

    implicit = parse_smtp_url("smtps://mail.example.com")
    assert (implicit.port, implicit.use_tls, implicit.start_tls) == (465, True, False)


@pytest.mark.parametrize(("email_type", "alert_id"), [
    ("message", None), ("application_status", None), ("job_alert", 9),
])
def test_unsubscribe_tokens_round_trip(email_type: str, alert_id: int | None) -> None:
    token = make_unsubscribe_token(SECRET, 12, email_type, alert_id)
    assert read_unsubscribe_token(SECRET, token) == UnsubscribeTarget(12, email_type, alert_id)


def test_any_changed_character_spoils_the_token() -> None:
    token = make_unsubscribe_token(SECRET, 12, "job_alert", 9)
    for index, char in enumerate(token):
        for replacement in {"A", "B", "a", "_"} - {char}:
            tampered = token[:index] + replacement + token[index + 1:]
            assert read_unsubscribe_token(SECRET, tampered) is None, tampered


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = make_unsubscribe_token("y" * 40, 12, "message")
    assert read_unsubscribe_token(SECRET, token) is None


@pytest.mark.parametrize("garbage", ["", ".", "abc", "a.b", "é" * 50, "x" * 5000,
                                     "MTI6bWVzc2FnZTo.AAAA"])
def test_malformed_tokens_are_refused(garbage: str) -> None:
    assert read_unsubscribe_token(SECRET, garbage) is None


def test_only_notification_types_get_tokens() -> None:
    with pytest.raises(ValueError):
        make_unsubscribe_token(SECRET, 12, "password_reset")
    with pytest.raises(ValueError):
        make_unsubscribe_token(SECRET, 12, "job_alert")  # which alert?


def test_unsubscribe_url_carries_the_token() -> None:
    token = make_unsubscribe_token(SECRET, 12, "message")
    url = unsubscribe_url("https://hireme.example/", token)
    assert url == f"https://hireme.example/api/v1/email/unsubscribe?token={token}"
