"""GET /health: is PostgreSQL reachable, is Redis, are deliveries keeping up."""

from __future__ import annotations

import asyncio

from aiohttp import web

from service.appkeys import CACHE, DATABASE, SETTINGS
from service.responses import json_answer
from service.schemas import Health
from sql.db import DatabaseUnavailable
from sql.outbox import get_oldest_due_age

CHECK_TIMEOUT_SECONDS = 2.0


async def health(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    lag, redis_up = await asyncio.gather(_delivery_lag(request), request.app[CACHE].is_up())
    if lag is None:
        answer = Health(status="down", db="down", redis="ok" if redis_up else "down",
                        deliveries="unknown")
        return json_answer(answer, status=503)
    lagging = lag > settings.delivery_lag_seconds
    return json_answer(Health(status="ok", db="ok", redis="ok" if redis_up else "down",
                              deliveries="lagging" if lagging else "ok"))


async def _delivery_lag(request: web.Request) -> float | None:
    """Seconds the oldest due delivery has waited (0 when none), or None when the DB is down."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return await get_oldest_due_age(request.app[DATABASE])
    except (DatabaseUnavailable, TimeoutError):
        return None
