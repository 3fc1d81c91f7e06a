"""The cache epoch: how invalidations that Redis missed still land once it is back.

A write invalidates its cached copies after commit. When Redis is unavailable at that moment
(down, stalled, breaker open) the invalidation cannot be written, and without more the old copy
would be served again once Redis returns. So every cached token, count, job and feed records
the epoch (an integer in one Redis key) it was filled under, and readers fetch the epoch in
the same round trip as the entry: an entry of another epoch is a miss. A process whose
invalidation failed owes an epoch bump; it pays before its next Redis call, and a background
retry pays it within ``SETTLE_RETRY_SECONDS`` of Redis answering again, breaker or not. Every
copy made before the bump is then ignored. Fills are stamped with the epoch their reader saw,
so a reader that read PostgreSQL before the bump stores at most a copy that reads as a miss.
(The fill scripts do not re-read the epoch: on a Redis Cluster it lives in another slot.)

A process killed while it owes a bump takes the debt with it: the entries' TTLs bound that
(60 s for tokens, 300 s for counts; feed fan-outs are also retried through the outbox).
"""

from __future__ import annotations

import asyncio

SETTLE_RETRY_SECONDS = 0.5
SEPARATOR = "/"


class EpochDebt:
    """Invalidations this process could not write, and how many a bump has covered."""

    def __init__(self) -> None:
        self.owed = 0
        self.paid = 0
        self.lock = asyncio.Lock()  # one bump at a time; callers re-check after waiting

    @property
    def outstanding(self) -> bool:
        return self.owed > self.paid

    def incur(self) -> None:
        self.owed += 1


def stamp(epoch: str, payload: str) -> str:
    """A value as stored: the epoch it was filled under, then the payload."""
    return f"{epoch}{SEPARATOR}{payload}"


def unstamp(raw: str | None, epoch: str) -> str | None:
    """The payload of a stored value, or None when absent or filled under another epoch."""
    if raw is None:
        return None
    filled_under, separator, payload = raw.partition(SEPARATOR)
    return payload if separator and filled_under == epoch else None


def version_of(epoch: str, generation: str) -> str:
    """What a reader hands back to fill with: the epoch and the entry's generation it saw."""
    return f"{epoch}{SEPARATOR}{generation}"


def split_version(version: str) -> tuple[str, str]:
    """(epoch, generation) of a ``version_of`` string."""
    epoch, _, generation = version.partition(SEPARATOR)
    return epoch, generation
