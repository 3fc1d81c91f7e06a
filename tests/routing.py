"""The route table as the tests see it: each route, and the schemas its handler reads."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import msgspec

from service.app import create_app
from service.config import Settings

_READS = re.compile(r"(?:read_body|decode_body|decode_query)\([^,]+,\s*(\w+)\)")
_CALLS = re.compile(r"\b(_?\w+)\(")


def schemas_read_by(handler: Callable[..., Any], depth: int = 2) -> set[type]:
    """The msgspec schemas a handler (or a module function it calls) decodes input into,
    found by reading its source: what the handler really does, not what it declares."""
    source = inspect.getsource(handler)
    names = set(_READS.findall(source))
    found = {handler.__globals__[name] for name in names if name in handler.__globals__}
    if depth:
        for called in set(_CALLS.findall(source)) - {handler.__name__}:
            function = handler.__globals__.get(called)
            if inspect.isfunction(function) and function.__module__ == handler.__module__:
                found |= schemas_read_by(function, depth - 1)
    return {schema for schema in found
            if isinstance(schema, type) and issubclass(schema, msgspec.Struct)}


def routes() -> list[tuple[str, str, str, Callable[..., Any]]]:
    """(method, path, route name, handler) of every route, HEAD aside."""
    app = create_app(Settings(secret_key="s" * 40))
    return sorted({(route.method, route.resource.canonical, route.name or "", route.handler)
                   for route in app.router.routes()
                   if route.resource is not None and route.method not in ("HEAD", "*")},
                  key=lambda item: (item[1], item[0]))
