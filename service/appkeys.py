"""Typed keys for what the application holds (``app[STORES]``), in one place."""

from __future__ import annotations

from aiohttp import web

from service.config import Settings
from tasks.runtime import DeliveryRuntime
from tasks.work import Stores

SETTINGS = web.AppKey("settings", Settings)
STORES = web.AppKey("stores", Stores)  # database + cache + delivery queue
DELIVERY_RUNTIME = web.AppKey("delivery_runtime", DeliveryRuntime)  # queue, senders, stats
