"""The prepared writes run one generic plan each (sql/db.py ``Prepared``): every such plan
finds its rows through an index, on seeded data (EXPLAIN). An outbox insert reads nothing.

The data is built once per session in a database of its own: 5,000 users with jobs, posts, likes,
blocks, push subscriptions, preferences, notifications, conversations, messages, outbox rows
and live events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from psycopg2.extras import Json

from sql.db import Prepared
from sql.events import PREPARED_ALLOCATE_IDS, PREPARED_INSERT_EVENTS
from sql.messages import PREPARED_INSERT_MESSAGE, PREPARED_LOCK_CONVERSATION
from sql.notifications import INSERT_NOTIFICATION
from sql.outbox import PREPARED_CLAIM_ONE, PREPARED_FINISH_MANY
from sql.posts import PREPARED_INSERT_LIKE, PREPARED_INSERT_POST
from tests.explain import scans, seeded_database

SEED = """
    INSERT INTO users (email, password_hash, first_name, last_name, role)
    SELECT 'user' || g || '@example.com', 'x', 'F', 'L', 'job_seeker'
    FROM generate_series(1, 5000) g;

    INSERT INTO jobs (employer_id, title, description, employment_type)
    SELECT 1 + g % 500, 'Job ' || g, 'A job', 'full_time' FROM generate_series(1, 20000) g;
    INSERT INTO posts (user_id, body) SELECT 1 + g % 5000, 'post ' || g
    FROM generate_series(1, 50000) g;
    INSERT INTO post_likes (post_id, user_id) SELECT g, 1 + (g * 7) % 5000
    FROM generate_series(1, 50000) g;
    INSERT INTO follows (follower_id, followed_id)
    SELECT 1 + g % 5000, 1 + (g * 13) % 5000 FROM generate_series(1, 20000) g
    WHERE g % 5000 <> (g * 13) % 5000
    ON CONFLICT DO NOTHING;
    INSERT INTO blocks (blocker_id, blocked_id)
    SELECT 1 + g, 1 + (g * 11) % 5000 FROM generate_series(1, 2000) g
    WHERE 1 + g <> 1 + (g * 11) % 5000
    ON CONFLICT DO NOTHING;
    INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth)
    SELECT 1 + g % 5000, 'https://push.example.com/' || g, 'key', 'auth'
    FROM generate_series(1, 3000) g;
    INSERT INTO notification_preferences (user_id, notification_type, email, push)
    SELECT 1 + g % 5000, 'post_like', false, false FROM generate_series(1, 3000) g
    ON CONFLICT DO NOTHING;

    INSERT INTO notifications (user_id, actor_id, notification_type, related_id, dedup_key)
    SELECT 1 + g % 5000, 1 + (g * 7) % 5000, 'post_like', g, 'like:' || g
    FROM generate_series(1, 100000) g;

    INSERT INTO conversations (user_low_id, user_high_id)
    SELECT DISTINCT 1 + g % 2500, 2501 + (g * 7) % 2500 FROM generate_series(1, 10000) g;
    INSERT INTO messages (conversation_id, sender_id, receiver_id, body, is_read)
    SELECT c.id, c.user_low_id, c.user_high_id, 'hello', g % 3 = 0
    FROM conversations c CROSS JOIN generate_series(1, 10) g;

    INSERT INTO outbox (kind, payload, idempotency_key, status)
    SELECT 'email', '{}', 'seeded:' || g, CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'sent' END
    FROM generate_series(1, 50000) g;
    INSERT INTO event_counters (user_id, last_id) SELECT g, 10 FROM generate_series(1, 5000) g;
    INSERT INTO events (user_id, id, kind, data)
    SELECT u, i, 'unread', '{}' FROM generate_series(1, 5000) u, generate_series(1, 10) i;

    ANALYZE;
"""

# Each prepared write with the values of one request.
WRITES: list[tuple[Prepared, dict[str, Any]]] = [
    (PREPARED_INSERT_POST, {"author_id": 10, "body": "hello", "post_type": "job",
                            "related_job_id": 77}),
    (PREPARED_INSERT_LIKE, {"viewer_id": 10, "post_id": 1234}),
    (INSERT_NOTIFICATION[False], {
        "user_id": 20, "actor_id": 10, "type": "post_like", "related_id": 1234,
        "data": Json({}), "dedup_key": "like:new", "topic": None, "occurrence": None,
        "push": True, "email": False, "email_key": None, "email_delay_seconds": 0,
        "email_extra": Json({})}),
    (INSERT_NOTIFICATION[True], {
        "user_id": 20, "actor_id": 10, "type": "message", "related_id": 5, "data": Json({}),
        "dedup_key": "message:5", "topic": "message-5", "occurrence": "m1", "push": True,
        "email": True, "email_key": "email:m1", "email_delay_seconds": 60,
        "email_extra": Json({"unread_message_id": 9})}),
    (PREPARED_ALLOCATE_IDS, {"user_ids": [10, 20], "counts": [1, 2]}),
    (PREPARED_INSERT_EVENTS, {"user_ids": [20, 20], "ids": [11, 12],
                              "kinds": ["notification", "unread"], "refs": [99, None]}),
    (PREPARED_LOCK_CONVERSATION, {"user_id": 3, "conversation_id": 7}),
    (PREPARED_INSERT_MESSAGE, {"conversation_id": 7, "sender_id": 3, "receiver_id": 2503,
                               "body": "hi"}),
    (PREPARED_CLAIM_ONE, {"lease_seconds": 30, "id": 40000}),
    (PREPARED_FINISH_MANY, {"ids": [40000], "leases": [None], "statuses": ["sent"],
                            "errors": [None], "delays": [0]}),
]


@pytest.fixture(scope="session")
def writes_seeded(postgres_admin_url: str) -> Iterator[str]:
    yield from seeded_database(postgres_admin_url, "writes", SEED)


@pytest.mark.parametrize(("statement", "params"), WRITES,
                         ids=[statement.name for statement, _ in WRITES])
def test_each_prepared_write_finds_its_rows_by_index(writes_seeded: str, statement: Prepared,
                                                     params: dict[str, Any]) -> None:
    scanned = scans(writes_seeded, statement.text, params, generic=True)
    assert scanned, statement.name
    whole = [relation for node, relation in scanned if node == "Seq Scan"]
    assert not whole, f"{statement.name} reads {whole} whole: {scanned}"
