"""The pages that links in emails and push notifications open, outside /api/v1.

Small server-rendered HTML, no JavaScript. The verification and reset links carry a
single-use token: opening one only shows a form, and the form's POST spends the token,
because mail scanners open every link in an email and must not verify or burn it. Pages
about private things (an application, a conversation, a post) only say what they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from service.api.email_tokens import reset_password_with_token, verify_email_with_token
from service.api.schemas import Password
from service.appkeys import STORES
from service.errors import NotFound, RateLimited
from service.limits import enforce_auth_limit
from service.pages.unsubscribe import HTML_HEADERS
from service.validation import path_id
from sql import jobs
from sql.users import get_profiles

# What service.tokens.new_token makes; anything else cannot be one of our links, and is
# refused before it reaches a hash, a database or a template.
LINK_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")
EMPLOYMENT_TYPES = {"full_time": "Full time", "part_time": "Part time", "contract": "Contract",
                    "internship": "Internship", "temporary": "Temporary"}
NOBODY = 0  # the viewer id of an anonymous visitor: no user has it


# -- verify email and reset password ---------------------------------------------------------
# No CSRF token on these forms: the single-use token from the email is the authority, so a
# forged POST can only do what the person holding the emailed link could do anyway.

async def verify_email_page(request: web.Request) -> web.Response:
    token = _link_token(request.query.get("token"))
    if token is None:
        return _invalid_link(request)
    return _page(request, "verify_email.html", {"token": token})


async def submit_verify_email(request: web.Request) -> web.Response:
    token = _link_token((await _form(request)).get("token"))
    if token is None or not await verify_email_with_token(request.app[STORES], token):
        return _invalid_link(request)
    return _page(request, "verify_email.html", {"done": True})


async def reset_password_page(request: web.Request) -> web.Response:
    token = _link_token(request.query.get("token"))
    if token is None:
        return _invalid_link(request)
    return _page(request, "reset_password.html", {"token": token})


async def submit_reset_password(request: web.Request) -> web.Response:
    form = await _form(request)
    token = _link_token(form.get("token"))
    if token is None:
        return _invalid_link(request)
    password = _acceptable_password(form.get("new_password"))
    if password is None:
        return _page(request, "reset_password.html", {"token": token, "too_short": True},
                     status=422)
    try:
        await enforce_auth_limit(request, "password_reset_confirm", None)  # as the API does
    except RateLimited as limited:
        return _page(request, "message.html", {"title": "Too many attempts", "text":
                     "Too many attempts from here. Wait a minute, then try the link again."},
                     status=429, headers=limited.headers)
    if not await reset_password_with_token(request.app[STORES], token,
                                           password):
        return _invalid_link(request)
    return _page(request, "reset_password.html", {"done": True})


# -- jobs, and what only the app shows -------------------------------------------------------

async def job_page(request: web.Request) -> web.Response:
    """A job's public page, as job boards publish them; a closed job says so."""
    try:
        job_id = path_id(request)
    except NotFound:
        return _not_found(request)
    db = request.app[STORES].db
    row = await jobs.get_job(db, job_id)
    if row is None:
        return _not_found(request)
    employers = await get_profiles(db, [row["employer_id"]], NOBODY)
    employer = employers.get(row["employer_id"])
    return _page(request, "job.html", {
        "job": row, "type": EMPLOYMENT_TYPES.get(row["employment_type"], ""),
        "employer": f"{employer['first_name']} {employer['last_name']}" if employer else ""})


def app_link_page(title: str, text: str, *, has_id: bool = True) -> Handler:
    """A page naming what a link points to, for things only their owner may see in the app."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if has_id:
            try:
                path_id(request)
            except NotFound:
                return _not_found(request)
        return _page(request, "message.html", {"title": title, "text": text})

    return handler


OPEN_THE_APP = "Open the hireme app and sign in to see it."
job_applications_page = app_link_page("Applications to your job", OPEN_THE_APP)
application_page = app_link_page("An application", OPEN_THE_APP)
conversation_page = app_link_page("A conversation", OPEN_THE_APP)
post_page = app_link_page("A post", OPEN_THE_APP)
profile_page = app_link_page("A profile", OPEN_THE_APP)
notifications_page = app_link_page("Your notifications", OPEN_THE_APP, has_id=False)
job_alerts_page = app_link_page(
    "Your job alerts", "Open the hireme app and sign in to see and change them.", has_id=False)


# -- helpers ---------------------------------------------------------------------------------

def _link_token(value: object) -> str | None:
    return value if isinstance(value, str) and LINK_TOKEN.fullmatch(value) else None


def _acceptable_password(value: object) -> str | None:
    """The API's own password rule (``service.api.schemas.Password``); None if it fails it."""
    if not isinstance(value, str):
        return None
    try:
        value.encode()  # a lone surrogate from a mangled form cannot be hashed
        return msgspec.convert(value, Password)
    except (UnicodeEncodeError, msgspec.ValidationError):
        return None


async def _form(request: web.Request) -> Mapping[str, Any]:
    """The POSTed form fields; empty for a body no browser would send (bad bytes or charset)."""
    try:
        return await request.post()
    except (ValueError, LookupError):
        return {}


def _invalid_link(request: web.Request) -> web.Response:
    return _page(request, "message.html", {
        "title": "This link is invalid or already used",
        "text": "This link is invalid or already used, or it has expired. Links in our "
                "emails work once; ask for a new email from the hireme app."}, status=400)


def _not_found(request: web.Request) -> web.Response:
    return _page(request, "message.html", {
        "title": "Page not found", "text": "There is nothing here. It may have been removed."},
        status=404)


def _page(request: web.Request, template: str, context: dict[str, Any], *, status: int = 200,
          headers: Mapping[str, str] | None = None) -> web.Response:
    response = aiohttp_jinja2.render_template(f"pages/{template}", request, context,
                                              status=status)
    response.headers.update(HTML_HEADERS)
    response.headers.update(headers or {})
    return response
