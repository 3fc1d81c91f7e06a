"""A TCP proxy in front of Redis that counts the app's round trips."""

from __future__ import annotations

import asyncio


class CountingProxy:
    """A TCP proxy to Redis counting the client's writes: redis-py sends one command, or a
    whole pipeline, in one write, so each write is one round trip."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writes = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter,
                       counted: bool) -> None:
            while data := await source.read(65536):
                if counted:
                    self.writes += 1
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer, True),
                             pipe(upstream_reader, writer, False), return_exceptions=True)
