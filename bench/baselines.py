"""Bare baselines, served like ``run.py serve``: N forked uvloop processes on one socket.

``/hello`` answers a JSON literal, ``/redis`` one redis-py GET of a cached value (a jobs page
of the same size as the service's), ``/aiopg`` one aiopg query, "the 20 newest open jobs".
Nothing else: no middleware, no auth, no logging, so the figures bound what the stack can do.
Run: ``python -m bench.baselines --port P --workers N --database-url URL --redis-url URL``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiopg
import psycopg2.extras
import redis.asyncio as aioredis
import uvloop
from aiohttp import web

CACHED_KEY = "hireme-bench:baseline:jobs-page"
NEWEST_OPEN_JOBS = """
    SELECT id, employer_id, title, category, location, employment_type, remote, salary_min,
           salary_max, status, expires_at, applications_count, created_at
    FROM jobs
    WHERE status = 'open' AND expires_at > now()
    ORDER BY created_at DESC, id DESC
    LIMIT 20
"""
DB_KEY = web.AppKey("db", aiopg.Pool)
REDIS_KEY = web.AppKey("redis", aioredis.Redis)


async def hello(_request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


async def cached(request: web.Request) -> web.Response:
    body = await request.app[REDIS_KEY].get(CACHED_KEY)
    return web.Response(body=body, content_type="application/json")


async def newest_jobs(request: web.Request) -> web.Response:
    async with request.app[DB_KEY].acquire() as conn, conn.cursor(
            cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        await cur.execute(NEWEST_OPEN_JOBS)
        rows = await cur.fetchall()
    return web.Response(text=json.dumps({"items": rows}, default=str),
                        content_type="application/json")


def make_app(database_url: str, redis_url: str, pool_size: int) -> web.Application:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        app[DB_KEY] = await aiopg.create_pool(database_url, minsize=1, maxsize=pool_size)
        app[REDIS_KEY] = aioredis.Redis.from_url(redis_url)
        yield
        app[DB_KEY].close()
        await app[DB_KEY].wait_closed()
        await app[REDIS_KEY].aclose()

    app = web.Application()
    app.cleanup_ctx.append(resources)
    app.router.add_get("/hello", hello)
    app.router.add_get("/redis", cached)
    app.router.add_get("/aiopg", newest_jobs)
    return app


def fill_cache(database_url: str, redis_url: str) -> None:
    """The cached value: the 20 newest open jobs as JSON, like the service's page 1."""
    import redis

    with psycopg2.connect(database_url) as conn, conn.cursor(
            cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(NEWEST_OPEN_JOBS)
        body = json.dumps({"items": cur.fetchall()}, default=str)
    conn.close()
    client = redis.Redis.from_url(redis_url)
    client.set(CACHED_KEY, body, ex=24 * 3600)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=15)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    fill_cache(args.database_url, args.redis_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(1024)
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            web.run_app(make_app(args.database_url, args.redis_url, args.pool_size), sock=sock,
                        loop=uvloop.new_event_loop(), print=None, access_log=None)
            os._exit(0)
        children.append(pid)
    def stop(_signum: int, _frame: Any) -> None:
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
