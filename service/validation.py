"""Turn request bodies and query strings into typed schemas, reporting every bad field.

msgspec stops at the first error of a whole document; the contract wants every invalid
field, so each declared field is converted on its own against its declared (annotated) type.
The schema class stays the one declaration of the rules, also used for the OpenAPI document.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import Any, TypeVar, Union, get_args, get_origin

import msgspec

from service.errors import BadRequest, ValidationFailed

S = TypeVar("S", bound=msgspec.Struct)

_PATH_SUFFIX = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def decode_body(raw: bytes, schema: type[S]) -> S:
    """Parse a JSON object body into ``schema``: 400 if not a JSON object, 422 per field."""
    try:
        data = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError:
        raise BadRequest("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    return convert_fields(data, schema, strict=True)


def decode_query(query: Mapping[str, str], schema: type[S]) -> S:
    """Parse query parameters (strings) into ``schema``; a bad parameter is a 400."""
    try:
        return convert_fields(dict(query), schema, strict=False)
    except ValidationFailed as error:
        raise BadRequest("Invalid query parameters.", fields=error.fields) from None


def convert_fields(data: dict[str, Any], schema: type[S], *, strict: bool) -> S:
    errors: dict[str, str] = {}
    instance = _convert_struct(data, schema, strict, "", errors)
    if errors or instance is None:
        raise ValidationFailed(errors)
    check = getattr(instance, "check", None)
    if check is not None and (problems := check()):
        raise ValidationFailed(problems)
    return instance


def _convert_struct(data: dict[str, Any], schema: type[S], strict: bool, prefix: str,
                    errors: dict[str, str]) -> S | None:
    """Convert field by field, recording every problem under its dotted name."""
    values: dict[str, Any] = {}
    known = set()
    for field in msgspec.structs.fields(schema):
        known.add(field.encode_name)
        name = prefix + field.encode_name
        if field.encode_name not in data:
            if field.required:
                errors[name] = "is required"
            continue
        value, annotation = data[field.encode_name], _without_unset(field.type)
        if isinstance(value, dict) and _is_struct(annotation):
            values[field.name] = _convert_struct(value, annotation, strict, f"{name}.", errors)
            continue
        try:
            values[field.name] = msgspec.convert(value, annotation, strict=strict)
        except msgspec.ValidationError as error:
            path, reason = _describe(name, str(error))
            errors[path] = reason
    for name in data.keys() - known:
        errors[prefix + name] = "is not a known field"
    return None if errors else schema(**values)


def _is_struct(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)


def _without_unset(annotation: Any) -> Any:
    """``X | UnsetType`` → ``X``: absent fields are handled above, not by msgspec."""
    if get_origin(annotation) in (Union, types.UnionType):
        kept = [arg for arg in get_args(annotation) if arg is not msgspec.UnsetType]
        return Union[tuple(kept)] if len(kept) > 1 else kept[0]  # noqa: UP007
    return annotation


def _describe(name: str, message: str) -> tuple[str, str]:
    """msgspec's "Expected `str` of length <= 5 - at `$[0]`" → ("name[0]", "Expected …")."""
    match = _PATH_SUFFIX.search(message)
    if match:
        name += match["path"].replace("[...]", "")  # msgspec's "some key of a dict"
        message = message[: match.start()]
    return name, message.replace("`", "")
