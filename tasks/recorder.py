"""Recording delivery results in batches: one UPDATE for every result that is ready.

A worker that has sent a row waits for its result to be written before it takes the next, and
with a backlog every worker finishes a row every few milliseconds: one statement per result
was a third of the queue's round trips. Here the first result to arrive is written at once;
the ones that arrive while that statement runs wait for it and go together in the next (group
commit), so an idle queue adds no delay and a busy one pays one round trip per batch.
"""

from __future__ import annotations

import asyncio

from sql.db import Database
from sql.outbox import Finish, finish_outbox_rows
from tasks.background import cancel_until_done

MAX_BATCH = 200


class ResultRecorder:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.statements = 0  # for the stats: how many UPDATEs the results took
        self._ready: list[tuple[Finish, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, finish: Finish) -> bool:
        """Write one result; False when the lease was lost (another process has the row)."""
        written: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._ready.append((finish, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="delivery-result-writer")
        # Shielded: a worker cancelled while waiting (shutdown) must not cancel the batch
        # that carries other workers' results.
        return await asyncio.shield(written)

    async def close(self) -> None:
        if self._writer is not None:
            await cancel_until_done(self._writer)
        for _, written in self._ready:
            written.cancel()
        self._ready = []

    async def _write(self) -> None:
        while self._ready:
            batch, self._ready = self._ready[:MAX_BATCH], self._ready[MAX_BATCH:]
            self.statements += 1
            try:
                kept = await finish_outbox_rows(self.db, [finish for finish, _ in batch])
            except asyncio.CancelledError:
                for _, written in batch:
                    written.cancel()
                raise
            except Exception as error:  # the database is down: each worker hears of it
                for _, written in batch:
                    if not written.done():
                        written.set_exception(error)
                continue
            for finish, written in batch:
                if not written.done():
                    written.set_result(finish.id in kept)
