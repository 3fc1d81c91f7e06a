"""Who is calling: bearer token → principal, through a short Redis cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aiohttp import web

from cache.readthrough import CachedValue
from cache.tokens import CachedToken, fill_cached_token, read_token_with
from cache.versioned import Cached
from service.appkeys import STORES
from service.errors import Forbidden, Unauthorized
from service.freshness import follow_own_writes, marker_to_read
from service.limits import enforce_write_limit
from service.tokens import MAX_TOKEN_LENGTH, hash_token, user_hint
from sql.tokens import get_token_principal, touch_auth_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOUCH_INTERVAL = timedelta(days=1)


@dataclass(frozen=True)
class Principal:
    user_id: int
    role: str
    is_admin: bool
    token_hash: bytes


PRINCIPAL_KEY = web.RequestKey("principal", Principal)
# What a handler reads through the cache for a user: read with the token when it can be.
ReadsOf = Callable[[int], Sequence[CachedValue]]
# Or the Redis commands it adds to the token's pipeline for a user.
QueueReadsOf = Callable[[int, Any], None]


async def authenticate(request: web.Request) -> Principal:
    """The caller, or 401. Writes also count against the caller's write rate limit."""
    principal, _, _ = await _authenticate(request, None, None)
    return principal


async def authenticate_reading(request: web.Request, reads: ReadsOf | None
                               ) -> tuple[Principal, list[Cached] | None]:
    """The caller, and the cached entries ``reads(user_id)`` names, read in the same Redis
    round trip as the token (an authenticated cached read is one round trip in all).

    The entries come back only when the token's user hint (``service.tokens.user_hint``)
    proves to be the caller; otherwise None, and the handler reads them itself.
    """
    principal, entries, _ = await _authenticate(request, reads, None)
    return principal, entries


async def authenticate_pipelined(request: web.Request, queue_reads: QueueReadsOf
                                 ) -> tuple[Principal, list[Any] | None]:
    """The caller, and the answers to the Redis commands ``queue_reads(user_id, pipeline)``
    adds, sent in the token's round trip; as with ``authenticate_reading``, None unless the
    token's user hint proves to be the caller (or when Redis is unavailable)."""
    principal, _, answers = await _authenticate(request, None, queue_reads)
    return principal, answers


async def _authenticate(request: web.Request, reads: ReadsOf | None,
                        queue_reads: QueueReadsOf | None
                        ) -> tuple[Principal, list[Cached] | None, list[Any] | None]:
    principal = request.get(PRINCIPAL_KEY)
    if principal is not None:
        return principal, None, None
    token = bearer_token(request)
    token_hash = hash_token(token)
    hint = user_hint(token)
    keys = [value.key for value in reads(hint)] if reads and hint else []
    queue = partial(queue_reads, hint) if queue_reads and hint else None
    cached, entries, answers = await read_token_with(
        request.app[STORES].cache, token_hash.hex(), keys, marker_to_read(request, hint), queue)
    principal = await _principal_of(request, token_hash, cached)
    request[PRINCIPAL_KEY] = principal
    await follow_own_writes(request, principal.user_id,
                            cached.wrote_recently if principal.user_id == hint else None)
    if request.method not in SAFE_METHODS:
        await enforce_write_limit(request, principal.user_id)
    if principal.user_id != hint:
        return principal, None, None
    return principal, (entries if keys else None), answers


async def require_employer(request: web.Request) -> Principal:
    principal = await authenticate(request)
    if principal.role != "employer":
        raise Forbidden("Only employers can do this.")
    return principal


def bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized()
    return token


async def _principal_of(request: web.Request, token_hash: bytes,
                        cached: CachedToken) -> Principal:
    """The principal the cache holds for the token, else PostgreSQL's (then cached)."""
    cache = request.app[STORES].cache
    if cached.revoked:
        raise Unauthorized()
    if (known := cached.principal) is not None:
        return Principal(known["user_id"], known["role"], known["is_admin"], token_hash)
    db = request.app[STORES].db
    row = await get_token_principal(db, token_hash)
    if row is None:
        raise Unauthorized()
    if row["last_used_at"] < datetime.now(UTC) - TOUCH_INTERVAL:
        await touch_auth_token(db, token_hash)
    if cached.epoch is not None:  # Redis answered the lookup: fill under the epoch it gave
        await fill_cached_token(cache, token_hash.hex(), cached.epoch, {
            "user_id": row["user_id"], "role": row["role"], "is_admin": row["is_admin"]})
    return Principal(row["user_id"], row["role"], row["is_admin"], token_hash)
