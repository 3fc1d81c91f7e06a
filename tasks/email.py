"""Sending a rendered email over SMTP, and judging what the attempt came to.

One connection per message: deliveries are rare next to requests, and a fresh connection
never inherits a half-broken session. A refusal of the message itself (5xx on MAIL, RCPT
or DATA) is permanent; everything that says nothing about the message (4xx, a server that
is down or slow, a refused login or TLS setup) is retried until the queue gives up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from tasks.outcome import Outcome
from tasks.settings import SettingError, TaskSettings

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 30.0  # the whole conversation, connect to QUIT
SOCKET_TIMEOUT_SECONDS = 10.0  # each read or write on the socket
MAX_REASON_LENGTH = 200
DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})

# Failures of the server or of our setup, not of the message: retried whatever the code.
NOT_ABOUT_THE_MESSAGE: tuple[type[Exception], ...] = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPHeloError,
    aiosmtplib.SMTPAuthenticationError,
    aiosmtplib.SMTPNotSupported,
)


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to connect, parsed from ``SMTP_URL``."""

    hostname: str
    port: int
    use_tls: bool = False
    start_tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp://[user:pass@]host:port[?starttls=1]`` or ``smtps://...`` (implicit TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise SettingError("SMTP_URL must look like smtp://[user:pass@]host:port or smtps://...")
    use_tls = parts.scheme == "smtps"
    starttls_values = parse_qs(parts.query).get("starttls", [])
    start_tls = not use_tls and any(value.lower() in TRUE_WORDS for value in starttls_values)
    try:
        port = parts.port
    except ValueError:
        raise SettingError("SMTP_URL has an invalid port") from None
    scheme = "smtp+starttls" if start_tls else parts.scheme
    return SmtpServer(
        hostname=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        use_tls=use_tls,
        start_tls=start_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


class EmailSender:
    """Sends one message per call; never raises for a delivery failure, returns an Outcome."""

    def __init__(self, settings: TaskSettings, *,
                 timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self.server = parse_smtp_url(settings.smtp_url)
        self.timeout = timeout
        if self.server.username and not (self.server.use_tls or self.server.start_tls):
            log.warning("SMTP credentials for %s will be sent without TLS",
                        self.server.hostname)

    async def send(self, message: EmailMessage) -> Outcome:
        server = self.server
        try:
            async with asyncio.timeout(self.timeout):
                refused, _ = await aiosmtplib.send(
                    message,
                    hostname=server.hostname,
                    port=server.port,
                    username=server.username,
                    password=server.password,
                    use_tls=server.use_tls,
                    # Exactly True or False: None would upgrade only when offered, so a
                    # stripped STARTTLS would silently send in plaintext.
                    start_tls=server.start_tls,
                    timeout=SOCKET_TIMEOUT_SECONDS,
                )
        except aiosmtplib.SMTPRecipientsRefused as error:
            outcome = _judge_codes((r.code, r.message) for r in error.recipients)
        except NOT_ABOUT_THE_MESSAGE as error:
            outcome = Outcome.retry(_reason(error))
        except aiosmtplib.SMTPResponseException as error:
            outcome = _judge_codes([(error.code, error.message)])
        except (TimeoutError, aiosmtplib.SMTPTimeoutError):
            outcome = Outcome.retry("smtp timeout")
        except (aiosmtplib.SMTPException, OSError) as error:
            outcome = Outcome.retry(_reason(error))
        else:
            if refused:
                outcome = _judge_codes((r.code, r.message) for r in refused.values())
            else:
                outcome = Outcome.sent()
        _log_outcome(message, outcome)
        return outcome


def _judge_codes(responses: Iterable[tuple[int, str]]) -> Outcome:
    """Dead when every refusal is permanent (5xx); any temporary one is worth a retry."""
    answers = list(responses)
    reason = "; ".join(_shorten(f"smtp {code}: {text}") for code, text in answers)
    if answers and all(code >= 500 for code, _ in answers):
        return Outcome.dead(_shorten(reason))
    return Outcome.retry(_shorten(reason))


def _reason(error: Exception) -> str:
    code = getattr(error, "code", None)
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    prefix = f"smtp {code}: " if isinstance(code, int) else "smtp: "
    return _shorten(prefix + str(text))


def _shorten(text: str) -> str:
    one_line = " ".join(text.split())
    if len(one_line) <= MAX_REASON_LENGTH:
        return one_line
    return one_line[: MAX_REASON_LENGTH - 1] + "…"


def _log_outcome(message: EmailMessage, outcome: Outcome) -> None:
    # The recipient address is personal data: the Message-ID is enough to find the row.
    if outcome.status == "sent":
        log.info("email %s (%s) sent", message["Message-ID"], message["X-Hireme-Type"])
    else:
        log.warning("email %s (%s) %s: %s", message["Message-ID"], message["X-Hireme-Type"],
                    outcome.status, outcome.reason)
