"""The in-process delivery queue: workers that claim outbox rows, deliver, and record.

Each worker process runs one ``OutboxQueue``: a bounded ``asyncio.Queue`` woken after
commit with new row ids, N worker coroutines, and a sweeper that claims due rows nobody woke
(retries, rows written without a wake-up, rows whose lease ran out in a killed process).
PostgreSQL is the queue of record; this one only saves the wait for the next sweep. No
transaction is held while talking to a remote peer.

The sweeper claims no more than the workers can start soon (a claimed row's lease runs while
it waits), so a backlog is claimed in batches: whenever a batch came back full, it claims the
next one as soon as the workers have taken half of the queue, not after a sweep interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sql.db import Database
from sql.outbox import (
    Finish,
    claim_due_outbox_rows,
    claim_outbox_row,
    finish_outbox_row,
    prune_outbox,
    renew_lease,
)
from tasks.background import cancel_until_done
from tasks.outcome import Outcome
from tasks.recorder import ResultRecorder

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
CLAIM_AHEAD_PER_WORKER = 2  # the sweeper claims no more than workers can start soon
MAX_RETRY_DELAY_SECONDS = 3600.0
PRUNE_EVERY_SECONDS = 3600.0
# A claim that has waited less than this share of its lease still has more of it left than a
# send may take (30 s of a 60 s lease): it goes out on the lease it has, without a renewal
# round trip. One that waited longer is renewed first, or dropped if another process took it.
FRESH_LEASE_SHARE = 0.25


@dataclass(frozen=True)
class DeliveryConfig:
    """The queue's DELIVERY_* settings (``runtime.delivery_config``): no defaults here, the
    settings' are the only ones."""

    workers: int
    lease_seconds: float
    sweep_seconds: float
    retry_base_seconds: float
    max_attempts: int
    grace_seconds: float = 10.0  # not a setting: how long stop() lets in-flight sends finish


