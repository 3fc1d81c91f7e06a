"""The application factory: ``create_app(settings)`` wires middleware, routes and resources.

No I/O happens here; pools and clients open in ``cleanup_ctx`` generators, in dependency order
(stores → delivery workers → live streams), so they close in reverse and workers stop first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from cache.client import Cache
from service.accesslog import AccessLog
from service.admin import create_admin_app
from service.admin.figures import figures_ctx
from service.api.cached_jobs import PAGE_EMPLOYERS, PageEmployers
from service.appkeys import DELIVERY_RUNTIME, SETTINGS, STORES
from service.config import Settings
from service.health import health_ctx
from service.live import close_streams, live_ctx
from service.metrics import metrics_ctx
from service.middleware import ACCESS_LOG, MIDDLEWARES
from service.openapi import DOCUMENT, Document
from service.protocol import handler_args
from service.routes import add_routes
from sql.db import PoolConfig, open_database
from tasks.runtime import open_stores, start_deliveries, stop_deliveries

TEMPLATE_DIR = Path(__file__).parent / "templates"


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=settings.max_body_size,
                          handler_args=handler_args())
    app[SETTINGS] = settings
    app[ACCESS_LOG] = AccessLog(settings.log_format)
    app.on_cleanup.append(flush_access_log)
    app[PAGE_EMPLOYERS] = PageEmployers()
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True)
    app.cleanup_ctx.append(stores_ctx)
    app.cleanup_ctx.append(health_ctx)
    app.cleanup_ctx.append(delivery_ctx)
    app.cleanup_ctx.append(live_ctx)
    app.on_shutdown.append(close_streams)  # before aiohttp waits on handlers (SIGTERM drain)
    app.cleanup_ctx.append(metrics_ctx)
    app.cleanup_ctx.append(figures_ctx)  # the admin dashboard's samples of the metrics
    add_routes(app)
    app.add_subapp("/admin", create_admin_app(app, settings))
    app[DOCUMENT] = Document()
    return app


async def stores_ctx(app: web.Application) -> AsyncIterator[None]:
    """The database pools, the Redis client and the delivery queue: every handler, task and
    unit of work reaches them through ``app[STORES]``."""
    settings = app[SETTINGS]
    config = PoolConfig(
        minsize=settings.db_pool_size,
        maxsize=settings.db_pool_size + settings.db_pool_max_overflow,
        recycle=settings.db_pool_recycle,
        acquire_timeout=settings.db_acquire_timeout,
        statement_timeout=settings.statement_timeout,
        prepare_statements=settings.db_prepare_statements,
    )
    database = open_database(settings.database_url, settings.database_replica_urls, config,
                             settings.replica_max_lag_seconds)
    await database.open()
    cache = Cache(settings.redis_url, settings.redis_prefix)
    cache.start()  # retries an owed cache epoch bump in the background (cache/epoch.py)
    app[STORES] = open_stores(settings, database, cache)
    try:
        yield
    finally:
        await cache.close()
        await database.close()


async def flush_access_log(app: web.Application) -> None:
    app[ACCESS_LOG].flush()  # the last loop turn's lines


async def delivery_ctx(app: web.Application) -> AsyncIterator[None]:
    deliveries = await start_deliveries(app[SETTINGS], app[STORES])
    app[DELIVERY_RUNTIME] = deliveries
    yield
    await stop_deliveries(deliveries)
