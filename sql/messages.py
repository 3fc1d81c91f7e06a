"""Direct messages: conversations between two users, their messages and read state.

Only a conversation's two participants may see or touch it: every query here names the
caller and tests membership in its WHERE, so anyone else finds nothing (the service's 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sql.db import Cursor, Database, Prepared, Row
from sql.social import FOLLOWS_LOOKUP
from sql.users import prefixed_profile_columns

MESSAGE_COLUMNS = "m.id, m.conversation_id, m.sender_id, m.receiver_id, m.body, m.is_read, " \
                  "m.created_at"

# Either user blocking the other; both arms are primary-key lookups on blocks.
BLOCKED_PAIR = """
    EXISTS (SELECT 1 FROM blocks b
            WHERE (b.blocker_id = {a} AND b.blocked_id = {b})
               OR (b.blocker_id = {b} AND b.blocked_id = {a}))
"""

# The pair is stored ordered, so (a, b) and (b, a) meet on one unique key: of two concurrent
# creates one inserts and the other's DO NOTHING waits for it, then finds its row.
GET_OR_CREATE_CONVERSATION = f"""
    WITH target AS (
        SELECT u.id, {BLOCKED_PAIR.format(a="%(user_id)s", b="u.id")} AS blocked
        FROM users u
        WHERE u.id = %(other_id)s AND u.suspended_at IS NULL
    ), created AS (
        INSERT INTO conversations (user_low_id, user_high_id)
        SELECT least(%(user_id)s, t.id), greatest(%(user_id)s, t.id)
        FROM target t
        WHERE NOT t.blocked
        ON CONFLICT (user_low_id, user_high_id) DO NOTHING
        RETURNING id
    )
    SELECT t.blocked, (SELECT id FROM created) AS created_id
    FROM target t
"""
SELECT_CONVERSATION_ID = """
    SELECT id FROM conversations
    WHERE user_low_id = least(%(user_id)s, %(other_id)s)
      AND user_high_id = greatest(%(user_id)s, %(other_id)s)
"""


@dataclass(frozen=True)
class Opened:
    """The outcome of opening a conversation with someone who exists and is not suspended."""

    blocked: bool
    conversation_id: int | None  # None when blocked
    created: bool


async def get_or_create_conversation(db: Database, user_id: int, other_id: int) -> Opened | None:
    """The pair's one conversation, made if missing; None for an unknown or suspended user."""
    params = {"user_id": user_id, "other_id": other_id}
    row = await db.fetch_one_write(GET_OR_CREATE_CONVERSATION, params)
    if row is None:
        return None
    if row["blocked"]:
        return Opened(blocked=True, conversation_id=None, created=False)
    if row["created_id"] is not None:
        return Opened(blocked=False, conversation_id=int(row["created_id"]), created=True)
    # A new statement sees the row that a concurrent create committed.
    existing = await db.fetch_value(SELECT_CONVERSATION_ID, params)
    return Opened(blocked=False, conversation_id=int(existing), created=False)


# The columns of one conversation in a list: the other user's profile (``other_`` columns,
# from OTHER_USER: primary-key lookups per row, never the caller's whole follow list),
# the newest message (``last_``), and the caller's unread count in it, which the partial index
# on unread messages answers index-only.
OTHER_PREFIX = "other_"
CONVERSATION_COLUMNS = f"""
    c.id, c.updated_at, {prefixed_profile_columns(OTHER_PREFIX, "o")},
    fo.yes IS NOT NULL AS other_followed_by_me,
    m.id AS last_id, m.conversation_id AS last_conversation_id, m.sender_id AS last_sender_id,
    m.receiver_id AS last_receiver_id, m.body AS last_body, m.is_read AS last_is_read,
    m.created_at AS last_created_at,
    (SELECT count(*) FROM messages u
     WHERE u.receiver_id = %(user_id)s AND u.conversation_id = c.id AND NOT u.is_read)
        AS unread_count
"""
OTHER_USER = f"""
    JOIN users o ON o.id = c.other_id
    {FOLLOWS_LOOKUP.format(follower="%(user_id)s", followed="o.id", alias="fo")}
"""
KEYSET = """
    (%(before_updated_at)s::timestamptz IS NULL
     OR (updated_at, id) < (%(before_updated_at)s, %(before_id)s))
"""

