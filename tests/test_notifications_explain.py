"""Every notifications page reads one index range, and a delivery's context primary keys, on
the plan of each request and on the generic plan their prepared statements may keep (EXPLAIN).

The data is built once per session in a database of its own: 300,000 notifications of 5,000
users over a year, of every type, a fifth of them unread, from 2,000 actors.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sql.notifications import (
    LIST_CONDITIONS,
    LIST_NOTIFICATIONS,
    NOTIFICATION_TYPES,
    SELECT_DELIVERY_CONTEXT,
)
from tests.explain import plan_nodes, seeded_database

SEED = f"""
    INSERT INTO users (email, password_hash, first_name, last_name, role)
    SELECT 'user' || g || '@example.com', 'x', 'F', 'L', 'job_seeker'
    FROM generate_series(1, 5000) g;

    INSERT INTO notifications (user_id, actor_id, notification_type, related_id, is_read,
                               created_at)
    SELECT 1 + g % 5000, 1 + (g * 7) % 2000,
           (ARRAY{list(NOTIFICATION_TYPES)})[1 + g % {len(NOTIFICATION_TYPES)}],
           g, g % 5 <> 0, now() - (g * 100 || ' seconds')::interval
    FROM generate_series(1, 300000) g;

    INSERT INTO follows (follower_id, followed_id)
    SELECT 1 + g % 5000, 1 + (g * 13) % 2000 FROM generate_series(1, 20000) g
    WHERE 1 + g % 5000 <> 1 + (g * 13) % 2000
    ON CONFLICT DO NOTHING;

    ANALYZE;
"""

# The index each filter's page reads; unread notifications of one type may come from either
# of their indexes (both hold about a page's worth of reading for a user).
INDEXES = {
    frozenset(): {"notifications_user_created_idx"},
    frozenset({"unread_only"}): {"notifications_user_unread_idx"},
    frozenset({"type"}): {"notifications_user_type_created_idx"},
    frozenset({"unread_only", "type"}): {"notifications_user_unread_idx",
                                         "notifications_user_type_created_idx"},
}


@pytest.fixture(scope="session")
def notifications_seeded(postgres_admin_url: str) -> Iterator[str]:
    yield from seeded_database(postgres_admin_url, "notifications", SEED)


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("filters", sorted(LIST_NOTIFICATIONS, key=sorted),
                         ids=lambda filters: "+".join(sorted(filters)) or "all")
def test_each_notifications_page_reads_its_index_in_order(
        notifications_seeded: str, filters: frozenset[str], generic: bool):
    assert set(filters) <= set(LIST_CONDITIONS)
    params: dict[str, Any] = {
        "user_id": 1234, "type": "post_like", "limit": 21,
        "before_created_at": datetime.now(UTC) - timedelta(days=100), "before_id": 10**9}
    nodes = plan_nodes(notifications_seeded, LIST_NOTIFICATIONS[filters].text, params,
                       generic=generic)
    scanned = {(node["Node Type"], node.get("Relation Name")) for node in nodes}
    assert ("Seq Scan", "notifications") not in scanned, scanned
    read = {node["Index Name"] for node in nodes
            if node.get("Index Name", "").startswith("notifications_")}
    assert read and read <= INDEXES[filters - {"before"}], read
    # Rows come in index order and the scan stops at the page, or (for a user's few unread
    # ones of a type) a bitmap of a few rows is sorted: never more than a page.
    sorted_rows = [node["Plan Rows"] for node in nodes if node["Node Type"] == "Sort"]
    assert all(rows <= params["limit"] for rows in sorted_rows), sorted_rows
    # Whether the user follows each actor: one lookup per row, never the user's whole list.
    follows = [node.get("Index Cond", "") for node in nodes
               if node.get("Relation Name") == "follows"]
    assert follows and all("followed_id = a.id" in cond for cond in follows), follows


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_a_deliverys_context_is_read_by_primary_keys(notifications_seeded: str, generic: bool):
    """Each email and push re-reads its user, notification and preferences just before
    sending: primary keys only, on the generic plan its prepared statement may keep too."""
    nodes = plan_nodes(notifications_seeded, SELECT_DELIVERY_CONTEXT,
                       {"user_id": 1234, "notification_id": 1234, "message_id": None},
                       generic=generic)
    scanned = {(node["Node Type"], node.get("Relation Name")) for node in nodes}
    assert not {("Seq Scan", "users"), ("Seq Scan", "notifications")} & scanned, scanned
    read = {node.get("Index Name") for node in nodes if "Index Name" in node}
    assert {"users_pkey", "notifications_pkey"} <= read, read
