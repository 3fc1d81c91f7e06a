"""What aiohttp's HTTP layer does before any middleware runs: header limits and its log lines.

aiohttp answers a request its parser refuses (a header line past ``max_field_size``) with a
plain-text 400 of its own and logs the parser's message, which quotes the first bytes of the
offending header: a bearer token would land in the log. So the parser's limits sit well above
the application's (``MAX_HEADER_BYTES``, enforced by the error middleware in the contract's
error shape), and the parser's log lines pass through ``QuietProtocolErrors``, which makes
each one a single line naming the error class and never the value. nginx, in front, refuses
oversized headers with its own limit before either.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

# One header value the application accepts (aiohttp's own default limit).
MAX_HEADER_BYTES = 8190
# Where aiohttp's parser stops reading: past the application's limit, so that a header
# between the two is answered in the error shape by the middleware.
PARSER_LIMIT_BYTES = 4 * MAX_HEADER_BYTES

protocol_log = logging.getLogger("hireme.http")


class QuietProtocolErrors(logging.Filter):
    """A malformed request or a client gone mid-request: one INFO line, no traceback, no
    header or body bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError | ConnectionError):
            record.msg = "refused a request the HTTP parser could not read: %s %s"
            record.args = (type(error).__name__, getattr(error, "code", ""))
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


protocol_log.addFilter(QuietProtocolErrors())


def handler_args() -> dict[str, Any]:
    """Keyword arguments for aiohttp's per-connection request handler."""
    return {"max_line_size": PARSER_LIMIT_BYTES, "max_field_size": PARSER_LIMIT_BYTES,
            "logger": protocol_log}
