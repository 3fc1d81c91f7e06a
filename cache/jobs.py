"""Cached job answers without per-user fields: page 1 of the open-jobs lists, single jobs.

One generation counter covers every cached job list: any job write bumps it, so every list
(default and per category) is invalid at once, and a fill that raced the write is refused.
Per-user parts of a job answer (``saved_by_me``, the employer's ``followed_by_me``) are never
stored here; the service adds them per request.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import redis.asyncio as redis

from cache.client import Cache, pipeline
from cache.epoch import version_of
from cache.versioned import fill_if_current, fill_versioned, invalidate_versioned, read_versioned

JOB_PAGE_TTL_SECONDS = 60
JOB_TTL_SECONDS = 300

_encoder = msgspec.json.Encoder()


async def read_job_page(cache: Cache, category: str | None) -> tuple[list[Any] | None, str]:
    """The cached rows of page 1 (or None) and the version (epoch, generation) to fill with.

    An entry records the version it was filled under: a bumped generation or epoch is a miss.
    """
    keys = cache.keys.job_page(category)

    async def read(client: redis.Redis) -> list[str | None]:
        pipe = pipeline(client)
        pipe.get(cache.keys.epoch())
        pipe.get(keys.generation)
        pipe.get(keys.value)
        result: list[str | None] = await pipe.execute()
        return result

    raw = await cache.run_or(read, None)
    if raw is None:
        return None, ""
    version, value = version_of(raw[0] or "", raw[1] or ""), raw[2]
    entry = json.loads(value) if value else None
    hit = entry is not None and entry["generation"] == version
    cache.count(hit=hit)
    return (entry["rows"] if hit and entry else None), version


async def fill_job_page(cache: Cache, category: str | None, version: str,
                        rows: list[dict[str, Any]]) -> None:
    value = _encoder.encode({"generation": version, "rows": rows}).decode()
    await fill_if_current(cache, cache.keys.job_page(category), version, value,
                          JOB_PAGE_TTL_SECONDS)


async def read_job(cache: Cache, job_id: int) -> tuple[dict[str, Any] | None, str | None]:
    """A cached job row and its generation (None generation: Redis is down)."""
    cached = await read_versioned(cache, [cache.keys.job(job_id)])
    if cached is None:
        return None, None
    [entry] = cached
    return (json.loads(entry.value) if entry.value else None), entry.generation


async def fill_job(cache: Cache, job_id: int, generation: str, row: dict[str, Any]) -> None:
    await fill_versioned(cache, cache.keys.job(job_id), generation,
                         _encoder.encode(row).decode(), JOB_TTL_SECONDS)


async def invalidate_jobs(cache: Cache, job_ids: list[int]) -> None:
    """After a job write: that job's entry and every cached list."""
    await invalidate_versioned(cache, [cache.keys.job(job_id) for job_id in job_ids]
                               + [cache.keys.job_page(None)])
