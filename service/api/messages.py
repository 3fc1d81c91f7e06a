"""/conversations and /messages: direct messages between two users.

A conversation exists only for its two participants: to anyone else every path under it is
a 404, decided by the SQL (sql/messages.py), never after fetching.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from service.api.account import unread_count_answer
from service.api.schemas import Page, PageQuery, PublicProfile
from service.api.social_schemas import Conversation, ConversationCreate, Message, MessageCreate
from service.appkeys import SETTINGS, STORES
from service.authn import authenticate
from service.errors import Forbidden, NotFound, ValidationFailed
from service.paging import split_page
from service.responses import from_prefixed, from_row, json_answer, no_content, read_body
from service.validation import decode_cursor, decode_query, path_id
from sql import messages
from sql.db import Row
from tasks.notify import NewNotification, notify_txn
from tasks.work import unit_of_work

PREVIEW_LENGTH = 100
BLOCKED = "Messages between you and this user are blocked."



async def create_conversation(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_body(request, ConversationCreate)
    if body.user_id == principal.user_id:
        raise ValidationFailed({"user_id": "cannot be yourself"})
    db = request.app[STORES].db
    opened = await messages.get_or_create_conversation(db, principal.user_id, body.user_id)
    if opened is None:
        raise NotFound()
    if opened.blocked or opened.conversation_id is None:
        raise Forbidden(BLOCKED)
    row = await messages.get_conversation(db, opened.conversation_id, principal.user_id)
    if row is None:  # the other user's account was erased meanwhile
        raise NotFound()
    return json_answer(_conversation(row), 201 if opened.created else 200)


async def list_conversations(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    query = decode_query(request.query, PageQuery)
    before = decode_cursor(query.cursor, datetime, int) if query.cursor else None
    db = request.app[STORES].db
    rows = await messages.list_conversations(db, principal.user_id, before=before,
                                             limit=query.limit + 1)
    page, next_cursor = split_page(rows, query.limit, lambda row: (row["updated_at"], row["id"]))
    items = [_conversation(row) for row in page]
    return json_answer(Page(items=items, next_cursor=next_cursor))


def _conversation(row: Row) -> Conversation:
    """A row of sql/messages.py's CONVERSATION_COLUMNS, the other user's profile included."""
    other_user = from_prefixed(row, PublicProfile, messages.OTHER_PREFIX)
    return Conversation(id=row["id"], other_user=other_user, last_message=_last_message(row),
                        unread_count=row["unread_count"], updated_at=row["updated_at"])


def _last_message(row: Row) -> Message | None:
    if row["last_id"] is None:
        return None
    return from_prefixed(row, Message, "last_")


async def list_messages(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    conversation_id = path_id(request)
    query = decode_query(request.query, PageQuery)
    before = decode_cursor(query.cursor, datetime, int) if query.cursor else None
    rows = await messages.list_messages(request.app[STORES].db, conversation_id,
                                        principal.user_id, before=before,
                                        limit=query.limit + 1)
    if rows is None:
        raise NotFound()
    page, next_cursor = split_page(rows, query.limit, lambda row: (row["created_at"], row["id"]))
    items = [from_row(row, Message) for row in page]
    return json_answer(Page(items=items, next_cursor=next_cursor))


async def send_message(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    conversation_id = path_id(request)
    body = await read_body(request, MessageCreate)
    delay = request.app[SETTINGS].message_email_delay
    async with unit_of_work(request.app[STORES], "send_message") as work:
        target = await messages.lock_conversation_txn(work.cur, conversation_id,
                                                      principal.user_id)
        if target is None:
            raise NotFound()
        if target["blocked"]:
            raise Forbidden(BLOCKED)
        row = await messages.insert_message_txn(work.cur, conversation_id, principal.user_id,
                                                target["other_id"], body.body)
        await notify_txn(work, _message_event(row, delay))
        work.unread_count_changed("messages", row["receiver_id"])
        for user_id in (row["sender_id"], row["receiver_id"]):  # both see it (API.md)
            work.live_event(user_id, "message", row["id"])
    return json_answer(from_row(row, Message), 201)


def _message_event(row: Row, email_delay_seconds: float) -> NewNotification:
    """The receiver's one `message` notification per conversation, refreshed by each message.

    Every message is pushed (one Topic per conversation, so an undelivered push is
    replaced); the email reminder is keyed by the unread streak's first message, so the
    streak's later messages add no email, and a new streak (after a read) gets its own.
    """
    conversation_id = row["conversation_id"]
    return NewNotification(
        user_id=row["receiver_id"], type="message", actor_id=row["sender_id"],
        related_id=conversation_id,
        data={"conversation_id": conversation_id, "preview": row["body"][:PREVIEW_LENGTH],
              "path": f"/conversations/{conversation_id}"},
        dedup_key=_notification_key(conversation_id), refresh=True,
        event_key=f"message-{row['id']}", topic=f"conversation-{conversation_id}",
        email_delay_seconds=email_delay_seconds,
        email_key=_reminder_key(conversation_id, row["receiver_id"], row["streak_first_id"]),
        unread_message_id=row["streak_first_id"])


def _notification_key(conversation_id: int) -> str:
    return f"message:{conversation_id}"


def _reminder_key(conversation_id: int, receiver_id: int, streak_first_id: int) -> str:
    return f"message-reminder:{conversation_id}:{receiver_id}:{streak_first_id}"


async def read_conversation(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    conversation_id = path_id(request)
    user_id = principal.user_id
    async with unit_of_work(request.app[STORES], "read_conversation") as work:
        if await messages.lock_conversation_txn(work.cur, conversation_id, user_id) is None:
            raise NotFound()
        state = await messages.mark_conversation_read_txn(
            work.cur, conversation_id, user_id, _notification_key(conversation_id))
        if state.streak_first_id is not None:  # its reminder checks this before sending
            work.unread_count_changed("messages", user_id)
        if state.notification_read:
            work.unread_count_changed("notifications", user_id)
    return no_content()


async def unread_count(request: web.Request) -> web.Response:
    return await unread_count_answer(request, "messages")
