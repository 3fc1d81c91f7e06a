"""Rate limits on the sensitive and the writing endpoints, and who the client is."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from cache.ratelimit import hit_rate_limit
from service.appkeys import SETTINGS, STORES
from service.errors import RateLimited


def client_ip(request: web.Request) -> str:
    """The peer address, or the last untrusted hop of X-Forwarded-For behind our proxies."""
    peer = request.remote or ""
    trusted = request.app[SETTINGS].trusted_proxies
    # A unix-socket peer has no address: only a local proxy (nginx) can be connected there.
    if peer and peer not in trusted:
        return peer
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed(hops):
        if hop and hop not in trusted and _is_ip(hop):
            return hop
    return peer or "local"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def enforce_auth_limit(request: web.Request, scope: str, account: str | None) -> None:
    """AUTH_RATE_LIMIT per client IP and per account (email or user id), all processes."""
    limit = request.app[SETTINGS].auth_rate_limit
    subjects = [f"ip:{client_ip(request)}"]
    if account is not None:
        subjects.append(f"account:{account.lower()}")
    for subject in subjects:
        await _enforce(request, scope, subject, limit.count, limit.window)


async def enforce_write_limit(request: web.Request, user_id: int) -> None:
    limit = request.app[SETTINGS].write_rate_limit
    await _enforce(request, "write", f"user:{user_id}", limit.count, limit.window)


async def _enforce(request: web.Request, scope: str, subject: str, count: int,
                   window: int) -> None:
    retry_after = await hit_rate_limit(request.app[STORES].cache, scope, subject, count, window,
                                       processes=request.app[SETTINGS].web_concurrency)
    if retry_after is not None:
        raise RateLimited(retry_after)
