"""Every Redis key name, built in one place, with its time to live.

All keys share the deployment's prefix (``REDIS_PREFIX``) so several deployments, or test
runs, can share one Redis without touching each other's data.

On a Redis Cluster every key one Lua script touches must live in one hash slot, so keys that a
script reads together carry the same hash tag (the part in braces, which alone picks the
slot): a user's keys ``{u:<id>}``, a job's ``{j:<id>}``, the job lists ``{jobs}``. The cache
epoch is read alongside them in plain pipelines only, never inside a script, so it needs no
tag; a plain pipeline may span slots (redis-py sends each node its part). A prefix holding
braces would put every key in one slot: correct, but one node would hold everything.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Also bounds how long a revocation can be missed by a process killed while it still owed a
# cache epoch bump (cache/epoch.py).
TOKEN_TTL_SECONDS = 60
# The cache epoch outlives every entry stamped with it; each bump renews it.
EPOCH_TTL_SECONDS = 30 * 86_400
# Short enough that a count left stale by an invalidation lost in a Redis outage heals soon.
UNREAD_COUNT_TTL_SECONDS = 300
# A cached home feed lives this long (±10%) after its rebuild from PostgreSQL, which bounds
# how long a feed update lost in a Redis outage can leave it stale. Must stay well below
# FEED_ACTIVE_DAYS: only recently seen users get fan-out, and a live feed implies a recent visit.
FEED_TTL_SECONDS = 3600
# A user's own account answer; invalidated by every write that changes it.
OWN_USER_TTL_SECONDS = 300
# A user's open live streams (cache/live.py); renewed while any of them stays open.
LIVE_STREAMS_TTL_SECONDS = 3600


def spread(ttl_seconds: int, low: float = 0.8, high: float = 1.0) -> int:
    """``ttl_seconds`` times a random factor in [low, high]. Entries filled together (every
    active user's token after a restart, a benchmark's warm-up) would otherwise expire
    together, and go back to PostgreSQL together, once per TTL: a wave of lookups that
    stalled every request behind it. Shorter only by default, so a TTL stays a bound."""
    return max(1, round(ttl_seconds * random.uniform(low, high)))


@dataclass(frozen=True)
class VersionedKey:
    """A cached value and the generation counter that guards its fills."""

    value: str
    generation: str


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def epoch(self) -> str:
        """The cache epoch: bumped after an invalidation Redis missed (cache/epoch.py)."""
        return f"{self.prefix}epoch"

    def token(self, token_hash_hex: str) -> str:
        """The user a bearer token belongs to (short-lived copy of auth_tokens)."""
        return f"{self.prefix}token:{token_hash_hex}"

    def rate_limit(self, scope: str, subject: str, window_start: int) -> str:
        return f"{self.prefix}rl:{scope}:{subject}:{window_start}"

    def unread(self, kind: str, user_id: int) -> VersionedKey:
        """A user's unread count of ``kind`` ("notifications" or "messages")."""
        base = f"{self.prefix}{_user(user_id)}:unread:{kind}"
        return VersionedKey(value=base, generation=f"{base}:gen")

    def own_user(self, user_id: int) -> VersionedKey:
        """A user's own account answer (GET /me's ``user``): profile, counters, email."""
        base = f"{self.prefix}{_user(user_id)}:me"
        return VersionedKey(value=base, generation=f"{base}:gen")

    def job_page(self, category: str | None) -> VersionedKey:
        """Page 1 of open jobs (optionally of one category); one generation for all lists,
        so one bump (cache/versioned.py) makes every page a miss."""
        name = "*" if category is None else category
        return VersionedKey(value=f"{self.prefix}{{jobs}}:page1:{name}",
                            generation=f"{self.prefix}{{jobs}}:lists:gen")

    def job_flags(self, user_id: int, category: str | None) -> VersionedKey:
        """What the user saved and follows among page 1's jobs and employers (of one
        category); one generation for all of the user's pages, bumped by their saves and
        follows."""
        name = "*" if category is None else category
        base = f"{self.prefix}{_user(user_id)}:jobflags"
        return VersionedKey(value=f"{base}:{name}", generation=f"{base}:gen")

    def job(self, job_id: int) -> VersionedKey:
        base = f"{self.prefix}{{j:{job_id}}}:job"
        return VersionedKey(value=base, generation=f"{base}:gen")

    def feed(self, user_id: int) -> VersionedKey:
        """A user's home feed (sorted set of post ids by creation time) and its fill guard."""
        base = f"{self.prefix}{_user(user_id)}:feed"
        return VersionedKey(value=base, generation=f"{base}:gen")

    def feed_epoch(self, user_id: int) -> str:
        """The cache epoch a user's home feed was rebuilt under."""
        return f"{self.prefix}{_user(user_id)}:feed:epoch"

    def recent_write(self, user_id: int) -> str:
        """Present for a few seconds after the user's write: read the primary meanwhile."""
        return f"{self.prefix}{_user(user_id)}:wrote"

    def live_channel(self) -> str:
        """The one pub/sub channel every worker process listens on for live events."""
        return f"{self.prefix}live"

    def live_streams(self, user_id: int) -> str:
        """A user's open live streams (sorted set of stream ids by opening time). The braces
        are a Redis Cluster hash tag: a user's keys stay on one slot."""
        return f"{self.prefix}live:{{u:{user_id}}}:streams"

    def pattern(self) -> str:
        """Matches every key of this deployment (tests clean up with it)."""
        return f"{self.prefix}*"


def _user(user_id: int) -> str:
    """The hash tag of a user's keys: one slot for everything a script reads of one user."""
    return f"{{u:{user_id}}}"
