"""The admin console's own session cookie, CSRF tokens, cross-site checks and HTML headers.

The cookie holds a random session token, signed with SECRET_KEY (a forged or altered cookie
is refused before any query); only the token's SHA-256 is stored (``admin_sessions``), so a
session ends at once when its row goes. A form's CSRF token is an HMAC of the session token:
nothing extra to store, and useless without the HttpOnly cookie it belongs to. The sign-in
form, before any session exists, is tied the same way to a short-lived nonce cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from aiohttp import web

from service.appkeys import SETTINGS
from service.tokens import hash_token
from tasks import base64url

SESSION_COOKIE = "hireme_admin"
SIGNIN_COOKIE = "hireme_admin_signin"
SESSION_MAX_AGE = 12 * 3600  # as sql.admin_sessions.SESSION_LIFETIME
SIGNIN_MAX_AGE = 3600
CSRF_FIELD = "csrf_token"
# Browsers send Sec-Fetch-Site on every request; only these come from our own pages (or
# from the address bar, "none").
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})

HTML_SECURITY_HEADERS = {
    # No script at all; styles and images only from this origin; forms post only here.
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Staff:
    """The signed-in admin."""

    id: int
    email: str
    name: str
    session_token: str


STAFF_KEY = web.RequestKey("admin_staff", Staff)


def _mac(request: web.Request, purpose: str, value: str) -> str:
    secret = request.app[SETTINGS].secret_key.encode()
    digest = hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64url.encode(digest)


def sign(request: web.Request, value: str) -> str:
    return f"{value}.{_mac(request, 'cookie', value)}"


def unsign(request: web.Request, signed: str | None) -> str | None:
    """The value of a cookie we signed, or None when it is missing or was tampered with."""
    if not signed or len(signed) > 200:
        return None
    value, _, mac = signed.rpartition(".")
    if not value or not hmac.compare_digest(mac, _mac(request, "cookie", value)):
        return None
    return value


def new_session_token() -> tuple[str, bytes]:
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def session_token(request: web.Request) -> str | None:
    return unsign(request, request.cookies.get(SESSION_COOKIE))


def csrf_token(request: web.Request, bound_to: str) -> str:
    """The form token for a session (or, before sign-in, for the sign-in nonce)."""
    return _mac(request, "csrf", bound_to)


def csrf_matches(request: web.Request, bound_to: str | None, sent: object) -> bool:
    return (bound_to is not None and isinstance(sent, str)
            and hmac.compare_digest(sent, csrf_token(request, bound_to)))


def is_cross_site(request: web.Request) -> bool:
    """A POST some other site's page made: by Sec-Fetch-Site, or by an Origin not ours."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in SAME_SITE_FETCHES:
        return True
    origin = request.headers.get("Origin")
    return origin is not None and origin != f"{scheme(request)}://{request.host}"


def scheme(request: web.Request) -> str:
    """https when the request came over TLS, here or at the trusted proxy in front."""
    if request.secure:
        return "https"
    peer = request.remote or ""  # a unix-socket peer can only be the local proxy
    trusted = not peer or peer in request.app[SETTINGS].trusted_proxies
    forwarded = request.headers.get("X-Forwarded-Proto", "").strip().lower()
    return "https" if trusted and forwarded == "https" else "http"


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               max_age: int) -> None:
    response.set_cookie(name, sign(request, value), max_age=max_age, path="/admin",
                        httponly=True, samesite="Lax", secure=scheme(request) == "https")


def forget_cookie(response: web.StreamResponse, name: str) -> None:
    response.del_cookie(name, path="/admin")
