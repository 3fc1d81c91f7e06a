"""What is cached of jobs: page 1 of the open-jobs lists, single jobs, and per user which of
a page's jobs they saved and which of its employers they follow.

Job entries hold no per-user field. Every cached list shares one generation, so any job write
makes every list (default and per category) a miss at once, and a fill that raced the write is
refused (cache/versioned.py). A user's flags likewise share one generation per user, bumped by
their saves and follows. The values are read through ``cache.readthrough``; the handlers
(service/api/cached_jobs.py) declare them with their types.
"""

from __future__ import annotations

from collections.abc import Iterable

from cache.client import Cache
from cache.keys import VersionedKey
from cache.versioned import invalidate_versioned

JOB_PAGE_TTL_SECONDS = 60
JOB_TTL_SECONDS = 300
JOB_FLAGS_TTL_SECONDS = 300


def job_keys(cache: Cache, job_ids: Iterable[int]) -> list[VersionedKey]:
    """What a write of these jobs makes stale: their entries and every cached list."""
    return [*(cache.keys.job(job_id) for job_id in sorted(set(job_ids))),
            cache.keys.job_page(None)]


def job_flag_keys(cache: Cache, user_ids: Iterable[int]) -> list[VersionedKey]:
    """What these users' saves, unsaves, follows and unfollows make stale: their flags."""
    return [cache.keys.job_flags(user_id, None) for user_id in sorted(set(user_ids))]


async def invalidate_job_flags(cache: Cache, user_ids: Iterable[int]) -> None:
    """After a save or unsave made outside a unit of work."""
    await invalidate_versioned(cache, job_flag_keys(cache, user_ids))