# Most recent activity first. The caller may be either side of each pair, so each side is
# its own index range scan, (user_low_id | user_high_id, updated_at DESC, id DESC), limited
# before the merge: a page costs the same whether the user has ten conversations or ten
# thousand, and the last message and unread counts are joined for the page's rows only.
LIST_CONVERSATIONS = f"""
    SELECT {CONVERSATION_COLUMNS}
    FROM ((SELECT id, updated_at, last_message_id, user_high_id AS other_id
           FROM conversations
           WHERE user_low_id = %(user_id)s AND {KEYSET}
           ORDER BY updated_at DESC, id DESC
           LIMIT %(limit)s)
          UNION ALL
          (SELECT id, updated_at, last_message_id, user_low_id AS other_id
           FROM conversations
           WHERE user_high_id = %(user_id)s AND {KEYSET}
           ORDER BY updated_at DESC, id DESC
           LIMIT %(limit)s)) AS c
    {OTHER_USER}
    LEFT JOIN messages m ON m.id = c.last_message_id
    ORDER BY c.updated_at DESC, c.id DESC
    LIMIT %(limit)s
"""
PREPARED_LIST_CONVERSATIONS = Prepared("list_conversations", LIST_CONVERSATIONS)


async def list_conversations(db: Database, user_id: int, *, before: tuple[datetime, int] | None,
                             limit: int) -> list[Row]:
    before_updated_at, before_id = before or (None, None)
    return await db.fetch_all(PREPARED_LIST_CONVERSATIONS, {
        "user_id": user_id, "before_updated_at": before_updated_at, "before_id": before_id,
        "limit": limit})


GET_CONVERSATION = f"""
    SELECT {CONVERSATION_COLUMNS}
    FROM (SELECT id, updated_at, last_message_id,
                 CASE WHEN user_low_id = %(user_id)s THEN user_high_id ELSE user_low_id END
                     AS other_id
          FROM conversations
          WHERE id = %(conversation_id)s AND %(user_id)s IN (user_low_id, user_high_id)) AS c
    {OTHER_USER}
    LEFT JOIN messages m ON m.id = c.last_message_id
"""


async def get_conversation(db: Database, conversation_id: int, user_id: int) -> Row | None:
    """One conversation as the list shows it, if ``user_id`` is in it."""
    return await db.fetch_one(GET_CONVERSATION,
                              {"conversation_id": conversation_id, "user_id": user_id})


# Newest first. The conversation row carries the membership test; a participant of a
# conversation without (further) messages gets one row of NULLs, anyone else no row at all.
LIST_MESSAGES = f"""
    SELECT {MESSAGE_COLUMNS}
    FROM conversations c
    LEFT JOIN LATERAL (
        SELECT * FROM messages
        WHERE conversation_id = c.id
          AND (%(before_created_at)s::timestamptz IS NULL
               OR (created_at, id) < (%(before_created_at)s, %(before_id)s))
        ORDER BY created_at DESC, id DESC
        LIMIT %(limit)s
    ) AS m ON true
    WHERE c.id = %(conversation_id)s AND %(user_id)s IN (c.user_low_id, c.user_high_id)
    ORDER BY m.created_at DESC, m.id DESC
"""
PREPARED_LIST_MESSAGES = Prepared("list_messages", LIST_MESSAGES)


async def list_messages(db: Database, conversation_id: int, user_id: int, *,
                        before: tuple[datetime, int] | None, limit: int) -> list[Row] | None:
    """A page of the conversation's messages; None if ``user_id`` is not in it."""
    before_created_at, before_id = before or (None, None)
    rows = await db.fetch_all(PREPARED_LIST_MESSAGES, {
        "conversation_id": conversation_id, "user_id": user_id,
        "before_created_at": before_created_at, "before_id": before_id, "limit": limit})
    if not rows:
        return None
    return [row for row in rows if row["id"] is not None]


