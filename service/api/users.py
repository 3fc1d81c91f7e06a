"""/me and /users: your own account, public profiles and the people search."""

from __future__ import annotations

import msgspec
from aiohttp import web

from service.api.account import me_values, read_me
from service.api.schemas import OwnUser, Page, ProfileUpdate, PublicProfile, UserSearchQuery
from service.appkeys import STORES
from service.authn import authenticate, authenticate_reading
from service.errors import NotFound
from service.paging import split_page
from service.responses import from_row, json_answer, read_body
from service.validation import decode_cursor, decode_query, path_id
from sql import users
from tasks.work import unit_of_work


async def get_me(request: web.Request) -> web.Response:
    """One Redis round trip when warm: the token, the account and both counts together."""
    cache = request.app[STORES].cache
    principal, prefetched = await authenticate_reading(
        request, lambda user_id: me_values(cache, user_id))
    return json_answer(await read_me(request.app[STORES].db, cache, principal.user_id,
                                     prefetched))


async def update_me(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_body(request, ProfileUpdate)
    changes = {name: value for name, value in msgspec.structs.asdict(body).items()
               if value is not msgspec.UNSET}
    if changes:
        async with unit_of_work(request.app[STORES], "update_profile") as work:
            user = await users.update_profile_txn(work.cur, principal.user_id, changes)
            work.own_user_changed(principal.user_id)
    else:
        user = await users.get_own_user(request.app[STORES].db, principal.user_id)
    if user is None:
        raise NotFound()
    return json_answer(from_row(user, OwnUser))


async def get_user(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    user = await users.get_profile(request.app[STORES].db, path_id(request), principal.user_id)
    if user is None:
        raise NotFound()
    return json_answer(from_row(user, PublicProfile))


async def search_users(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    query = decode_query(request.query, UserSearchQuery)
    before_id = decode_cursor(query.cursor, int)[0] if query.cursor else None
    prefix = query.q.strip().lower() if query.q and query.q.strip() else None
    rows = await users.search_profiles(
        request.app[STORES].db, viewer_id=principal.user_id, prefix=_escape_like(prefix),
        available=query.available_for_hire, before_id=before_id, limit=query.limit + 1)
    page, next_cursor = split_page(rows, query.limit, lambda row: (row["id"],))
    items = [from_row(row, PublicProfile) for row in page]
    return json_answer(Page(items=items, next_cursor=next_cursor))


def _escape_like(prefix: str | None) -> str | None:
    """A user's text is matched literally: % and _ are not wildcards."""
    if prefix is None:
        return None
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
