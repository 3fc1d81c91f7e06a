"""Unpadded URL-safe base64 (RFC 4648 section 5), as cursors, tokens, JWTs and push keys use it.

In ``tasks`` because it is the lowest package all its users can import: ``service`` (cursors,
admin cookies), ``tasks`` (unsubscribe tokens, web push keys), ``run.py`` and the tests.
"""

from __future__ import annotations

import base64


def encode(data: bytes) -> str:
    """``data`` as base64url without ``=`` padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode(text: str) -> bytes:
    """The bytes of base64url ``text``, padded or not; ValueError (binascii.Error) when it
    cannot be decoded. Like ``base64.urlsafe_b64decode`` it skips characters outside the
    alphabet, so a caller that needs a strict shape checks the text first."""
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())
