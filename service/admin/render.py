"""Rendering admin pages: the layout's context, redirects, query parameters, pages of rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from service.admin.security import STAFF_KEY, csrf_token
from service.errors import BadRequest
from service.paging import split_page
from service.validation import decode_cursor
from sql.db import Row

PAGE_SIZE = 25
MAX_TEXT = 200


def render(request: web.Request, template: str, context: Mapping[str, Any],
           status: int = 200) -> web.Response:
    staff = request.get(STAFF_KEY)
    full = {"staff": staff, "csrf_token": csrf_token(request, staff.session_token)
            if staff else None, **context}
    return aiohttp_jinja2.render_template(f"admin/{template}", request, full, status=status)


def redirect(location: str) -> web.Response:
    """303: after a POST the browser GETs the page (a reload does not repeat the action)."""
    return web.Response(status=303, headers={"Location": location})


def text_param(request: web.Request, name: str) -> str | None:
    """A search box's text, stripped; None when empty. Over-long or NUL-bearing text is 400."""
    value = request.query.get(name, "").strip()
    if len(value) > MAX_TEXT or "\x00" in value:
        raise BadRequest(f"{name} is too long or holds a NUL character.")
    return value or None


def int_param(request: web.Request, name: str) -> int | None:
    value = request.query.get(name, "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise BadRequest(f"{name} must be a positive whole number.")
    return int(value)


def choice_param(request: web.Request, name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``; the first when absent."""
    value = request.query.get(name) or choices[0]
    if value not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}.")
    return value


def cursor_param(request: web.Request, *kinds: type) -> tuple[Any, ...] | None:
    cursor = request.query.get("cursor")
    return decode_cursor(cursor, *kinds) if cursor else None


def page_of(request: web.Request, rows: list[Row],
            key: Callable[[Row], tuple[Any, ...]]) -> tuple[list[Row], str | None]:
    """``PAGE_SIZE + 1`` rows → the page, and the link to the next one (same filters)."""
    page, cursor = split_page(rows, PAGE_SIZE, key)
    if cursor is None:
        return page, None
    query = {name: value for name, value in request.query.items() if name != "cursor"}
    return page, f"{request.path}?{urlencode({**query, 'cursor': cursor})}"
