"""Live events: ids per user, the stored events that streams replay, tickets, retention.

Ids are taken in the transaction of the change that causes the events (``*_txn``); the
events' data is read in the same statement that stores them, from the rows that transaction
wrote, so what a stream sends is what ``GET /notifications`` and ``GET …/messages`` list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sql.db import Cursor, Database, Prepared, Row
from sql.messages import MESSAGE_COLUMNS
from sql.notifications import ACTOR, ACTOR_COLUMNS

KINDS = ("notification", "message", "unread")
# A replay or poll page; a stream pages on until it has caught up.
PAGE_SIZE = 200
# Retention: an event goes once it is older than this AND not among its user's newest
# KEEP_NEWEST (API.md promises at least the last 24 hours or 1,000 events).
KEEP_HOURS = 24
KEEP_NEWEST = 1000
PRUNE_BATCH = 5000
TICKET_SECONDS = 60


@dataclass(frozen=True)
class PendingEvent:
    """An event recorded on a unit of work: ``ref`` is the notification or message id."""

    user_id: int
    kind: str
    ref: int | None = None


# Users in id order, so that two transactions lock their counters in the same order and
# cannot deadlock. The row lock is held to commit: a user's ids are handed out in commit order.
ALLOCATE_IDS = """
    INSERT INTO event_counters AS c (user_id, last_id)
    SELECT u.user_id, u.n FROM unnest(%(user_ids)s::bigint[], %(counts)s::bigint[]) AS u(user_id, n)
    ORDER BY u.user_id
    ON CONFLICT (user_id) DO UPDATE SET last_id = c.last_id + EXCLUDED.last_id
    RETURNING user_id, last_id
"""

# Each event's data, read from what this transaction wrote. The counts run after the counter
# lock above, so they include every earlier event's change: a later unread event never shows
# an older count. A notification deleted again in the same transaction leaves no event.
INSERT_EVENTS = f"""
    INSERT INTO events (user_id, id, kind, data)
    SELECT * FROM (
        SELECT x.user_id, x.id, x.kind,
               CASE x.kind
               WHEN 'notification' THEN (
                   SELECT to_jsonb(r) FROM (
                       SELECT n.id, n.notification_type AS type, n.related_id, n.data,
                              n.is_read, n.created_at,
                              {ACTOR_COLUMNS}
                       FROM notifications n {ACTOR.replace("%(user_id)s", "n.user_id")}
                       WHERE n.id = x.ref AND n.user_id = x.user_id) r)
               WHEN 'message' THEN (
                   SELECT to_jsonb(r) FROM (
                       SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = x.ref) r)
               ELSE jsonb_build_object(
                   'notifications', (SELECT count(*) FROM notifications
                                     WHERE user_id = x.user_id AND NOT is_read),
                   'messages', (SELECT count(*) FROM messages
                                WHERE receiver_id = x.user_id AND NOT is_read))
               END AS data
        FROM unnest(%(user_ids)s::bigint[], %(ids)s::bigint[], %(kinds)s::text[],
                    %(refs)s::bigint[]) AS x(user_id, id, kind, ref)
    ) e
    WHERE e.data IS NOT NULL
    RETURNING user_id, id, kind, data
"""


PREPARED_ALLOCATE_IDS = Prepared("allocate_event_ids", ALLOCATE_IDS)
PREPARED_INSERT_EVENTS = Prepared("insert_events", INSERT_EVENTS)


async def insert_events_txn(cur: Cursor, pending: Sequence[PendingEvent]) -> list[Row]:
    """Give ``pending`` their ids (in order, per user) and store them; the stored rows."""
    counts: dict[int, int] = {}
    for event in pending:
        counts[event.user_id] = counts.get(event.user_id, 0) + 1
    users = sorted(counts)
    allocated = await cur.fetch_all(PREPARED_ALLOCATE_IDS, {
        "user_ids": users, "counts": [counts[user] for user in users]})
    next_id = {row["user_id"]: row["last_id"] - counts[row["user_id"]] + 1 for row in allocated}
    ids = []
    for event in pending:
        ids.append(next_id[event.user_id])
        next_id[event.user_id] += 1
    return await cur.fetch_all(PREPARED_INSERT_EVENTS, {
        "user_ids": [event.user_id for event in pending], "ids": ids,
        "kinds": [event.kind for event in pending], "refs": [event.ref for event in pending]})


# One primary-key range scan per user.
SELECT_EVENTS_AFTER = """
    SELECT user_id, id, kind, data FROM events
    WHERE user_id = %(user_id)s AND id > %(after)s
    ORDER BY id
    LIMIT %(limit)s
"""


async def list_events_after(db: Database, user_id: int, after: int,
                            limit: int = PAGE_SIZE) -> list[Row]:
    """A user's events after id ``after``, oldest first (a replay page)."""
    return await db.fetch_all(SELECT_EVENTS_AFTER,
                              {"user_id": user_id, "after": after, "limit": limit})


