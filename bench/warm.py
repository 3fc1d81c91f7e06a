"""Every pooled user's cached reads filled before the cases, so each case measures warm caches.

Each run uses a Redis prefix of its own, so it starts cold. Before this, the first case to
read a feed (the feed at 64 connections) spent much of its time rebuilding the 1,000 pooled
users' feeds from PostgreSQL and measured about half the warm rate, while the same case at 16
connections, run next, found them warm. Here each pooled user reads each cached answer once,
16 at a time, and nothing is measured.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import uvloop

API = "/api/v1"
# The answers the cases read from the cache; the jobs page also fills the caller's flags.
CACHED_PATHS = ("/feed", "/me", "/notifications/unread_count", "/messages/unread_count",
                "/jobs")
CONCURRENCY = 16


def warm_caches(url: str, tokens: list[str]) -> float:
    """Read every cached answer once for each token; the seconds it took."""
    started = time.monotonic()
    failed = uvloop.run(_warm(url, tokens))
    if failed:
        raise SystemExit(f"warming the caches: {failed} requests failed")
    return time.monotonic() - started


async def _warm(url: str, tokens: list[str]) -> int:
    queue = [(token, path) for token in tokens for path in CACHED_PATHS]
    failed = 0
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def worker() -> None:
            nonlocal failed
            while queue:
                token, path = queue.pop()
                headers = {"Authorization": f"Bearer {token}"}
                async with session.get(f"{url}{API}{path}", headers=headers) as answer:
                    await answer.read()
                    failed += answer.status != 200

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return failed
