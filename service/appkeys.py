"""Typed keys for what the application holds (``app[DATABASE]``), in one place."""

from __future__ import annotations

from aiohttp import web

from cache.client import Cache
from service.config import Settings
from sql.db import Database
from tasks.runtime import Deliveries
from tasks.work import Backends

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
CACHE = web.AppKey("cache", Cache)
BACKENDS = web.AppKey("backends", Backends)  # database + cache + delivery queue
DELIVERIES = web.AppKey("deliveries", Deliveries)  # the queue, senders and their stats
