"""JSON answers encoded by msgspec from the declared response schemas."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
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
    """A row (dict) as a response struct, its values converted to the schema's types (e.g. a
    stored JSON copy's timestamps from text); extra columns are ignored."""
    return msgspec.convert(row, schema, strict=False)


def from_prefixed(row: Mapping[str, Any], schema: type[S], prefix: str) -> S:
    """``schema`` from the columns named ``prefix`` + field of a PostgreSQL row (a joined
    row's profile or last message), their values already of the schema's types. By position:
    gathering them into a dict for ``from_row`` cost 2.1 µs a row, this 0.8; on a
    notifications page, with the prefix test it replaced, 110 µs of a worker's 780."""
    return schema(*[row[column] for column in _columns(schema, prefix)])


@cache
def _columns(schema: type[msgspec.Struct], prefix: str) -> tuple[str, ...]:
    return tuple(prefix + field for field in schema.__struct_fields__)


async def read_body(request: web.Request, schema: type[S]) -> S:
    """The request body as ``schema``: 400 for non-JSON, 413 over the limit, 422 per field.

    The Content-Type is not insisted on: a JSON object is accepted whatever the client said.
    """
    return decode_body(await request.read(), schema)
