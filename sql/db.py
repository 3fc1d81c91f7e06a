"""PostgreSQL access: aiopg pools for the primary and replicas, transactions, failure mapping.

Only this package imports aiopg and psycopg2, so a later driver swap touches ``sql/`` alone.
Rows come back as plain dicts. Every failure to reach the database becomes
``DatabaseUnavailable``, which the service answers with 503.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiopg
import psycopg2
import psycopg2.errors
import psycopg2.extras

from sql.replicas import Replica, ReplicaSet, pin_reads_to_primary, reads_pinned

log = logging.getLogger(__name__)

DEFAULT_MAX_LAG_SECONDS = 5.0

Row = dict[str, Any]
Params = Mapping[str, Any] | None

_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")


class Prepared:
    """A statement PostgreSQL plans once per connection (PREPARE) and then only runs
    (EXECUTE). For the hot writes: EXPLAIN ANALYZE showed PostgreSQL spending as long
    planning a like's statements as running them; and for reads whose plan does not depend
    on the values (one user's notifications or conversations, one conversation's
    messages). Every run uses the one generic plan (``plan_cache_mode`` is set on each
    connection, see ``Pool``), so each prepared statement has an EXPLAIN test of its generic
    plan. Written with ``%(name)s`` parameters like any statement; a parameter PostgreSQL
    cannot type from its context needs a cast."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.parameters: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match[1] not in self.parameters:
                self.parameters.append(match[1])
            return f"${self.parameters.index(match[1]) + 1}"

        self.definition = f"PREPARE {name} AS {_NAMED_PARAMETER.sub(number, text)}"
        arguments = ", ".join(f"%({parameter})s" for parameter in self.parameters)
        self.execution = f"EXECUTE {name}({arguments})" if arguments else f"EXECUTE {name}"


# The statements each connection has prepared. A prepared statement outlives a transaction
# that rolls back, so a name is known from the moment its PREPARE is sent.
_prepared_on: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()

# Errors that mean "the database could not be reached or dropped the connection".
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    ConnectionError,
    OSError,
)
ACQUIRE_ERRORS: tuple[type[Exception], ...] = (TimeoutError, *CONNECTION_ERRORS)
UniqueViolation = psycopg2.errors.UniqueViolation
ForeignKeyViolation = psycopg2.errors.ForeignKeyViolation
CheckViolation = psycopg2.errors.CheckViolation
QueryCanceled = psycopg2.errors.QueryCanceled
# A replica cancels a query whose rows replay must remove ("conflict with recovery").
RecoveryConflict = psycopg2.errors.SerializationFailure


class DatabaseUnavailable(Exception):
    """PostgreSQL is unreachable, timed out or refused the connection."""


@dataclass(frozen=True)
class PoolConfig:
    minsize: int
    maxsize: int
    recycle: float
    acquire_timeout: float
    statement_timeout: float
    prepare_statements: bool = True  # off: a ``Prepared`` runs as its plain text


class Cursor:
    """A dict cursor on one connection: the unit query functions receive."""

    def __init__(self, raw: Any, prepare_statements: bool = True) -> None:
        self._raw = raw
        self._prepare_statements = prepare_statements
        self._pending = ""  # sent ahead of the next statement, in its round trip
        self.began = False

    def begin_with_next_statement(self) -> None:
        """Open a transaction in the round trip of the first statement, not one of its own:
        PostgreSQL runs ``BEGIN; <statement>`` in order and answers the statement's rows."""
        self._pending = "BEGIN; "

    async def execute(self, query: str | Prepared, params: Params = None) -> None:
        if isinstance(query, Prepared):
            query = self._prepared_text(query) if self._prepare_statements else query.text
        if self._pending:
            query, self._pending, self.began = self._pending + query, "", True
        await self._raw.execute(query, params)

    def _prepared_text(self, statement: Prepared) -> str:
        known = _prepared_on.setdefault(self._raw.connection, set())
        if statement.name in known:
            return statement.execution
        known.add(statement.name)
        return f"{statement.definition}; {statement.execution}"

    async def fetch_one(self, query: str | Prepared, params: Params = None) -> Row | None:
        await self.execute(query, params)
        row = await self._raw.fetchone()
        return None if row is None else dict(zip(self._names(), row, strict=True))

    async def fetch_all(self, query: str | Prepared, params: Params = None) -> list[Row]:
        await self.execute(query, params)
        names = self._names()
        return [dict(zip(names, row, strict=True)) for row in await self._raw.fetchall()]

    def _names(self) -> list[str]:
        # Rows come as tuples and become dicts here, in C: psycopg2's RealDictCursor builds
        # each row in Python, a column at a time (a sixth of a feed page's CPU time).
        return [column.name for column in self._raw.description]

    async def fetch_value(self, query: str | Prepared, params: Params = None) -> Any:
        row = await self.fetch_one(query, params)
        return None if row is None else next(iter(row.values()))

    @property
    def rowcount(self) -> int:
        return int(self._raw.rowcount)