# The fallback poll: one statement for every user with a stream in this process, each a
# primary-key range scan, at most PAGE_SIZE events per user per poll.
SELECT_EVENTS_AFTER_EACH = """
    SELECT e.user_id, e.id, e.kind, e.data
    FROM unnest(%(user_ids)s::bigint[], %(after)s::bigint[]) AS u(user_id, after)
    CROSS JOIN LATERAL (
        SELECT user_id, id, kind, data FROM events
        WHERE user_id = u.user_id AND id > u.after
        ORDER BY id LIMIT %(limit)s
    ) e
    ORDER BY e.user_id, e.id
"""


async def list_events_after_each(db: Database, after: dict[int, int],
                                 limit: int = PAGE_SIZE) -> list[Row]:
    """Every user's events after that user's id in ``after``."""
    users = list(after)
    return await db.fetch_all(SELECT_EVENTS_AFTER_EACH, {
        "user_ids": users, "after": [after[user] for user in users], "limit": limit})


# One snapshot: the counts include exactly the events up to last_id.
SELECT_START = """
    SELECT coalesce((SELECT last_id FROM event_counters WHERE user_id = %(user_id)s), 0)
               AS last_id,
           (SELECT count(*) FROM notifications
            WHERE user_id = %(user_id)s AND NOT is_read) AS notifications,
           (SELECT count(*) FROM messages
            WHERE receiver_id = %(user_id)s AND NOT is_read) AS messages
"""


async def get_stream_start(db: Database, user_id: int) -> Row:
    """The user's last event id and, as of it, the unread counts a new stream starts with."""
    row = await db.fetch_one(SELECT_START, {"user_id": user_id})
    assert row is not None
    return row


SELECT_LIVE_TOKENS = """
    SELECT token_hash FROM auth_tokens WHERE token_hash = ANY(%(hashes)s::bytea[])
"""


async def list_live_tokens(db: Database, token_hashes: Sequence[bytes]) -> set[bytes]:
    """Which of ``token_hashes`` are still valid (logout, password change and suspension
    delete tokens)."""
    rows = await db.fetch_all(SELECT_LIVE_TOKENS, {"hashes": list(token_hashes)})
    return {bytes(row["token_hash"]) for row in rows}


INSERT_TICKET = """
    INSERT INTO event_tickets (ticket_hash, token_hash, user_id, expires_at)
    VALUES (%(ticket_hash)s, %(token_hash)s, %(user_id)s,
            now() + make_interval(secs => %(seconds)s))
"""


async def insert_ticket(db: Database, ticket_hash: bytes, token_hash: bytes,
                        user_id: int) -> None:
    await db.execute(INSERT_TICKET, {"ticket_hash": ticket_hash, "token_hash": token_hash,
                                     "user_id": user_id, "seconds": TICKET_SECONDS})


# Spent in one statement: a ticket works once, only before it expires, and only while the
# token that asked for it is valid (deleting the token deletes its tickets).
SPEND_TICKET = """
    DELETE FROM event_tickets t
    USING users u
    WHERE t.ticket_hash = %(ticket_hash)s AND u.id = t.user_id
    RETURNING t.user_id, t.token_hash, u.role, u.is_admin, t.expires_at > now() AS fresh
"""


async def spend_ticket(db: Database, ticket_hash: bytes) -> Row | None:
    """The ticket's user and token, or None for an unknown, spent or expired ticket."""
    row = await db.fetch_one_write(SPEND_TICKET, {"ticket_hash": ticket_hash})
    if row is None or not row["fresh"]:
        return None
    return row


# Oldest first on events_created_idx, bounded per run; kept rows (a user's newest
# KEEP_NEWEST) are skipped by the join on the counter's primary key.
PRUNE_EVENTS = """
    DELETE FROM events e
    USING (SELECT old.user_id, old.id
           FROM events old JOIN event_counters c ON c.user_id = old.user_id
           WHERE old.created_at < now() - make_interval(hours => %(hours)s)
             AND old.id <= c.last_id - %(keep)s
           ORDER BY old.created_at
           LIMIT %(limit)s) gone
    WHERE e.user_id = gone.user_id AND e.id = gone.id
"""
PRUNE_TICKETS = """
    DELETE FROM event_tickets
    WHERE ticket_hash IN (SELECT ticket_hash FROM event_tickets
                          WHERE expires_at < now() ORDER BY expires_at LIMIT %(limit)s)
"""


async def prune_events(db: Database, limit: int = PRUNE_BATCH) -> int:
    """Forget events past retention and expired tickets, in bounded batches."""
    pruned = await db.execute(PRUNE_EVENTS, {"hours": KEEP_HOURS, "keep": KEEP_NEWEST,
                                             "limit": limit})
    await db.execute(PRUNE_TICKETS, {"limit": limit})
    return pruned


def event_row(user_id: int, event_id: int, kind: str, data: dict[str, Any]) -> Row:
    """An event as the stored rows look (the start-of-stream ``unread`` is made, not stored)."""
    return {"user_id": user_id, "id": event_id, "kind": kind, "data": data}

