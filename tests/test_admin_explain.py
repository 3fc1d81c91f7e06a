"""Every admin list reads an index range on realistic tables, never a sequential scan (EXPLAIN).

The data is built once per session in a database of its own: 50,000 users; 100,000 posts,
comments and messages (a year of them); 20,000 jobs and applications; 20,000 reports (a
tenth open); 50,000 audit entries; 100,000 outbox rows (mostly sent, some dead, pending and
failed).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from sql import admin_content, admin_users, audit, dashboard, deliveries, moderation
from tests.explain import scans, seeded_database

SEED = """
    INSERT INTO users (email, password_hash, first_name, last_name, role, suspended_at,
                       created_at)
    SELECT 'user' || g || '@example.com', 'x', 'First' || g % 997, 'Last' || g % 991,
           'job_seeker', CASE WHEN g % 100 = 0 THEN now() END,
           now() - (g || ' minutes')::interval
    FROM generate_series(1, 50000) g;

    INSERT INTO posts (user_id, body, created_at)
    SELECT 1 + g % 50000, 'post ' || g, now() - (g * 5 || ' minutes')::interval
    FROM generate_series(1, 100000) g;

    INSERT INTO jobs (employer_id, title, description, category, location, employment_type,
                      remote, created_at)
    SELECT 1 + g % 50000, 'Job ' || g, 'about job ' || g, 'it', 'city', 'full_time', false,
           now() - (g * 20 || ' minutes')::interval
    FROM generate_series(1, 20000) g;

    INSERT INTO job_applications (job_id, applicant_id, created_at)
    SELECT 1 + g % 20000, 1 + (g * 13) % 50000, now() - (g * 20 || ' minutes')::interval
    FROM generate_series(1, 20000) g
    ON CONFLICT DO NOTHING;

    INSERT INTO conversations (user_low_id, user_high_id)
    SELECT g, g + 1 FROM generate_series(1, 5000) g;

    INSERT INTO messages (conversation_id, sender_id, receiver_id, body, created_at)
    SELECT 1 + g % 5000, 1 + g % 5000, 2 + g % 5000, 'hello ' || g,
           now() - interval '400 days' + (g * 6 || ' minutes')::interval
    FROM generate_series(1, 100000) g;

    INSERT INTO post_comments (post_id, user_id, body, created_at)
    SELECT 1 + g % 100000, 1 + (g * 7) % 50000, 'comment ' || g,
           now() - (g || ' seconds')::interval
    FROM generate_series(1, 100000) g;

    INSERT INTO reports (reporter_id, target_type, target_id, reason, status, resolved_at,
                         created_at)
    SELECT 1 + g % 50000, (ARRAY['user', 'post', 'comment', 'job'])[1 + g % 4], 1 + g % 5000,
           'reason ' || g, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'resolved' END,
           CASE WHEN g % 10 = 0 THEN NULL ELSE now() END, now() - (g || ' minutes')::interval
    FROM generate_series(1, 20000) g;

    INSERT INTO admin_audit_log (admin_id, action, target_type, target_id, created_at)
    SELECT 1 + g % 20, (ARRAY['suspend_user', 'remove_post', 'resolve_report',
                              'retry_delivery'])[1 + g % 4],
           (ARRAY['user', 'post', 'report', 'delivery'])[1 + g % 4], 1 + g % 10000,
           now() - (g || ' seconds')::interval
    FROM generate_series(1, 50000) g;

    INSERT INTO outbox (kind, payload, status, attempts, last_error, idempotency_key,
                        next_attempt_at, sent_at, created_at)
    SELECT (ARRAY['email', 'push'])[1 + g % 2],
           jsonb_build_object('user_id', 1 + g % 50000, 'email_type', 'welcome'),
           CASE WHEN g % 50 = 0 THEN 'dead' WHEN g % 50 = 1 THEN 'pending' ELSE 'sent' END,
           1, CASE WHEN g % 100 = 1 THEN 'timeout' END, 'key-' || g,
           now() + interval '1 hour', now(), now() - (g || ' seconds')::interval
    FROM generate_series(1, 100000) g;

    ANALYZE;
