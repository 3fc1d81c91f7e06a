"""/notifications: the in-app list, unread count, reading, and channel preferences."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from service.api.account import unread_count_answer
from service.api.answers import notification_answer
from service.api.schemas import (
    NotificationsQuery,
    Page,
    Preferences,
)
from service.appkeys import STORES
from service.authn import authenticate
from service.errors import NotFound
from service.paging import split_page
from service.responses import json_answer, no_content, read_body
from service.validation import decode_cursor, decode_query, path_id
from sql import notifications
from tasks.work import unit_of_work


async def list_notifications(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    query = decode_query(request.query, NotificationsQuery)
    before = decode_cursor(query.cursor, datetime, int) if query.cursor else None
    rows = await notifications.list_notifications(
        request.app[STORES].db, principal.user_id, unread_only=query.unread_only,
        type=query.type, before=before, limit=query.limit + 1)
    page, next_cursor = split_page(rows, query.limit, lambda row: (row["created_at"], row["id"]))
    items = [notification_answer(row) for row in page]
    return json_answer(Page(items=items, next_cursor=next_cursor))


async def unread_count(request: web.Request) -> web.Response:
    return await unread_count_answer(request, "notifications")


async def mark_read(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    notification_id = path_id(request)
    async with unit_of_work(request.app[STORES], "mark_notification_read") as work:
        if not await notifications.mark_read_txn(work.cur, principal.user_id, notification_id):
            raise NotFound()
        work.unread_count_changed("notifications", principal.user_id)
    return no_content()


async def mark_all_read(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    async with unit_of_work(request.app[STORES], "mark_all_notifications_read") as work:
        await notifications.mark_all_read_txn(work.cur, principal.user_id)
        work.unread_count_changed("notifications", principal.user_id)
    return no_content()


async def get_preferences(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    preferences = await notifications.get_preferences(request.app[STORES].db,
                                                      principal.user_id)
    return json_answer(preferences)


async def put_preferences(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_body(request, Preferences)
    async with unit_of_work(request.app[STORES], "set_notification_preferences") as work:
        await notifications.set_preferences_txn(work.cur, principal.user_id,
                                                dict(body.email.items()), dict(body.push.items()))
    return json_answer(await notifications.get_preferences(request.app[STORES].db,
                                                           principal.user_id))