# Locks the conversation row for the rest of the transaction, so that sends and reads of one
# conversation run one after another: the newest message is the last inserted, and "the
# first unread message of the streak" is the same for every send that sees it.
LOCK_CONVERSATION = f"""
    SELECT c.id,
           CASE WHEN c.user_low_id = %(user_id)s THEN c.user_high_id ELSE c.user_low_id END
               AS other_id,
           {BLOCKED_PAIR.format(a="c.user_low_id", b="c.user_high_id")} AS blocked
    FROM conversations c
    WHERE c.id = %(conversation_id)s AND %(user_id)s IN (c.user_low_id, c.user_high_id)
    FOR NO KEY UPDATE OF c
"""


PREPARED_LOCK_CONVERSATION = Prepared("lock_conversation", LOCK_CONVERSATION)


async def lock_conversation_txn(cur: Cursor, conversation_id: int, user_id: int) -> Row | None:
    """``other_id`` and ``blocked`` of the caller's conversation, locked; None if not theirs."""
    return await cur.fetch_one(PREPARED_LOCK_CONVERSATION,
                               {"conversation_id": conversation_id, "user_id": user_id})


# clock_timestamp(), not now(): under the conversation lock it orders messages as they were
# inserted, whichever transaction started first. The unread subquery's snapshot predates the
# new row, so the new message is the streak's first when nothing older is unread.
INSERT_MESSAGE = f"""
    WITH m AS (
        INSERT INTO messages (conversation_id, sender_id, receiver_id, body, created_at)
        VALUES (%(conversation_id)s, %(sender_id)s, %(receiver_id)s, %(body)s,
                clock_timestamp())
        RETURNING *
    ), bumped AS (
        UPDATE conversations c
        SET last_message_id = m.id, updated_at = greatest(c.updated_at, m.created_at)
        FROM m
        WHERE c.id = m.conversation_id
    )
    SELECT {MESSAGE_COLUMNS},
           coalesce((SELECT min(u.id) FROM messages u
                     WHERE u.receiver_id = m.receiver_id
                       AND u.conversation_id = m.conversation_id AND NOT u.is_read),
                    m.id) AS streak_first_id
    FROM m
"""


PREPARED_INSERT_MESSAGE = Prepared("insert_message", INSERT_MESSAGE)


async def insert_message_txn(cur: Cursor, conversation_id: int, sender_id: int,
                             receiver_id: int, body: str) -> Row:
    """The new message (with ``streak_first_id``); bumps the conversation's last message."""
    row = await cur.fetch_one(PREPARED_INSERT_MESSAGE, {
        "conversation_id": conversation_id, "sender_id": sender_id,
        "receiver_id": receiver_id, "body": body})
    assert row is not None
    return row


# One statement: every message to the caller in the conversation, and the caller's message
# notification for it. The first id read names the unread streak that just ended.
MARK_CONVERSATION_READ = """
    WITH read AS (
        UPDATE messages SET is_read = true
        WHERE receiver_id = %(user_id)s AND conversation_id = %(conversation_id)s
          AND NOT is_read
        RETURNING id
    ), notified AS (
        UPDATE notifications SET is_read = true
        WHERE user_id = %(user_id)s AND dedup_key = %(dedup_key)s AND NOT is_read
        RETURNING id
    )
    SELECT (SELECT min(id) FROM read) AS streak_first_id,
           EXISTS (SELECT 1 FROM notified) AS notification_read
"""


@dataclass(frozen=True)
class ReadState:
    streak_first_id: int | None  # the first message of the unread streak read; None: none
    notification_read: bool


async def mark_conversation_read_txn(cur: Cursor, conversation_id: int, user_id: int,
                                     dedup_key: str) -> ReadState:
    row = await cur.fetch_one(MARK_CONVERSATION_READ, {
        "conversation_id": conversation_id, "user_id": user_id, "dedup_key": dedup_key})
    assert row is not None
    return ReadState(row["streak_first_id"], bool(row["notification_read"]))

