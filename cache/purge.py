"""Deleting every key under a prefix: what ``run.py clean-local`` does to a trial run's Redis."""

from __future__ import annotations

from cache.client import connect

SCAN_BATCH = 1000


async def delete_prefixed_keys(url: str, prefix: str) -> int:
    """UNLINK every key starting with ``prefix``, a SCAN batch at a time; the count deleted.

    Only keys under the prefix are touched: the Redis may hold other applications' data. On
    a cluster, SCAN runs on every master and UNLINK is split per slot (redis-py does both).
    """
    client = connect(url, socket_connect_timeout=2, socket_timeout=10)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{_escape(prefix)}*", count=SCAN_BATCH):
            batch.append(key)
            if len(batch) >= SCAN_BATCH:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


def _escape(prefix: str) -> str:
    """A literal prefix for SCAN's glob pattern."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in prefix)
