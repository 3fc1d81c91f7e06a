"""The one decoding layer: request bodies, query strings, path ids and cursors.

Everything a client sends is turned into typed values here, or into the contract's 400 / 422
/ 404, so nothing malformed reaches a query: no NUL byte (PostgreSQL refuses it), no integer
past ``bigint``, no nesting deeper than a schema can hold, no timestamp PostgreSQL cannot
store. msgspec stops at the first error of a whole document; the contract wants every invalid
field, so each declared field is converted on its own against its declared (annotated) type.
The schema class stays the one declaration of the rules, also used for the OpenAPI document.
"""

from __future__ import annotations

import binascii
import functools
import json
import math
import re
import types
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple, TypeVar, Union, get_args, get_origin

import msgspec
from aiohttp import web

from service.api.schemas import BIGINT_MAX, NOT_BLANK
from service.errors import BadRequest, NotFound, ValidationFailed
from tasks import base64url

S = TypeVar("S", bound=msgspec.Struct)


# Deeper than any schema goes (an object in an object in a list); msgspec's own limit is
# Python's recursion limit, which a 2 KB body of brackets reaches.
MAX_NESTING = 8
_ASCII_ID = re.compile(r"[0-9]{1,19}")
_PATH_SUFFIX = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_KEY_SUFFIX = re.compile(r" - at `key` in `\$(?P<path>[^`]*)`$")
NUL_REASON = "must not contain NUL characters"
NESTING_REASON = "is nested too deeply"


# -- bodies and query strings ---------------------------------------------------------------

def decode_body(raw: bytes, schema: type[S]) -> S:
    """Parse a JSON object body into ``schema``: 400 if not a JSON object, 422 per field."""
    try:
        data = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError:
        raise BadRequest("The body is not valid JSON.") from None
    except RecursionError:
        raise BadRequest("The body is nested too deeply.") from None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    return convert_fields(data, schema, strict=True)


def decode_query(query: Mapping[str, str], schema: type[S]) -> S:
    """Parse query parameters (strings) into ``schema``; a bad parameter is a 400.

    Parameters the schema does not declare are ignored: links and clients add their own
    (``utm_source``), and a list must not break because of them.
    """
    known = {field.encode_name for field in _fields_of(schema)}
    try:
        return convert_fields({k: v for k, v in query.items() if k in known}, schema,
                              strict=False)
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
    fields = _fields_of(schema)
    for field in fields:
        name = prefix + field.encode_name
        if field.encode_name not in data:
            if field.required:
                errors[name] = "is required"
            continue
        value, annotation = data[field.encode_name], field.annotation
        if problem := _unstorable(value):
            errors[name] = problem
        elif isinstance(value, dict) and _is_struct(annotation):
            values[field.name] = _convert_struct(value, annotation, strict, f"{name}.", errors)
        else:
            try:
                values[field.name] = msgspec.convert(value, annotation, strict=strict)
            except msgspec.ValidationError as error:
                path, reason = _describe(name, str(error), annotation)
                errors[path] = reason
    for name in data.keys() - {field.encode_name for field in fields}:
        errors[prefix + name] = "is not a known field"
    return None if errors else schema(**values)


class _Field(NamedTuple):
    name: str
    encode_name: str
    required: bool
    annotation: Any  # the declared type without UnsetType


@functools.cache
def _fields_of(schema: type[msgspec.Struct]) -> tuple[_Field, ...]:
    """A schema's fields as the converter reads them, worked out once per schema:
    ``msgspec.structs.fields`` evaluates the string annotations again on every call, which
    cost a few percent of every request that has a body or a query string."""
    return tuple(_Field(field.name, field.encode_name, field.required,
                        _without_unset(field.type))
                 for field in msgspec.structs.fields(schema))


def _unstorable(value: Any) -> str | None:
    """Why a decoded JSON value cannot be stored whatever its field's type, if it cannot:
    a NUL character (PostgreSQL text refuses it) or nesting past ``MAX_NESTING``."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return NUL_REASON
        elif isinstance(item, list | dict):
            if depth >= MAX_NESTING:
                return NESTING_REASON
            if isinstance(item, dict):
                pending.extend((key, depth + 1) for key in item)
                item = item.values()
            pending.extend((child, depth + 1) for child in item)
    return None


def _is_struct(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)


def _without_unset(annotation: Any) -> Any:
    """``X | UnsetType`` → ``X``: absent fields are handled above, not by msgspec."""
    if get_origin(annotation) in (Union, types.UnionType):
        kept = [arg for arg in get_args(annotation) if arg is not msgspec.UnsetType]
        return Union[tuple(kept)] if len(kept) > 1 else kept[0]  # noqa: UP007
    return annotation


# -- error messages a person can read ---------------------------------------------------------

_KINDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
          "array": "a list", "object": "an object", "null": "null"}
_LENGTH_UNITS = {"str": "characters", "array": "items", "object": "entries"}
_COMPARISONS = {">=": "at least", "<=": "at most", ">": "greater than", "<": "less than"}
PATTERN_REASONS = {NOT_BLANK: "must not be blank"}

_WRONG_TYPE = re.compile(r"^Expected `(?P<kinds>[^`]+)`, got `[^`]+`$")
_LENGTH = re.compile(r"^Expected `(?P<kind>\w+)` of length (?P<op>[<>]=?) (?P<n>\d+)$")
_BOUND = re.compile(r"^Expected `(?:int|float)` (?P<op>[<>]=?) (?P<n>[-\d.e+]+)$")
_PATTERN = re.compile(r"^Expected `str` matching regex ")
_ENUM = re.compile(r"^Invalid enum value ")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def _describe(name: str, message: str, annotation: Any) -> tuple[str, str]:
    """msgspec's "Expected `str` of length <= 5 - at `$[0]`" → ("name[0]", "must be at most 5
    characters"): the field's path, and the reason as a person would say it."""
    is_key = False
    if match := _KEY_SUFFIX.search(message):
        name, message, is_key = name + match["path"], message[: match.start()], True
    elif match := _PATH_SUFFIX.search(message):
        name += match["path"].replace("[...]", "")  # msgspec's "some key of a dict"
        message = message[: match.start()]
    if match := _MISSING.match(message):
        return f"{name}.{match['field']}", "is required"
    return name, _reason(message, annotation, is_key)


