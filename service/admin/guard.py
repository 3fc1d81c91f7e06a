"""The admin sub-application's middleware: who is signed in, CSRF and cross-site checks,
HTML error pages and the security headers every answer carries."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from service.admin.render import redirect, render
from service.admin.security import (
    CSRF_FIELD,
    HTML_SECURITY_HEADERS,
    STAFF_KEY,
    Staff,
    csrf_matches,
    is_cross_site,
    session_token,
)
from service.appkeys import STORES
from service.errors import ApiError
from service.tokens import hash_token
from sql.admin_sessions import get_admin_session
from sql.db import DatabaseUnavailable, QueryCanceled

log = logging.getLogger(__name__)

# Reachable signed out: the sign-in form and its stylesheet.
PUBLIC_ROUTES = frozenset({"admin_signin_page", "admin_signin", "admin_stylesheet"})
SIGNIN_PATH = "/admin/login"


class CsrfRejected(ApiError):
    status, code = 403, "forbidden"
    message = "This form is stale or did not come from this site. Reload the page and retry."


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await _guarded(request, handler)
    except ApiError as error:
        response = _error_page(request, error.status, error.message)
        response.headers.update(error.headers)
    except web.HTTPException as http_error:
        if http_error.status < 400:
            raise
        response = _error_page(request, http_error.status, http_error.reason)
    except (DatabaseUnavailable, QueryCanceled, TimeoutError) as error:
        log.warning("admin page answering 503: %s", error)
        response = _error_page(request, 503, "The database is unavailable; try again soon.")
    response.headers.update(HTML_SECURITY_HEADERS)
    return response


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "POST" and is_cross_site(request):
        raise CsrfRejected()
    if request.match_info.route.name in PUBLIC_ROUTES:
        return await handler(request)
    token = session_token(request)
    row = await get_admin_session(request.app[STORES].db, hash_token(token)) if token else None
    if row is None or token is None:
        return redirect(SIGNIN_PATH)
    request[STAFF_KEY] = Staff(row["id"], row["email"], f"{row['first_name']} "
                               f"{row['last_name']}", token)
    if request.method == "POST":
        form = await request.post()
        if not csrf_matches(request, token, form.get(CSRF_FIELD)):
            raise CsrfRejected()
    return await handler(request)


def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "error.html", {"status": status, "message": message}, status=status)
