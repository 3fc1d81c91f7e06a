"""Sending a rendered email over SMTP, and judging what the attempt came to.

Connections are kept open and reused: connecting, greeting (and TLS and login) cost as much
as the message itself, and a backlog is thousands of messages. Each message is still its own
transaction on the wire (MAIL, RCPT, DATA; aiosmtplib sends RSET after a refusal), so a
refusal of one fails no other. A connection that failed in any other way is closed, never
reused; one that sat idle for a while is not trusted, and one the server dropped while idle
is replaced once at no cost to the message. A refusal of the message itself (5xx on MAIL,
RCPT or DATA) is permanent; everything that says nothing about the message (4xx, a server
that is down or slow, a refused login or TLS setup) is retried until the queue gives up.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.message import Message
from email.policy import compat32
from email.utils import parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from tasks.outcome import Outcome
from tasks.settings import SettingError, TaskSettings

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 30.0  # the whole conversation, connect to QUIT
SOCKET_TIMEOUT_SECONDS = 10.0  # each read or write on the socket
MAX_REASON_LENGTH = 200
# Servers drop idle sessions (often after 30 s to 5 min): older ones are closed, not tried.
MAX_IDLE_SECONDS = 10.0
MAX_MESSAGES_PER_CONNECTION = 100  # some servers limit messages per session
DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
# Messages are built with the compat32 classes (tasks/mail_render.py) and written the same way:
# headers as stored, non-ASCII ones as encoded words, long ones folded at spaces.
WIRE_POLICY = compat32.clone(linesep="\r\n")

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


@dataclass(frozen=True)
class Envelope:
    """What goes on the wire: the SMTP envelope and the message's bytes."""

    sender: str
    recipients: list[str]
    data: bytes

    @classmethod
    def of(cls, message: Message) -> Envelope:
        return cls(sender=parseaddr(message["From"])[1], recipients=[message["To"]],
                   data=to_wire(message))


def to_wire(message: Message) -> bytes:
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=WIRE_POLICY).flatten(message)
    return buffer.getvalue()


@dataclass
class _Connection:
    smtp: aiosmtplib.SMTP
    sent: int = 0
    idle_since: float = 0.0


class EmailSender:
    """Sends one message per call; never raises for a delivery failure, returns an Outcome."""

    def __init__(self, settings: TaskSettings, *,
                 timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self.server = parse_smtp_url(settings.smtp_url)
        self.timeout = timeout
        self._idle: list[_Connection] = []  # open connections no send is using
        if self.server.username and not (self.server.use_tls or self.server.start_tls):
            log.warning("SMTP credentials for %s will be sent without TLS",
                        self.server.hostname)

    async def send(self, message: Message) -> Outcome:
        try:
            async with asyncio.timeout(self.timeout):
                refused = await self._send(message)
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

    async def close(self) -> None:
        """Say goodbye on every idle connection (at shutdown)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await _quit(connection.smtp)

    async def _send(self, message: Message) -> dict[str, aiosmtplib.SMTPResponse]:
        envelope = Envelope.of(message)
        reused = self._take_idle()
        if reused is not None:
            try:
                return await self._send_on(reused, envelope)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                pass  # the server dropped it while idle: once more, on a fresh connection
        return await self._send_on(await self._connect(), envelope)

    async def _send_on(self, connection: _Connection,
                       envelope: Envelope) -> dict[str, aiosmtplib.SMTPResponse]:
        reusable = False
        try:
            refused, _ = await connection.smtp.sendmail(envelope.sender, envelope.recipients,
                                                        envelope.data)
            reusable = True
            return refused
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException) as error:
            # A refusal of this message: aiosmtplib has reset the envelope, so the session is
            # fine for the next one, unless the server said it is closing it (421).
            reusable = getattr(error, "code", 0) != 421
            raise
        finally:
            if reusable and connection.smtp.is_connected:
                await self._put_back(connection)
            else:
                connection.smtp.close()

    def _take_idle(self) -> _Connection | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            connection = self._idle.pop()  # the most recently used: least likely dropped
            if connection.smtp.is_connected and now - connection.idle_since < MAX_IDLE_SECONDS:
                return connection
            connection.smtp.close()
        return None

    async def _put_back(self, connection: _Connection) -> None:
        connection.sent += 1
        if connection.sent >= MAX_MESSAGES_PER_CONNECTION:
            await _quit(connection.smtp)
            return
        connection.idle_since = asyncio.get_running_loop().time()
        self._idle.append(connection)

    async def _connect(self) -> _Connection:
        server = self.server
        smtp = aiosmtplib.SMTP(
            hostname=server.hostname,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.use_tls,
            # Exactly True or False: None would upgrade only when offered, so a stripped
            # STARTTLS would silently send in plaintext.
            start_tls=server.start_tls,
            timeout=SOCKET_TIMEOUT_SECONDS,
        )
        await smtp.connect()  # TLS and login too, as configured
        return _Connection(smtp)


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
        await smtp.quit()
    smtp.close()


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


def _log_outcome(message: Message, outcome: Outcome) -> None:
    # The recipient address is personal data: the Message-ID is enough to find the row.
    if outcome.status == "sent":
        log.info("email %s (%s) sent", message["Message-ID"], message["X-Hireme-Type"])
    else:
        log.warning("email %s (%s) %s: %s", message["Message-ID"], message["X-Hireme-Type"],
                    outcome.status, outcome.reason)
