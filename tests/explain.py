"""EXPLAIN helpers for the index-use tests on seeded data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg2


def plan_nodes(url: str, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of the plan PostgreSQL chooses for ``query`` with ``params``."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("EXPLAIN (FORMAT JSON) " + query, params)
        plan: dict[str, Any] = cur.fetchone()[0][0]["Plan"]
    conn.close()
    return list(_walk(plan))


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def scans(url: str, query: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, index or relation) of every scan in the plan."""
    return [(node["Node Type"], node.get("Index Name") or node.get("Relation Name", ""))
            for node in plan_nodes(url, query, params) if "Scan" in node["Node Type"]]
