"""Page 1 of the open-jobs lists, answered from the cache: one Redis round trip when warm.

A page answer has three cached parts, each read through ``cache.readthrough``:

- the page's job rows, shared by every caller (one generation for every list: any job write
  makes them all misses);
- the caller's flags, which of those jobs they saved and which employers they follow
  (``JobFlags``, one generation per user, bumped by their saves and follows);
- each employer's profile: their cached account answer, the very entry GET /me reads, so
  profile edits and follower counts stay exact through the invalidation that entry already has.

All three are read in the round trip that checks the caller's token. The employers are not
known until the page is read, so the process asks for the employers of the page it last
served for that category, which the page's still are unless a job was posted since; when they
are not, their profiles cost one more round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aiohttp import web

from cache.client import Cache
from cache.jobs import JOB_FLAGS_TTL_SECONDS, JOB_PAGE_TTL_SECONDS, JOB_TTL_SECONDS
from cache.keys import OWN_USER_TTL_SECONDS, Keys
from cache.readthrough import CachedValue, read_through
from cache.versioned import Cached
from service.api.answers import job_answer, public_profile
from service.api.job_schemas import Job, JobFlags, JobRow
from service.api.schemas import OwnUser, Page
from service.appkeys import STORES
from service.authn import authenticate_reading
from service.errors import NotFound
from service.paging import split_page
from service.responses import from_row
from sql import jobs, users
from sql.db import Database

PAGE_SIZE = 20
# How many categories' page employers a process remembers; a guess beyond them costs only
# the extra round trip.
REMEMBERED_CATEGORIES = 256


class PageEmployers:
    """Per category, the employers of the page this process served last."""

    def __init__(self) -> None:
        self._by_category: dict[str | None, list[int]] = {}

    def guess(self, category: str | None) -> list[int]:
        return self._by_category.get(category, [])

    def saw(self, category: str | None, employer_ids: list[int]) -> None:
        if len(self._by_category) >= REMEMBERED_CATEGORIES:
            self._by_category.clear()
        self._by_category[category] = employer_ids


PAGE_EMPLOYERS = web.AppKey("page_employers", PageEmployers)


def page_value(cache: Cache, category: str | None) -> CachedValue:
    return CachedValue(cache.keys.job_page(category), list[JobRow], JOB_PAGE_TTL_SECONDS)


def job_value(cache: Cache, job_id: int) -> CachedValue:
    return CachedValue(cache.keys.job(job_id), JobRow, JOB_TTL_SECONDS)


def flags_value(cache: Cache, user_id: int, category: str | None) -> CachedValue:
    return CachedValue(cache.keys.job_flags(user_id, category), JobFlags, JOB_FLAGS_TTL_SECONDS)


def employer_values(cache: Cache, employer_ids: Sequence[int]) -> list[CachedValue]:
    return [_employer_value(cache.keys, employer_id) for employer_id in employer_ids]


# A page names about twenty employers, read twice per request: building their keys was a
# tenth of a warm page's samples. They never change, so the recent ones are kept.
@lru_cache(maxsize=4096)
def _employer_value(keys: Keys, employer_id: int) -> CachedValue:
    return CachedValue(keys.own_user(employer_id), OwnUser, OWN_USER_TTL_SECONDS)


async def first_page(request: web.Request, category: str | None) -> Page[Job]:
    """``GET /jobs`` page 1 of open jobs (of ``category``), as the caller sees it."""
    stores = request.app[STORES]
    cache, db = stores.cache, stores.db
    remembered = request.app[PAGE_EMPLOYERS]
    guessed = remembered.guess(category)
    principal, prefetched = await authenticate_reading(request, lambda user_id: [
        page_value(cache, category), flags_value(cache, user_id, category),
        *employer_values(cache, guessed)])
    page_entries, flag_entries, employer_entries = _split(prefetched)

    rows = await read_page_rows(db, cache, category, page_entries)
    page, next_cursor = split_page(rows, PAGE_SIZE, lambda row: (row.created_at, row.id))
    job_ids = [row.id for row in page]
    employer_ids = sorted({row.employer_id for row in page})
    remembered.saw(category, employer_ids)
    profiles = await _read_employers(db, cache, employer_ids,
                                     employer_entries if guessed == employer_ids else None)

    async def load_flags() -> list[JobFlags]:
        saved, followed = await jobs.get_job_flags(db, principal.user_id, job_ids, employer_ids)
        return [JobFlags(jobs=job_ids, saved=saved, employers=employer_ids, followed=followed)]

    [flags] = await read_through(cache, [flags_value(cache, principal.user_id, category)],
                                 load_flags, flag_entries,
                                 usable=lambda values: values[0].cover(job_ids, employer_ids))
    saved, followed = set(flags.saved), set(flags.followed)
    items = [job_answer(row, public_profile(profiles[row.employer_id],
                                            row.employer_id in followed), row.id in saved)
             for row in page if row.employer_id in profiles]
    return Page(items=items, next_cursor=next_cursor)


async def read_page_rows(db: Database, cache: Cache, category: str | None,
                         prefetched: Sequence[Cached] | None = None) -> list[JobRow]:
    """Page 1's rows and the one after it (which makes the cursor), newest first."""

    async def load() -> list[list[JobRow]]:
        rows = await jobs.list_jobs(db, {"category": category}, status="open", after=None,
                                    limit=PAGE_SIZE + 1)
        return [[from_row(row, JobRow) for row in rows]]

    [rows] = await read_through(cache, [page_value(cache, category)], load, prefetched,
                                usable=lambda values: _none_expired(values[0]))
    return rows  # type: ignore[no-any-return]


async def read_job_row(db: Database, cache: Cache, job_id: int) -> JobRow:
    """One job's row, cached; 404 when there is no such job."""

    async def load() -> list[JobRow]:
        row = await jobs.get_job(db, job_id)
        if row is None:
            raise NotFound()
        return [from_row(row, JobRow)]

    [row] = await read_through(cache, [job_value(cache, job_id)], load,
                               usable=_none_expired)
    return row  # type: ignore[no-any-return]


async def _read_employers(db: Database, cache: Cache, employer_ids: list[int],
                          prefetched: Sequence[Cached] | None) -> dict[int, OwnUser]:
    if not employer_ids:
        return {}

    async def load() -> list[OwnUser | None]:
        rows = await users.get_own_users(db, employer_ids)
        # A user is never deleted, so every employer is found; were one missing, its None
        # is stored as null, which reads back as a miss.
        return [from_row(rows[employer_id], OwnUser) if employer_id in rows else None
                for employer_id in employer_ids]

    profiles = await read_through(cache, employer_values(cache, employer_ids), load, prefetched)
    return {employer_id: profile for employer_id, profile in zip(employer_ids, profiles,
                                                                 strict=True) if profile}


def _split(prefetched: list[Cached] | None) -> tuple[Any, Any, Any]:
    """The entries read with the token: page, flags, employers (all None when not read)."""
    if prefetched is None:
        return None, None, None
    return prefetched[:1], prefetched[1:2], prefetched[2:]


def _none_expired(rows: list[JobRow]) -> bool:
    now = datetime.now(UTC)
    return not any(row.expired_since_read(now) for row in rows)
