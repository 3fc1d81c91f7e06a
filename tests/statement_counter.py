"""A TCP proxy in front of PostgreSQL that records the statements the app sends."""

from __future__ import annotations

import asyncio

from psycopg2.extensions import make_dsn, parse_dsn


class StatementCounter:
    """A TCP proxy in front of PostgreSQL that records every query sent through it.

    psycopg2 (under aiopg) sends each statement as one simple-protocol Query ('Q') message,
    so the messages crossing this proxy are exactly the statements the app ran: a real
    measure, without touching our code. pg_stat_statements is not loaded on the test server,
    and pg_stat_database counts every session of the database (delivery workers included),
    asynchronously; the proxy sees only the app pointed at it, synchronously.
    """

    def __init__(self, database_url: str) -> None:
        self.target = parse_dsn(database_url)
        self.queries: list[str] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        """Start listening; the DSN that connects through the proxy."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return str(make_dsn(**(self.target | {"host": "127.0.0.1", "port": str(port),
                                               "sslmode": "disable",
                                               "gssencmode": "disable"})))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._relay(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay(self, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        host = self.target.get("host", "127.0.0.1")
        port = int(self.target.get("port", 5432))
        if host.startswith("/"):
            server_reader, server_writer = await asyncio.open_unix_connection(
                f"{host}/.s.PGSQL.{port}")
        else:
            server_reader, server_writer = await asyncio.open_connection(host, port)
        try:
            await asyncio.gather(self._from_client(client_reader, server_writer),
                                 self._copy(server_reader, client_writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            server_writer.close()
            client_writer.close()

    async def _from_client(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        length = int.from_bytes(await reader.readexactly(4), "big")  # the startup message
        writer.write(length.to_bytes(4, "big") + await reader.readexactly(length - 4))
        while True:
            kind = await reader.readexactly(1)
            length = int.from_bytes(await reader.readexactly(4), "big")
            body = await reader.readexactly(length - 4)
            if kind == b"Q":
                self.queries.append(body.rstrip(b"\0").decode())
            writer.write(kind + length.to_bytes(4, "big") + body)
            await writer.drain()

    @staticmethod
    async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
