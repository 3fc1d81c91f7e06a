"""GET /health: is PostgreSQL reachable, is Redis, are deliveries keeping up.

The checks run in the background, once every ``REFRESH_SECONDS`` per process, and the handler
answers from their last result: a load balancer polling every worker costs no query and no
Redis call per poll, and a hung database cannot make /health hang.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from cache.client import Cache
from service.api.schemas import Health
from service.appkeys import SETTINGS, STORES
from service.responses import json_answer
from sql.db import Database, DatabaseUnavailable
from sql.outbox import get_oldest_due_age
from tasks.background import cancel_until_done

log = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
CHECK_TIMEOUT_SECONDS = 2.0


@dataclass
class HealthMonitor:
    """The last result of the checks, refreshed by ``run``."""

    database: Database
    cache: Cache
    lag_threshold: float
    answer: Health | None = None  # set by the first check, before the app serves

    async def check(self) -> None:
        lag, redis_up = await asyncio.gather(self._delivery_lag(), self.cache.is_up())
        redis: Literal["ok", "down"] = "ok" if redis_up else "down"
        if lag is None:
            self.answer = Health(status="down", db="down", redis=redis, deliveries="unknown")
        else:
            lagging = lag > self.lag_threshold
            self.answer = Health(status="ok", db="ok", redis=redis,
                                 deliveries="lagging" if lagging else "ok")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.check()
            except Exception:  # a check that fails oddly must not end the checking
                log.exception("health check failed")

    async def _delivery_lag(self) -> float | None:
        """Seconds the oldest due delivery has waited (0 when none); None: the DB is down."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                return await get_oldest_due_age(self.database)
        except (DatabaseUnavailable, TimeoutError):
            return None


HEALTH = web.AppKey("health", HealthMonitor)


async def health_ctx(app: web.Application) -> AsyncIterator[None]:
    """Check once before serving, then keep checking in the background."""
    stores = app[STORES]
    monitor = HealthMonitor(stores.db, stores.cache, app[SETTINGS].delivery_lag_seconds)
    await monitor.check()
    app[HEALTH] = monitor
    task = asyncio.create_task(monitor.run(), name="health-monitor")
    yield
    await cancel_until_done(task)


async def health(request: web.Request) -> web.Response:
    answer = request.app[HEALTH].answer
    assert answer is not None  # health_ctx checks once before the app serves
    return json_answer(answer, status=200 if answer.db == "ok" else 503)
