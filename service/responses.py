"""JSON answers encoded by msgspec from the declared response schemas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from service.validation import decode_body

S = TypeVar("S", bound=msgspec.Struct)

_encoder = msgspec.json.Encoder()


def json_answer(value: Any, status: int = 200,
                headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=_encoder.encode(value), status=status, headers=headers,
                        content_type="application/json")


def no_content() -> web.Response:
    return web.Response(status=204)


def from_row(row: Mapping[str, Any], schema: type[S]) -> S:
    """A database row (dict) as a response struct; extra columns are ignored."""
    return msgspec.convert(row, schema, strict=False)


async def read_body(request: web.Request, schema: type[S]) -> S:
    """The request body as ``schema``: 400 for non-JSON, 413 over the limit, 422 per field.

    The Content-Type is not insisted on: a JSON object is accepted whatever the client said.
    """
    return decode_body(await request.read(), schema)