"""
BIG_TABLES = {"users", "posts", "post_comments", "reports", "admin_audit_log", "outbox",
              "jobs", "job_applications", "messages"}
NOW = datetime.now(UTC)


@pytest.fixture(scope="session")
def admin_seeded(postgres_admin_url: str) -> Iterator[str]:
    yield from seeded_database(postgres_admin_url, "admin", SEED)


def _before(cursor: bool) -> dict[str, Any]:
    return {"before_created_at": NOW if cursor else None, "before_id": 5 if cursor else None}


CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "users": (admin_users.SEARCH_ACCOUNTS, {"email": None, "prefix": None, "user_id": None,
                                            "suspended": None, "before_id": 40000, "limit": 26}),
    "users by prefix": (admin_users.SEARCH_ACCOUNTS, {
        "email": None, "prefix": "first12", "user_id": None, "suspended": None,
        "before_id": None, "limit": 26}),
    "users by email": (admin_users.SEARCH_ACCOUNTS, {
        "email": "user77@example.com", "prefix": None, "user_id": None, "suspended": None,
        "before_id": None, "limit": 26}),
    "user by id": (admin_users.SEARCH_ACCOUNTS, {
        "email": None, "prefix": None, "user_id": 77, "suspended": None, "before_id": None,
        "limit": 26}),
    "suspended users": (admin_users.SEARCH_ACCOUNTS, {
        "email": None, "prefix": None, "user_id": None, "suspended": True, "before_id": None,
        "limit": 26}),
    "recent activity": (admin_users.RECENT_ACTIVITY, {"user_id": 77, "limit": 10}),
    "open reports": (moderation.LIST_OPEN, {"after_created_at": None, "after_id": None,
                                            "limit": 26}),
    "open reports, later page": (moderation.LIST_OPEN, {"after_created_at": NOW,
                                                        "after_id": 5, "limit": 26}),
    "reports on a user": (moderation.LIST_ON_TARGET, {"target_type": "user",
                                                      "target_id": 77, "limit": 20}),
    "resolve reports on a target": (moderation.RESOLVE_ON_TARGET, {
        "target_type": "post", "target_id": 77, "admin_id": 1}),
    "posts": (admin_content.LIST_POSTS, {"author_id": None, **_before(True), "limit": 26}),
    "posts by author": (admin_content.LIST_POSTS, {"author_id": 77, **_before(False),
                                                   "limit": 26}),
    "comments": (admin_content.LIST_COMMENTS, {"author_id": None, **_before(False),
                                               "limit": 26}),
    "comments by author": (admin_content.LIST_COMMENTS, {"author_id": 77, **_before(True),
                                                         "limit": 26}),
    "retry every dead delivery": (deliveries.RETRY_DEAD, {"limit": 1000}),
    "today's counts": (dashboard.TODAY, {"since": NOW.replace(hour=0, minute=0)}),
}
for state in deliveries.STATE_FILTERS:
    for kind in (None, "push"):
        CASES[f"{state} deliveries, {kind or 'any'}"] = (
            deliveries.list_deliveries_query(state), {"kind": kind, **_before(False),
                                                      "limit": 26})
for name, filters in {"audit": {}, "audit by action": {"action": "remove_post"},
                      "audit by admin": {"admin_id": 3},
                      "audit by target": {"target_type": "user", "target_id": 77}}.items():
    CASES[name] = (audit.LIST_ENTRIES, {"action": None, "admin_id": None, "target_type": None,
                                        "target_id": None, **filters, **_before(False),
                                        "limit": 26})


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_admin_list_scans_a_big_table(admin_seeded: str, case: str) -> None:
    query, params = CASES[case]
    found = scans(admin_seeded, query, params)
    assert found, case
    sequential = [(node, table) for node, table in found
                  if node == "Seq Scan" and table in BIG_TABLES]
    assert not sequential, (case, found)
