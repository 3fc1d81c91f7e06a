"""Opaque keyset cursors: the last row's sort key, JSON in URL-safe base64.

Cursors are not secret (they hold only sort keys the client already saw); a malformed or
tampered one is a 400, never a server error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from service.errors import BadRequest

T = TypeVar("T")


def encode_cursor(*values: Any) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps(plain, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """Decode a cursor whose values have the given types (int, str or datetime)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("wrong shape")
        return tuple(_typed(value, kind) for value, kind in zip(values, kinds, strict=True))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("The cursor is malformed.", fields={"cursor": "is malformed"}) from None


def _typed(value: Any, kind: type) -> Any:
    if kind is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        return parsed
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError("not an integer")
    if kind is str and not isinstance(value, str):
        raise ValueError("not a string")
    return value


def split_page(rows: list[T], limit: int,
               key: Callable[[T], tuple[Any, ...]]) -> tuple[list[T], str | None]:
    """``limit + 1`` rows fetched → the page, and the cursor after its last row (None when
    no further row exists)."""
    page = rows[:limit]
    return page, (encode_cursor(*key(page[-1])) if len(rows) > limit else None)
