"""A small Server-Sent Events client for the tests: read a stream's events line by line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from service.routes import API


@dataclass
class Event:
    kind: str
    data: str
    id: str | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseReader:
    """Reads one ``text/event-stream`` response; remembers its comments and ``retry``."""

    response: aiohttp.ClientResponse
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    ended: bool = False

    async def next(self, timeout: float = 5.0) -> Event:
        """The next event; TimeoutError if none comes, EOFError once the stream ends."""
        async with asyncio.timeout(timeout):
            return await self._read_event()

    async def take(self, count: int, timeout: float = 10.0) -> list[Event]:
        async with asyncio.timeout(timeout):
            return [await self._read_event() for _ in range(count)]

    async def end(self, timeout: float = 5.0) -> list[Event]:
        """Every event until the server ends the stream."""
        found: list[Event] = []
        async with asyncio.timeout(timeout):
            while True:
                try:
                    found.append(await self._read_event())
                except EOFError:
                    return found

    async def _read_event(self) -> Event:
        kind, data, event_id = "message", [], None
        while True:
            raw = await self.response.content.readline()
            if not raw:
                self.ended = True
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\n")
            if line == "":
                if data:
                    return Event(kind, "\n".join(data), event_id)
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                self.comments.append(value)
            elif name == "event":
                kind = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
            elif name == "retry":
                self.retry = int(value)


@asynccontextmanager
async def stream(client: Any, headers: dict[str, str] | None = None,
                 **params: str) -> AsyncIterator[SseReader]:
    """Open ``GET /events`` with ``client`` (a test client or an aiohttp session) and read it;
    the connection closes on leaving the block."""
    response = await client.get(f"{API}/events", headers=headers or {}, params=params)
    assert response.status == 200, await response.text()
    try:
        yield SseReader(response)
    finally:
        response.close()
