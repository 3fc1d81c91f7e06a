"""/me and /users: your own account, public profiles and the people search."""

from __future__ import annotations

import msgspec
from aiohttp import web

from service.appkeys import DATABASE
from service.authn import authenticate
from service.errors import NotFound
from service.notifications import load_unread_counts
from service.paging import split_page
from service.responses import from_row, json_answer, read_body
from service.schemas import MeAnswer, OwnUser, Page, ProfileUpdate, PublicProfile, UserSearchQuery
from service.validation import decode_cursor, decode_query, path_id
from sql import users


async def get_me(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    db = request.app[DATABASE]
    user = await users.get_own_user(db, principal.user_id)
    if user is None:
        raise NotFound()
    unread = await load_unread_counts(request, principal.user_id)
    return json_answer(MeAnswer(user=from_row(user, OwnUser),
                                unread_notifications=unread["notifications"],
                                unread_messages=unread["messages"]))


async def update_me(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_body(request, ProfileUpdate)
    changes = {name: value for name, value in msgspec.structs.asdict(body).items()
               if value is not msgspec.UNSET}
    db = request.app[DATABASE]
    if changes:
        user = await users.update_profile(db, principal.user_id, changes)
    else:
        user = await users.get_own_user(db, principal.user_id)
    if user is None:
        raise NotFound()
    return json_answer(from_row(user, OwnUser))


async def get_user(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    user = await users.get_profile(request.app[DATABASE], path_id(request), principal.user_id)
    if user is None:
        raise NotFound()
    return json_answer(from_row(user, PublicProfile))


async def search_users(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    query = decode_query(request.query, UserSearchQuery)
    before_id = decode_cursor(query.cursor, int)[0] if query.cursor else None
    prefix = query.q.strip().lower() if query.q and query.q.strip() else None
    rows = await users.search_profiles(
        request.app[DATABASE], viewer_id=principal.user_id, prefix=_escape_like(prefix),
        available=query.available_for_hire, before_id=before_id, limit=query.limit + 1)
    page, next_cursor = split_page(rows, query.limit, lambda row: (row["id"],))
    items = [from_row(row, PublicProfile) for row in page]
    return json_answer(Page(items=items, next_cursor=next_cursor))


def _escape_like(prefix: str | None) -> str | None:
    """A user's text is matched literally: % and _ are not wildcards."""
    if prefix is None:
        return None
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