@dataclass
class Claim:
    """A row this process holds; ``lease`` is the token that proves it still does."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    lease: datetime
    created_at: datetime
    claimed_at: float = field(default_factory=time.monotonic)

    def is_fresh(self, lease_seconds: float) -> bool:
        return time.monotonic() - self.claimed_at < lease_seconds * FRESH_LEASE_SHARE


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    lost_leases: int = 0
    claim_batches: int = 0  # the sweeper's claiming statements
    idle_sweeps: int = 0  # sweep intervals waited out with nothing left to claim


Deliver = Callable[[Claim], Awaitable[Outcome]]
STOP = 0  # no outbox id is 0: tells a worker to finish


def retry_delay(attempts: int, base: float, retry_after: float | None) -> float:
    """Exponential backoff with ±25% jitter, never sooner than the peer asked.

    The jitter spreads retries of many rows apart while keeping each row's gaps growing.
    """
    backoff = min(MAX_RETRY_DELAY_SECONDS, base * 2 ** max(0, attempts - 1))
    delay: float = backoff * random.uniform(0.75, 1.25)
    return max(delay, retry_after or 0.0)


class OutboxQueue:
    def __init__(self, db: Database, config: DeliveryConfig) -> None:
        self.db = db
        self.config = config
        self.deliver: Deliver | None = None
        self.stats = DeliveryStats()
        self.recorder = ResultRecorder(db)
        self._queue: asyncio.Queue[int | Claim] = asyncio.Queue(QUEUE_SIZE)
        self._waiting: set[int] = set()  # ids in the local queue, so sweeps add no duplicates
        self._held: set[int] = set()  # rows claimed by the sweeper, waiting for a worker
        self._workers: list[asyncio.Task[None]] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._sweep_now = asyncio.Event()
        self._room = asyncio.Event()  # set when the queue has drained to its low-water mark
        self._capacity = config.workers * CLAIM_AHEAD_PER_WORKER
        self._low_water = self._capacity // 2

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def wake(self, row_ids: Iterable[int]) -> None:
        """After commit: deliver these soon. A full queue is fine: the sweeper finds them."""
        for row_id in row_ids:
            if row_id in self._waiting:
                continue
            try:
                self._queue.put_nowait(row_id)
            except asyncio.QueueFull:
                return
            self._waiting.add(row_id)

    def sweep_soon(self) -> None:
        self._sweep_now.set()

    def start(self, deliver: Deliver) -> None:
        self.deliver = deliver
        self._workers = [asyncio.create_task(self._work(), name=f"delivery-worker-{n}")
                         for n in range(self.config.workers)]
        self._sweeper = asyncio.create_task(self._sweep(), name="delivery-sweeper")

    async def stop(self) -> None:
        """Stop sweeping; give rows in hand the grace period; leave the rest pending."""
        if self._sweeper is not None:
            await cancel_until_done(self._sweeper)
        await self._release_queued()
        for _ in self._workers:
            self._queue.put_nowait(STOP)
        if self._workers:
            _, late = await asyncio.wait(self._workers, timeout=self.config.grace_seconds)
            for task in late:
                await cancel_until_done(task)
        await self.recorder.close()

    async def _release_queued(self) -> None:
        """Rows claimed but not started go back to pending at once, for other processes."""
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, Claim):
                self._held.discard(item.id)
                with contextlib.suppress(Exception):
                    await finish_outbox_row(self.db, item.id, item.lease, "pending",
                                            "released at shutdown")

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            if self._queue.qsize() <= self._low_water:
                self._room.set()  # the sweeper may claim the next batch of a backlog
            if item == STOP:
                return
            try:
                await self._process(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery worker failed on outbox row %s; carrying on", item)

    async def _process(self, item: int | Claim) -> None:
        if isinstance(item, int):
            self._waiting.discard(item)
            row = await claim_outbox_row(self.db, item, self.config.lease_seconds)
            if row is None:
                return  # not due yet, already done, or another worker has it
            item = Claim(**row)
        else:
            self._held.discard(item.id)
            if not item.is_fresh(self.config.lease_seconds):
                # It may have waited in the queue past its lease: renew it, or drop it if
                # another process took the row over, so a row is never sent on a stale claim.
                lease = await renew_lease(self.db, item.id, item.lease,
                                          self.config.lease_seconds)
                if lease is None:
                    self.stats.lost_leases += 1
                    return
                item.lease = lease
        assert self.deliver is not None, "start() sets the deliverer"
        try:
            outcome = await self.deliver(item)
        except asyncio.CancelledError:
            # Shutting down mid-delivery: hand the row back rather than wait out the lease.
            with contextlib.suppress(Exception):
                await finish_outbox_row(self.db, item.id, item.lease, "pending",
                                        "interrupted by shutdown")
            raise
        except Exception as error:
            log.exception("delivery of outbox row %s raised", item.id)
            outcome = Outcome.retry(f"internal error: {type(error).__name__}")
        await self._record(item, outcome)

    async def _record(self, claim: Claim, outcome: Outcome) -> None:
        status: str = outcome.status
        delay = 0.0
        if status == "retry":
            if claim.attempts >= self.config.max_attempts:
                status = "dead"
            else:
                status = "pending"
                delay = retry_delay(claim.attempts, self.config.retry_base_seconds,
                                    outcome.retry_after)
        kept = await self.recorder.record(Finish(claim.id, claim.lease, status,
                                                 outcome.reason or None, delay))
        if not kept:
            self.stats.lost_leases += 1
            log.warning("outbox row %s: lease lost before recording %s", claim.id, status)
            return
        self._count(status, outcome.reason)
        if status in ("dead", "pending"):
            log.info("outbox row %s %s after attempt %s: %s", claim.id,
                     "is dead" if status == "dead" else f"retries in {delay:.1f}s",
                     claim.attempts, outcome.reason)

    def _count(self, status: str, reason: str) -> None:
        if status == "sent":
            self.stats.sent += 1
        elif status == "pending":
            self.stats.retried += 1
        elif status == "dead":
            self.stats.dead += 1
        else:
            self.stats.skipped[reason.split(":")[0] or "unknown"] += 1

    async def _sweep(self) -> None:
        last_prune = 0.0
        loop = asyncio.get_running_loop()
        while True:
            # Cleared before the claim, not after it: a nudge (sweep_soon) that arrives while
            # the claim runs then makes the wait below return at once instead of being lost.
            self._sweep_now.clear()
            try:
                more = await self._claim_due()
                if loop.time() - last_prune > PRUNE_EVERY_SECONDS:
                    last_prune = loop.time()
                    await prune_outbox(self.db)
            except Exception:
                log.exception("delivery sweep failed; trying again next sweep")
                more = False
            if more:
                await self._wait_for_room()
                continue
            self.stats.idle_sweeps += 1
            jittered = self.config.sweep_seconds * random.uniform(0.8, 1.2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sweep_now.wait(), jittered)

    async def _claim_due(self) -> bool:
        """Claim what the workers have room for; True when more rows may be due."""
        room = self._capacity - self._queue.qsize()
        if room <= 0:
            return True  # busy with woken rows: look again once they have drained
        rows = await claim_due_outbox_rows(self.db, room, self.config.lease_seconds,
                                           self._held)
        self.stats.claim_batches += 1
        for row in rows:
            self._held.add(row["id"])
            self._queue.put_nowait(Claim(**row))
        return len(rows) == room

    async def _wait_for_room(self) -> None:
        """Until the workers have taken the queue down to half its capacity (or a sweep
        interval has passed, so pruning and shutdown never wait on busy workers)."""
        self._room.clear()
        if self._queue.qsize() <= self._low_water:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), self.config.sweep_seconds)
