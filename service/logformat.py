"""``LOG_FORMAT=json``: one JSON object per log line, for log shippers that parse fields.

The request id comes from ``RequestIdFilter``; the access line's own fields (method, route
name, path, status, duration, user id) come as ``extra=`` attributes, so nothing is formatted
twice. Whatever a message holds, anything shaped like a bearer token, a password or an
``Authorization``/``Cookie`` value is masked before it is written: a safety net for a log call
that should not have included one.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

# The access line's structured fields, copied when a record carries them.
ACCESS_FIELDS = ("method", "route", "path", "status", "duration_ms", "user_id")
REDACTED = "[redacted]"
# A credential header's whole value (a cookie header holds several pairs) ...
_HEADER_VALUES = re.compile(
    r"(?i)(\b(?:authorization|proxy-authorization|cookie|set-cookie)\b[\"']?\s*[:=]\s*[\"']?)"
    r"[^\"'\r\n]+")
# ... a named secret's value, quoted (to its closing quote: passwords hold spaces) or bare ...
_NAMED_SECRETS = re.compile(
    r"(?i)(\b(?:password|passwd|token|access_token|secret)\b[\"']?\s*[:=]\s*)"
    r"(?:\"[^\"\r\n]*\"|'[^'\r\n]*'|[^\s\"',;&]+)")
# ... and whatever follows an authorization scheme anywhere.
_SCHEME_TOKENS = re.compile(r"(?i)(\b(?:bearer|basic)\s+)(?!\[redacted\])[^\s\"',;&]+")


def redact(text: str) -> str:
    """``text`` with every credential-looking value replaced by ``[redacted]``."""
    masked = _HEADER_VALUES.sub(lambda match: match[1] + REDACTED, text)
    masked = _NAMED_SECRETS.sub(lambda match: match[1] + REDACTED, masked)
    return _SCHEME_TOKENS.sub(lambda match: match[1] + REDACTED, masked)


class JsonFormatter(logging.Formatter):
    """time (RFC 3339, UTC), level, logger, process, request_id, message, then any access
    fields and the exception, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "request_id": getattr(record, "request_id", "-"),
            "message": redact(record.getMessage()),
        }
        for name in ACCESS_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = redact(record.exc_text)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _rfc3339(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
