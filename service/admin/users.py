"""Users: search, one account with its recent activity and the reports against it,
suspend and reinstate."""

from __future__ import annotations

from aiohttp import web

from service.admin import actions
from service.admin.render import (
    PAGE_SIZE,
    choice_param,
    cursor_param,
    page_of,
    redirect,
    render,
    text_param,
)
from service.admin.security import STAFF_KEY
from service.appkeys import STORES
from service.errors import NotFound
from service.validation import path_id
from sql import admin_users
from sql.moderation import list_reports_on

SUSPENDED_FILTER = {"any": None, "suspended": True, "active": False}


async def users_page(request: web.Request) -> web.Response:
    q = text_param(request, "q")
    state = choice_param(request, "state", tuple(SUSPENDED_FILTER))
    before = cursor_param(request, int)
    rows = await admin_users.search_accounts(
        request.app[STORES].db, q, suspended=SUSPENDED_FILTER[state],
        before_id=before[0] if before else None, limit=PAGE_SIZE + 1)
    users, next_page = page_of(request, rows, lambda row: (row["id"],))
    return render(request, "users.html", {"users": users, "next_page": next_page, "q": q or "",
                                          "state": state, "states": list(SUSPENDED_FILTER)})


async def user_page(request: web.Request) -> web.Response:
    db = request.app[STORES].db
    user_id = path_id(request)
    account = await admin_users.get_account(db, user_id)
    if account is None:
        raise NotFound("No such user.")
    return render(request, "user.html", {
        "user": account,
        "activity": await admin_users.list_recent_activity(db, user_id),
        "reports": await list_reports_on(db, "user", user_id)})


async def suspend_user(request: web.Request) -> web.Response:
    user_id = path_id(request)
    staff = request[STAFF_KEY]
    if user_id == staff.id:
        raise NotFound("You cannot suspend yourself.")
    await actions.act(request.app[STORES], staff.id, "suspend_user", user_id)
    return redirect(f"/admin/users/{user_id}")


async def reinstate_user(request: web.Request) -> web.Response:
    user_id = path_id(request)
    await actions.reinstate_user(request.app[STORES], request[STAFF_KEY].id, user_id)
    return redirect(f"/admin/users/{user_id}")
