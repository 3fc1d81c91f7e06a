"""Large fan-outs: one outbox row, expanded by the queue in batches.

A request that must notify many users (every applicant of a closed job, every follower's feed)
writes one ``fanout`` row. The queue runs its handler batch by batch, each batch in its own
transaction together with the row's progress checkpoint, so a crash resumes where it stopped
and no batch is applied twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cache.client import CacheUnavailable
from sql.outbox import insert_outbox_txn, save_progress_txn
from tasks.outcome import Outcome
from tasks.queue import Claim
from tasks.work import Stores, Work, unit_of_work

BATCH_SIZE = 500

# A handler applies one batch after ``after`` (None at the start) and returns where the next
# batch starts, or None when it has done the last one.
FanoutHandler = Callable[[Work, dict[str, Any], Any, int], Awaitable[Any]]


@dataclass
class Fanouts:
    stores: Stores
    lease_seconds: float
    handlers: dict[str, FanoutHandler] = field(default_factory=dict)

    def register(self, name: str, handler: FanoutHandler) -> None:
        self.handlers[name] = handler


async def enqueue_fanout_txn(work: Work, name: str, payload: dict[str, Any],
                             idempotency_key: str) -> None:
    body = {"fanout": name, "args": payload, "after": None}
    row_id = await insert_outbox_txn(work.cur, "fanout", body, f"fanout:{idempotency_key}")
    work.deliver_after_commit(row_id)


async def run_fanout(fanouts: Fanouts, claim: Claim) -> Outcome:
    handler = fanouts.handlers.get(claim.payload.get("fanout", ""))
    if handler is None:
        return Outcome.dead(f"unknown fan-out {claim.payload.get('fanout')!r}")
    try:
        return await _run_batches(fanouts.stores, handler, claim, fanouts.lease_seconds)
    except CacheUnavailable as error:  # a batch Redis could not take: from there, later
        return Outcome.retry(f"redis unavailable: {error}")


async def _run_batches(stores: Stores, handler: FanoutHandler, claim: Claim,
                       lease_seconds: float) -> Outcome:
    payload = dict(claim.payload)
    while True:
        async with unit_of_work(stores, f"fanout_{payload['fanout']}") as work:
            after = await handler(work, payload["args"], payload["after"], BATCH_SIZE)
            payload["after"] = after
            lease = await save_progress_txn(work.cur, claim.id, claim.lease, payload,
                                            lease_seconds)
            if lease is None:  # another process took the row over: undo this batch
                raise LeaseLost(claim.id)
        claim.lease = lease
        if after is None:
            return Outcome.sent()


class LeaseLost(Exception):
    """The row's lease expired and another worker claimed it."""
