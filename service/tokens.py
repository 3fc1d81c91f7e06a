"""Opaque tokens: 32 random bytes for the client, only their SHA-256 kept on the server."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 200  # longer Authorization values are rejected before hashing


def new_token() -> tuple[str, bytes]:
    """A fresh token and the hash to store for it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
