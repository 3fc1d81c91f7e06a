"""Jobs (search, close, delete), posts and comments (list by author, remove)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from service.admin import actions
from service.admin.render import (
    PAGE_SIZE,
    choice_param,
    cursor_param,
    int_param,
    page_of,
    redirect,
    render,
    text_param,
)
from service.admin.security import STAFF_KEY
from service.appkeys import STORES
from service.validation import path_id
from sql import jobs
from sql.admin_content import list_content

JOB_STATES = ("open", "closed")


async def jobs_page(request: web.Request) -> web.Response:
    status = choice_param(request, "status", JOB_STATES)
    q, employer_id = text_param(request, "q"), int_param(request, "employer_id")
    filters: dict[str, Any] = {"q": q, "employer_id": employer_id}
    rows = await jobs.list_jobs(request.app[STORES].db, filters, status=status,
                                after=cursor_param(request, datetime, int),
                                limit=PAGE_SIZE + 1)
    found, next_page = page_of(request, rows, lambda row: (row["created_at"], row["id"]))
    return render(request, "jobs.html", {
        "jobs": found, "next_page": next_page, "status": status, "statuses": JOB_STATES,
        "q": q or "", "employer_id": employer_id or ""})


async def posts_page(request: web.Request) -> web.Response:
    return await _content_page(request, "posts")


async def comments_page(request: web.Request) -> web.Response:
    return await _content_page(request, "comments")


async def _content_page(request: web.Request, which: str) -> web.Response:
    author_id = int_param(request, "author_id")
    rows = await list_content(request.app[STORES].db, which, author_id=author_id,
                              before=cursor_param(request, datetime, int),
                              limit=PAGE_SIZE + 1)
    items, next_page = page_of(request, rows, lambda row: (row["created_at"], row["id"]))
    return render(request, f"{which}.html", {"items": items, "next_page": next_page,
                                             "author_id": author_id or ""})


def _acting(action: str, back: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        await actions.act(request.app[STORES], request[STAFF_KEY].id, action,
                          path_id(request))
        return redirect(back)
    handler.__name__ = action
    return handler


close_job = _acting("close_job", "/admin/jobs")
delete_job = _acting("delete_job", "/admin/jobs")
remove_post = _acting("remove_post", "/admin/posts")
remove_comment = _acting("remove_comment", "/admin/comments")
