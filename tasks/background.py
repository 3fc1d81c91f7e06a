"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio

RECHECK_SECONDS = 0.1


async def cancel_until_done(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it to end, cancelling again while it runs on.

    aiopg waits with ``asyncio.wait_for``, which on Python 3.11 can swallow a cancellation
    (CPython gh-86296): one ``cancel()`` is not always enough to stop a task in a query.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=RECHECK_SECONDS)
