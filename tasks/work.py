"""A unit of work: one transaction, then what must happen after its commit.

Every write goes through ``unit_of_work``. Code that changes what a cache holds, revokes
tokens, or writes notifications or outbox rows records that on the ``Work``; just before
commit the live events it causes are stored with their ids (sql/events.py); once the
transaction commits, the tokens are revoked in every process, the cache entries invalidated
and the live events published (one Redis round trip), the after-commit actions run and the
delivery queue woken (as Synapse's ``txn.call_after``).
Nothing touches Redis or the queue while the transaction is open, and nothing does if it
rolls back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from cache.client import Cache
from cache.counters import own_user_keys, unread_count_keys
from cache.jobs import job_flag_keys, job_keys
from cache.keys import VersionedKey
from cache.live import publish_events
from cache.tokens import revoke_cached_tokens
from sql.db import Cursor, Database
from sql.events import PendingEvent, insert_events_txn
from tasks.queue import OutboxQueue


@dataclass(frozen=True)
class Stores:
    """Where a process's writes go: PostgreSQL, Redis, and the delivery queue that sends what
    they put in the outbox. One per process (built in service/app.py), shared by handlers and
    tasks."""

    db: Database
    cache: Cache
    queue: OutboxQueue


@dataclass
class Work:
    cur: Cursor
    stores: Stores
    outbox_ids: list[int] = field(default_factory=list)
    unread_changed: dict[str, set[int]] = field(default_factory=dict)
    own_users_changed: set[int] = field(default_factory=set)
    jobs_changed: set[int] = field(default_factory=set)
    job_flags_changed_for: set[int] = field(default_factory=set)
    tokens_revoked: set[str] = field(default_factory=set)
    live_events: list[PendingEvent] = field(default_factory=list)
    actions: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def deliver_after_commit(self, *row_ids: int | None) -> None:
        """Wake this process's delivery queue for these outbox rows once committed."""
        self.outbox_ids.extend(row_id for row_id in row_ids if row_id is not None)

    def unread_count_changed(self, kind: str, *user_ids: int) -> None:
        self.unread_changed.setdefault(kind, set()).update(user_ids)

    def live_event(self, user_id: int, kind: str, ref: int) -> None:
        """Tell ``user_id``'s live streams about notification or message ``ref`` (its data is
        read just before commit). ``unread`` events follow from ``unread_count_changed``."""
        self.live_events.append(PendingEvent(user_id, kind, ref))

    def own_user_changed(self, *user_ids: int) -> None:
        """What GET /me shows of these users changed (profile, counters, verification)."""
        self.own_users_changed.update(user_ids)

    def job_changed(self, *job_ids: int) -> None:
        """These jobs' cached entries, and every cached jobs page, are stale."""
        self.jobs_changed.update(job_ids)

    def job_flags_changed(self, *user_ids: int) -> None:
        """What these users saved or follow changed: their cached job flags are stale."""
        self.job_flags_changed_for.update(user_ids)

    def token_revoked(self, *token_hashes: bytes) -> None:
        """These bearer tokens stop working in every process, and end their live streams."""
        self.tokens_revoked.update(token_hash.hex() for token_hash in token_hashes)

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` after a successful commit (e.g. update a Redis structure)."""
        self.actions.append(action)

    def stale_entries(self) -> list[VersionedKey]:
        """Every cached entry the write made stale: invalidated together, in one round trip."""
        cache = self.stores.cache
        stale = [key for kind, user_ids in self.unread_changed.items()
                 for key in unread_count_keys(cache, kind, user_ids)]
        stale += own_user_keys(cache, self.own_users_changed)
        if self.jobs_changed:
            stale += job_keys(cache, self.jobs_changed)
        return stale + job_flag_keys(cache, self.job_flags_changed_for)


@asynccontextmanager
async def unit_of_work(stores: Stores, name: str) -> AsyncIterator[Work]:
    async with stores.db.transaction(name) as cur:
        work = Work(cur, stores)
        yield work
        events = await _store_live_events_txn(work)
    if work.tokens_revoked:
        await revoke_cached_tokens(stores.cache, sorted(work.tokens_revoked))
    await publish_events(stores.cache, events, stale=work.stale_entries())
    for action in work.actions:
        await action()
    stores.queue.wake(work.outbox_ids)


async def _store_live_events_txn(work: Work) -> list[dict[str, object]]:
    """The recorded events, then one ``unread`` event per user whose counts changed."""
    unread = sorted(set().union(*work.unread_changed.values())) if work.unread_changed else []
    pending = [*work.live_events, *(PendingEvent(user_id, "unread") for user_id in unread)]
    if not pending:
        return []
    return await insert_events_txn(work.cur, pending)
