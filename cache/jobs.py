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
from cache.versioned import invalidate_versioned

JOB_PAGE_TTL_SECONDS = 60
JOB_TTL_SECONDS = 300
JOB_FLAGS_TTL_SECONDS = 300


async def invalidate_jobs(cache: Cache, job_ids: list[int]) -> None:
    """After a job write: that job's entry and every cached list."""
    await invalidate_versioned(cache, [cache.keys.job(job_id) for job_id in job_ids]
                               + [cache.keys.job_page(None)])


async def invalidate_job_flags(cache: Cache, user_ids: Iterable[int]) -> None:
    """After these users saved, unsaved, followed or unfollowed: their cached flags."""
    await invalidate_versioned(cache, [cache.keys.job_flags(user_id, None)
                                       for user_id in set(user_ids)])
