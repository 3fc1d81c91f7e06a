"""Opaque tokens: 32 random bytes for the client, only their SHA-256 kept on the server.

A bearer token starts with its user's id (``42.<random>``): a routing hint, not a secret
(ids are public), that lets a request read its user's cached values in the same Redis round
trip as the token itself. The hint is never trusted: the token's hash decides who the caller
is, and values read under a hint that turns out wrong are thrown away.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 200  # longer Authorization values are rejected before hashing
MAX_ID_DIGITS = 19  # a bigint


def new_token() -> tuple[str, bytes]:
    """A fresh token and the hash to store for it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def new_auth_token(user_id: int) -> tuple[str, bytes]:
    """A fresh bearer token for ``user_id`` (its id as a routing hint) and its hash."""
    token = f"{user_id}.{secrets.token_urlsafe(TOKEN_BYTES)}"
    return token, hash_token(token)


def user_hint(token: str) -> int | None:
    """The user id a bearer token names in front, if it names one (older tokens do not)."""
    hint, dot, _ = token.partition(".")
    if dot and 0 < len(hint) <= MAX_ID_DIGITS and hint.isascii() and hint.isdigit():
        return int(hint)
    return None


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