class Pool:
    """One aiopg pool with an acquire timeout and connection-error mapping."""

    def __init__(self, dsn: str, config: PoolConfig) -> None:
        self.dsn = dsn
        self.config = config
        # Told how many seconds each acquire waited (service/metrics.py sets it).
        self.on_acquire_wait: Callable[[float], None] | None = None
        self._pool: Any = None

    async def open(self) -> None:
        try:
            self._pool = await self._create(self.config.minsize)
        except CONNECTION_ERRORS as error:
            # A database that is down at start-up must not crash the worker: start with an
            # empty pool, answer 503 until PostgreSQL is back, then connect on demand.
            log.warning("database unreachable at start-up (%s); pool starts empty", error)
            self._pool = await self._create(0)

    async def _create(self, minsize: int) -> Any:
        return await aiopg.create_pool(
            self.dsn,
            minsize=minsize,
            maxsize=self.config.maxsize,
            pool_recycle=self.config.recycle,
            timeout=self.config.acquire_timeout + self.config.statement_timeout + 5,
            enable_hstore=False,
            enable_uuid=False,
            # A prepared statement's generic plan from its first run: by default PostgreSQL
            # plans anew every run whose generic plan looks dearer than the custom ones, as
            # it did for every like's events (array parameters): 0.5 ms of planning each.
            options=(f"-c statement_timeout={int(self.config.statement_timeout * 1000)}"
                     " -c timezone=UTC -c plan_cache_mode=force_generic_plan"),
            connect_timeout=max(1, int(self.config.acquire_timeout)),
        )

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()

    @property
    def size(self) -> int:
        return 0 if self._pool is None else int(self._pool.size)

    @property
    def in_use(self) -> int:
        return 0 if self._pool is None else int(self._pool.size - self._pool.freesize)

    @asynccontextmanager
    async def cursor(self) -> AsyncIterator[Cursor]:
        """A cursor in autocommit mode; connection failures become DatabaseUnavailable."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.acquire_timeout):
                conn = await self._pool.acquire()
        except ACQUIRE_ERRORS as error:
            raise DatabaseUnavailable(f"cannot get a database connection: {error}") from error
        finally:
            if self.on_acquire_wait is not None:  # a timed-out wait counts too
                self.on_acquire_wait(time.perf_counter() - started)
        try:
            async with conn.cursor() as raw:
                yield Cursor(raw, self.config.prepare_statements)
        except CONNECTION_ERRORS as error:
            conn.close()  # a broken connection must not go back into the pool
            raise DatabaseUnavailable(f"database connection lost: {error}") from error
        except asyncio.CancelledError:
            conn.close()  # aiopg cancels the query; the connection state is unknown
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # a real cancellation (timeout, shutdown) goes through unchanged
            # Nobody cancelled us: aiopg reports a server statement_timeout this way.
            raise QueryCanceled("canceling statement due to statement timeout") from None
        finally:
            self._pool.release(conn)


class Database:
    """The primary pool plus optional replicas for reads that may be slightly stale.

    A ``stale_ok`` read goes to a healthy replica (sql/replicas.py) unless the current
    task is pinned to the primary (read-your-writes): every write pins the rest of its task
    (request), so a handler never reads a replica that lacks what it just wrote. Everything
    else, and every read while no replica is healthy, goes to the primary.
    """

    def __init__(self, primary: Pool, replicas: Sequence[Pool] = (),
                 max_lag_seconds: float = DEFAULT_MAX_LAG_SECONDS) -> None:
        self.primary = primary
        self.replica_set = ReplicaSet(replicas, max_lag_seconds)

    @property
    def replicas(self) -> list[Pool]:
        return [replica.pool for replica in self.replica_set.replicas]

    async def open(self) -> None:
        for pool in (self.primary, *self.replicas):
            await pool.open()
        await self.replica_set.start(self.primary)

    async def close(self) -> None:
        await self.replica_set.stop()
        for pool in (self.primary, *self.replicas):
            await pool.close()

    def _reader(self, stale_ok: bool) -> Replica | None:
        """The replica to read from, or None for the primary."""
        if not stale_ok or reads_pinned():
            return None
        return self.replica_set.pick()

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[Cursor]:
        """BEGIN … COMMIT on the primary; any exception rolls back. ``name`` labels logs.

        BEGIN travels with the first statement, and a transaction that ran none sends nothing:
        one round trip fewer for every write."""
        async with self.primary.cursor() as cur:
            cur.begin_with_next_statement()
            try:
                yield cur
            except BaseException:
                if cur.began:
                    await _rollback_quietly(cur, name)
                raise
            if cur.began:
                await cur.execute("COMMIT")
        pin_reads_to_primary()  # the rest of this request reads what it just wrote

    async def fetch_one(self, query: str | Prepared, params: Params = None, *,
                        stale_ok: bool = False) -> Row | None:
        return await self._read(lambda cur: cur.fetch_one(query, params), stale_ok)  # type: ignore[no-any-return]

    async def fetch_all(self, query: str | Prepared, params: Params = None, *,
                        stale_ok: bool = False) -> list[Row]:
        return await self._read(lambda cur: cur.fetch_all(query, params), stale_ok)  # type: ignore[no-any-return]

    async def fetch_value(self, query: str | Prepared, params: Params = None, *,
                          stale_ok: bool = False) -> Any:
        return await self._read(lambda cur: cur.fetch_value(query, params), stale_ok)

    async def fetch_one_write(self, query: str | Prepared, params: Params = None) -> Row | None:
        """One autocommit statement on the primary (e.g. UPDATE … RETURNING), never retried."""
        pin_reads_to_primary()
        async with self.primary.cursor() as cur:
            return await cur.fetch_one(query, params)

    async def fetch_all_write(self, query: str | Prepared, params: Params = None) -> list[Row]:
        pin_reads_to_primary()
        async with self.primary.cursor() as cur:
            return await cur.fetch_all(query, params)

    async def execute(self, query: str, params: Params = None) -> int:
        """One autocommit statement on the primary; returns the row count."""
        pin_reads_to_primary()
        async with self.primary.cursor() as cur:
            await cur.execute(query, params)
            return cur.rowcount

    async def _read(self, run: Any, stale_ok: bool) -> Any:
        replica = self._reader(stale_ok)
        if replica is not None:
            try:
                async with replica.pool.cursor() as cur:
                    return await run(cur)
            except DatabaseUnavailable:
                # Down since the last health check: the primary answers this read, and
                # the replica gets no more until a check finds it healthy.
                self.replica_set.mark_down(replica)
            except RecoveryConflict:
                log.info("read cancelled by a recovery conflict on %s; reading the primary",
                         replica.name)
        # aiopg does not ping pooled connections: after a PostgreSQL restart the first query
        # on a stale connection fails. A read is safe to retry once on a fresh connection.
        try:
            async with self.primary.cursor() as cur:
                return await run(cur)
        except DatabaseUnavailable:
            log.info("read failed on a stale connection; retrying once")
        async with self.primary.cursor() as cur:
            return await run(cur)


async def _rollback_quietly(cur: Cursor, name: str) -> None:
    try:
        await cur.execute("ROLLBACK")
    except Exception:  # the connection may be gone; the server rolls back on disconnect
        log.warning("rollback of transaction %s failed", name, exc_info=True)


def open_database(primary_url: str, replica_urls: Sequence[str], config: PoolConfig,
                  max_lag_seconds: float = DEFAULT_MAX_LAG_SECONDS) -> Database:
    return Database(Pool(primary_url, config), [Pool(url, config) for url in replica_urls],
                    max_lag_seconds)
