"""Staff sign-in and sign-out: email and password, the same argon2 check as /auth/login."""

from __future__ import annotations

import secrets

from aiohttp import web

from service.admin.guard import CsrfRejected
from service.admin.render import redirect, render
from service.admin.security import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    SIGNIN_COOKIE,
    SIGNIN_MAX_AGE,
    STAFF_KEY,
    csrf_matches,
    csrf_token,
    forget_cookie,
    new_session_token,
    set_cookie,
    unsign,
)
from service.appkeys import STORES
from service.limits import enforce_auth_limit
from service.passwords import upgrade_hash_txn, verify_password
from service.tokens import hash_token
from sql.admin_sessions import delete_admin_session, get_staff_login, insert_admin_session_txn
from tasks.work import unit_of_work

WRONG = "Wrong email or password, or this account is not staff."
MAX_FIELD = 254


async def signin_page(request: web.Request) -> web.Response:
    return _form(request, error=None, email="", status=200)


def _form(request: web.Request, *, error: str | None, email: str,
          status: int) -> web.Response:
    """The form with a fresh nonce cookie, which its CSRF token is bound to."""
    nonce = secrets.token_urlsafe(16)
    response = render(request, "signin.html", {
        "error": error, "email": email, "signin_csrf": csrf_token(request, nonce)},
        status=status)
    set_cookie(request, response, SIGNIN_COOKIE, nonce, SIGNIN_MAX_AGE)
    return response


async def signin(request: web.Request) -> web.Response:
    form = await request.post()
    nonce = unsign(request, request.cookies.get(SIGNIN_COOKIE))
    if not csrf_matches(request, nonce, form.get(CSRF_FIELD)):
        raise CsrfRejected()
    email, password = form.get("email"), form.get("password")
    if not (isinstance(email, str) and isinstance(password, str)
            and 0 < len(email) <= MAX_FIELD and 0 < len(password) <= 128):
        return _form(request, error=WRONG, email="", status=401)
    await enforce_auth_limit(request, "admin_login", email)
    db = request.app[STORES].db
    user = await get_staff_login(db, email)
    # An unknown email costs the same time as a wrong password, and answers the same.
    if (not await verify_password(user["password_hash"] if user else None, password)
            or user is None or not user["is_admin"] or user["suspended_at"] is not None):
        return _form(request, error=WRONG, email=email, status=401)
    token, token_hash = new_session_token()
    async with unit_of_work(request.app[STORES], "admin_signin") as work:
        await insert_admin_session_txn(work.cur, token_hash, user["id"])
        await upgrade_hash_txn(work.cur, user["id"], user["password_hash"], password)
    response = redirect("/admin/")
    set_cookie(request, response, SESSION_COOKIE, token, SESSION_MAX_AGE)
    forget_cookie(response, SIGNIN_COOKIE)
    return response


async def signout(request: web.Request) -> web.Response:
    await delete_admin_session(request.app[STORES].db,
                               hash_token(request[STAFF_KEY].session_token))
    response = redirect("/admin/login")
    forget_cookie(response, SESSION_COOKIE)
    return response
