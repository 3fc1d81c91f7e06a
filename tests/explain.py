"""EXPLAIN helpers for the index-use tests on seeded data."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2

from sql.db import Prepared
from sql.migrate import apply_migrations
from tests.servers import create_database, drop_database


def plan_nodes(url: str, query: str, params: dict[str, Any], *,
               generic: bool = False) -> list[dict[str, Any]]:
    """Every node of the plan PostgreSQL chooses for ``query`` with ``params``; ``generic``:
    of the one plan a prepared statement (sql/db.py ``Prepared``) may keep for any values."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        if generic:
            statement = Prepared("explained", query)
            cur.execute("SET plan_cache_mode = force_generic_plan")
            cur.execute(statement.definition)
            query = statement.execution
        cur.execute("EXPLAIN (FORMAT JSON) " + query, params)
        plan: dict[str, Any] = cur.fetchone()[0][0]["Plan"]
    conn.close()
    return list(walk(plan))


def analyzed_plan(url: str, query: str, params: dict[str, Any]) -> dict[str, Any]:
    """The root node of ``query``'s plan as run (EXPLAIN ANALYZE, with buffer counts)."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query, params)
        plan: dict[str, Any] = cur.fetchone()[0][0]["Plan"]
    conn.close()
    return plan


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``node`` and every node below it in a JSON plan."""
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


def scans(url: str, query: str, params: dict[str, Any], *,
          generic: bool = False) -> list[tuple[str, str]]:
    """(node type, index or relation) of every scan in the plan (see ``plan_nodes``)."""
    return [(node["Node Type"], node.get("Index Name") or node.get("Relation Name", ""))
            for node in plan_nodes(url, query, params, generic=generic)
            if "Scan" in node["Node Type"]]


def seeded_database(admin_url: str, label: str, seed_sql: str) -> Iterator[str]:
    """A migrated database of its own filled by ``seed_sql``, for a session fixture to yield
    from; dropped afterwards."""
    name = f"hireme_explain_{label}_{uuid.uuid4().hex[:8]}"
    url = create_database(admin_url, name)
    try:
        asyncio.run(apply_migrations(url))
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute(seed_sql)
        conn.close()
        yield url
    finally:
        drop_database(admin_url, name)