def _reason(message: str, annotation: Any, is_key: bool) -> str:
    if match := _WRONG_TYPE.match(message):
        # "or null" helps nobody: an absent optional field is simply left out.
        kinds = [_KINDS.get(kind, kind) for kind in match["kinds"].split(" | ") if kind != "null"]
        return "must be " + " or ".join(kinds)
    if match := _LENGTH.match(message):
        count, unit = int(match["n"]), _LENGTH_UNITS.get(match["kind"], "items")
        if match["op"] == ">=" and count == 1:
            return "must not be empty"
        return f"must have {_COMPARISONS[match['op']]} {count} {unit}"
    if match := _BOUND.match(message):
        return f"must be {_COMPARISONS[match['op']]} {match['n']}"
    if _PATTERN.match(message):
        return _pattern_reason(annotation)
    if _ENUM.match(message):
        choices = ", ".join(str(value) for value in _literal_values(annotation))
        return f"{'keys ' if is_key else ''}must be one of: {choices}"
    if message == "Integer value out of range":
        return "is out of range"
    return message.replace("`", "")


def _pattern_reason(annotation: Any) -> str:
    """The field's own pattern (each string type has at most one), said as a person would."""
    for meta in _metadata(annotation):
        if meta.pattern in PATTERN_REASONS:
            return PATTERN_REASONS[meta.pattern]
        if meta.pattern and meta.description:
            return f"must be {meta.description}"
    return "is not in the expected format"


def _metadata(annotation: Any) -> list[msgspec.Meta]:
    """Every ``Meta`` anywhere inside an annotation (``Annotated``, unions, lists, dicts)."""
    found: list[msgspec.Meta] = []
    if get_origin(annotation) is Annotated:
        found.extend(arg for arg in annotation.__metadata__ if isinstance(arg, msgspec.Meta))
    for arg in get_args(annotation):
        if get_origin(annotation) is not Literal:
            found.extend(_metadata(arg))
    return found


def _literal_values(annotation: Any) -> list[Any]:
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return [value for arg in get_args(annotation) for value in _literal_values(arg)]


# -- path ids and cursors -------------------------------------------------------------------

def path_id(request: web.Request, name: str = "id") -> int:
    """A positive bigint id from the path (ASCII digits only); anything else is not found."""
    raw = request.match_info[name]
    if not _ASCII_ID.fullmatch(raw) or not 1 <= int(raw) <= BIGINT_MAX:
        raise NotFound()
    return int(raw)


def decode_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """Decode a cursor whose values have the given types (int, float, str or datetime).

    Cursors are not secret (they hold only sort keys the client already saw), so a tampered
    one is simply checked like any other input: a 400 unless every value can be queried.
    """
    try:
        values = json.loads(base64url.decode(cursor))
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("wrong shape")
        return tuple(_typed(value, kind) for value, kind in zip(values, kinds, strict=True))
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error):
        raise BadRequest("The cursor is malformed.", fields={"cursor": "is malformed"}) from None


def _typed(value: Any, kind: type) -> Any:
    if kind is datetime:
        if not isinstance(value, str):
            raise TypeError("not a timestamp")
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        # In UTC, so PostgreSQL never meets an offset it does not accept (Python allows
        # ±23:59); a year-1 or year-9999 value that leaves the calendar is OverflowError.
        return parsed.astimezone(UTC)
    if isinstance(value, bool):
        raise TypeError("not a number")
    if kind is int:
        if not isinstance(value, int) or not -BIGINT_MAX - 1 <= value <= BIGINT_MAX:
            raise ValueError("not a bigint")
        return value
    if kind is float:
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError("not a finite number")
        return float(value)
    if kind is str:
        if not isinstance(value, str) or "\x00" in value:
            raise ValueError("not a string")
        return value
    raise TypeError(f"no cursor type {kind!r}")
