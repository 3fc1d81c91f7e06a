"""The read replicas behind ``DATABASE_REPLICA_URLS``: which of them may answer a read now.

Every process checks each replica once per ``CHECK_SECONDS`` in the background: a replica
that does not answer, or whose lag is past ``REPLICA_MAX_LAG_SECONDS``, gets no reads until a
later check finds it healthy again; with none healthy, reads go to the primary. A read that
fails on a replica between two checks marks it down at once and is answered by the primary.

Lag is measured by WAL position first: the primary's flushed WAL position is read, then
the replica's ``pg_last_wal_replay_lsn()``; a replica that has replayed that far lags 0 s
whatever its last replay time says (an idle primary writes nothing, so the last replayed
transaction may be hours old on a replica that misses nothing). Only a replica behind that
position lags ``now() - pg_last_xact_replay_timestamp()``. A replica whose replay is paused
(``pg_wal_replay_pause()``) therefore lags more every second the primary keeps writing.

Read-your-writes: ``pin_reads_to_primary()`` makes every later read of the current task (a
request, in aiohttp) go to the primary. ``Database`` pins a task once it writes, and the
service pins a request whose caller wrote within the last few seconds (service/freshness.py).
Background tasks that write (delivery workers) stay pinned: they want fresh rows anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sql.db import Pool

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
# A check that takes longer than this counts the replica as down.
CHECK_TIMEOUT_SECONDS = 2.0

# The flushed position: WAL streams to replicas only once flushed, so this is what a replica
# that misses nothing has replayed (with synchronous_commit=off a commit may be up to
# wal_writer_delay ahead of it, on no replica yet either way).
PRIMARY_POSITION = "SELECT pg_current_wal_flush_lsn()::text AS lsn"
# LSN arithmetic on the replica itself: '>= position' is exact, no parsing here.
REPLICA_LAG = """
SELECT pg_is_in_recovery() AS in_recovery,
       coalesce(pg_last_wal_replay_lsn() >= %(position)s::pg_lsn, false) AS caught_up,
       coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)::float8
           AS behind_seconds
"""

_pinned: ContextVar[bool] = ContextVar("reads_pinned_to_primary", default=False)


def pin_reads_to_primary() -> None:
    """Every later read of this task goes to the primary (its own writes are there)."""
    _pinned.set(True)


def reads_pinned() -> bool:
    return _pinned.get()


@dataclass
class Replica:
    pool: Pool
    name: str  # "replica0", …: the label in /metrics (never the URL, which may hold a password)
    healthy: bool = False
    lag_seconds: float = 0.0


class ReplicaSet:
    """The replicas and their health, checked by one background task per process."""

    def __init__(self, pools: Sequence[Pool], max_lag_seconds: float) -> None:
        self.replicas = [Replica(pool, f"replica{n}") for n, pool in enumerate(pools)]
        self.max_lag_seconds = max_lag_seconds
        self._checker: asyncio.Task[None] | None = None

    @property
    def read_your_writes_seconds(self) -> float:
        """How long a writer reads from the primary: until every replica still getting
        reads has replayed the write (the lag bound, plus a check to notice a worse lag)."""
        return self.max_lag_seconds + CHECK_SECONDS + CHECK_TIMEOUT_SECONDS

    def pick(self) -> Replica | None:
        """A healthy replica for a read, or None: use the primary."""
        healthy = [replica for replica in self.replicas if replica.healthy]
        return random.choice(healthy) if healthy else None

    def mark_down(self, replica: Replica) -> None:
        """A read failed on it: no more reads until a check finds it healthy."""
        if replica.healthy:
            log.warning("%s failed a read; reading from the primary until it answers again",
                        replica.name)
        replica.healthy = False

    async def start(self, primary: Pool) -> None:
        """Check once now (so the first reads may use replicas), then keep checking."""
        if not self.replicas:
            return
        await self.check(primary)
        self._checker = asyncio.create_task(self._check_forever(primary), name="replica-health")

    async def stop(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker

    async def check(self, primary: Pool) -> None:
        """Measure every replica's lag against the primary's WAL position now."""
        position = await _primary_position(primary)
        await asyncio.gather(*(self._check_one(replica, position)
                               for replica in self.replicas))

    async def _check_one(self, replica: Replica, position: str | None) -> None:
        was_healthy = replica.healthy
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                row = await _replica_lag(replica.pool, position)
        except Exception as error:  # down, refusing, timing out: no reads either way
            replica.healthy = False
            if was_healthy:
                log.warning("%s is down (%s); reading from the primary", replica.name, error)
            return
        replica.lag_seconds = 0.0 if row["caught_up"] else max(0.0, row["behind_seconds"])
        replica.healthy = bool(row["in_recovery"]) and replica.lag_seconds <= self.max_lag_seconds
        if was_healthy != replica.healthy:
            log.warning("%s is %s (lag %.1f s, bound %.1f s)", replica.name,
                        "healthy again" if replica.healthy else "skipped",
                        replica.lag_seconds, self.max_lag_seconds)

    async def _check_forever(self, primary: Pool) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                await self.check(primary)
            except Exception:  # never let the loop die: it is what brings replicas back
                log.exception("replica health check failed; trying again")


async def _primary_position(primary: Pool) -> str | None:
    """The primary's WAL position, or None when it does not answer (replicas then count as
    caught up only by their replay time)."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), primary.cursor() as cur:
            value = await cur.fetch_value(PRIMARY_POSITION)
    except Exception:
        return None
    return str(value)


async def _replica_lag(pool: Pool, position: str | None) -> dict[str, Any]:
    async with pool.cursor() as cur:
        row = await cur.fetch_one(REPLICA_LAG, {"position": position or "0/0"})
    assert row is not None
    if position is None:
        row["caught_up"] = False
    return row
