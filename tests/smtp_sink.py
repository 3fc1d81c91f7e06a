"""A real SMTP server on the test's own event loop, keeping every message it accepts.

Built on aiosmtpd's ``SMTP`` protocol served by ``loop.create_server`` (not its threaded
``Controller``), so it lives and dies with the loop pytest-aiohttp gives each test.
``stop()`` closes the port, which is how a test makes "the mail server is down";
``reject_with`` makes it refuse recipients (or the data) with a chosen reply. Each message is
kept twice: parsed (``messages``) and exactly as it came over the wire (``raw``), because
parsing decodes what a real mail client would see encoded.
"""

from __future__ import annotations

import asyncio
import email.policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Literal

from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, rcpt_options: list[str]) -> str:
        if self.sink.reject_with and self.sink.reject_stage == "RCPT":
            code, text = self.sink.reject_with
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802
                          envelope: Envelope) -> str:
        if self.sink.reject_with and self.sink.reject_stage == "DATA":
            code, text = self.sink.reject_with
            return f"{code} {text}"
        raw = envelope.original_content or envelope.content or b""
        assert isinstance(raw, bytes)
        message = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        self.sink.add(message, raw, str(envelope.mail_from), list(envelope.rcpt_tos))
        return "250 Message accepted"


class SmtpSink:
    """Accepts mail on ``127.0.0.1:port`` into ``messages``; restartable on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # the DATA of each message, byte for byte as received
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TOs) per message
        self.reject_with: tuple[int, str] | None = None
        self.reject_stage: Literal["RCPT", "DATA"] = "RCPT"
        self._server: asyncio.Server | None = None
        self._connections: set[SMTP] = set()
        self._arrived = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, HOST, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the port and every open session: connections are refused from now on."""
        if self._server is None:
            return
        self._server.close()
        for connection in list(self._connections):
            if connection.transport is not None:
                connection.transport.close()
        await self._server.wait_closed()
        self._server = None

    async def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        """Wait until at least ``count`` messages arrived; the messages so far."""
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.messages

    def add(self, message: EmailMessage, raw: bytes, mail_from: str,
            rcpt_tos: list[str]) -> None:
        self.messages.append(message)
        self.raw.append(raw)
        self.envelopes.append((mail_from, rcpt_tos))
        self._arrived.set()

    def _protocol(self) -> SMTP:
        connection = _TrackedSMTP(_Handler(self), hostname="smtp-sink.test",
                                  loop=asyncio.get_running_loop())
        connection.sink_connections = self._connections
        self._connections.add(connection)
        return connection


class _TrackedSMTP(SMTP):
    """aiosmtpd's protocol, forgetting itself when its connection ends."""

    sink_connections: set[SMTP]

    def connection_lost(self, error: Exception | None) -> None:
        self.sink_connections.discard(self)
        super().connection_lost(error)


class _SlowHandler(_Handler):
    def __init__(self, sink: SmtpSink, delay: float) -> None:
        super().__init__(sink)
        self.delay = delay

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802
                          envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


class SlowSmtpSink(SmtpSink):
    """The test SMTP sink, pausing ``delay`` seconds before accepting each message."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def _protocol(self) -> SMTP:
        # As SmtpSink's, with the slow handler: aiosmtpd binds a handler's hooks on creation.
        connection = _TrackedSMTP(_SlowHandler(self, self.delay), hostname="smtp-sink.test",
                                  loop=asyncio.get_running_loop())
        connection.sink_connections = self._connections
        self._connections.add(connection)
        return connection
