"""Who wrote in the last few seconds: read-your-writes while reads may go to replicas.

After a user's write commits, a marker with a short TTL (the replicas' lag bound plus the
time a health check takes to notice a lagging replica) tells every process that this user's
reads must go to the primary for now. The marker is read in the same round trip as the
user's token (cache/tokens.py), so it costs no extra call.

Redis holds the marker, but a marker Redis could not take must not let the user read a
replica that lacks their write: each process also remembers its own recent writers in memory
(bounded like cache/windows.py), and a reader that cannot ask Redis reads the primary. What is
left: the write's process could not reach Redis, Redis answers again within the window, and
the user's next read lands on another process; the lag bound limits how stale that one read
can be.
"""

from __future__ import annotations

import redis.asyncio as redis

from cache.client import Cache


async def mark_recent_write(cache: Cache, user_id: int, seconds: float) -> None:
    """After commit: this user's reads go to the primary for ``seconds``, in every process."""
    cache.recent_writes.note(user_id, seconds)
    key = cache.keys.recent_write(user_id)

    async def mark(client: redis.Redis) -> None:
        await client.set(key, "1", px=max(1, int(seconds * 1000)))

    await cache.run_or(mark, None)


async def wrote_recently(cache: Cache, user_id: int) -> bool:
    """Whether the user wrote within the window; True when Redis cannot tell (the safe side).
    For callers that could not read the marker with the token."""
    if cache.recent_writes.wrote_recently(user_id):
        return True
    key = cache.keys.recent_write(user_id)
    found = await cache.run_or(lambda client: client.exists(key), None)
    return found is None or bool(found)
