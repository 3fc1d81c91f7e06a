"""Opaque keyset cursors: the last row's sort key, JSON in URL-safe base64.

``service.validation.decode_cursor`` reads them back; a malformed or tampered one is a 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from tasks import base64url

T = TypeVar("T")


def encode_cursor(*values: Any) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps(plain, separators=(",", ":")).encode()
    return base64url.encode(raw)


def split_page(rows: list[T], limit: int,
               key: Callable[[T], tuple[Any, ...]]) -> tuple[list[T], str | None]:
    """``limit + 1`` rows fetched → the page, and the cursor after its last row (None when
    no further row exists)."""
    page = rows[:limit]
    return page, (encode_cursor(*key(page[-1])) if len(rows) > limit else None)
