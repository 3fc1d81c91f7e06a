"""Typed keys for what the application holds (``app[BACKENDS]``), in one place."""

from __future__ import annotations

from aiohttp import web

from service.config import Settings
from tasks.runtime import Deliveries
from tasks.work import Backends

SETTINGS = web.AppKey("settings", Settings)
BACKENDS = web.AppKey("backends", Backends)  # database + cache + delivery queue
DELIVERIES = web.AppKey("deliveries", Deliveries)  # the queue, senders and their stats
