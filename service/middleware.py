"""The one request middleware: request id, CORS, errors, timeout, access log and metrics."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from service.accesslog import AccessLog
from service.appkeys import SETTINGS
from service.authn import PRINCIPAL_KEY
from service.errors import BY_STATUS, ApiError, BadRequest, Unavailable
from service.freshness import note_own_write
from service.metrics import UNMATCHED, record_request
from service.protocol import MAX_HEADER_BYTES
from service.responses import json_answer
from sql.db import DatabaseUnavailable, QueryCanceled

log = logging.getLogger(__name__)
ACCESS_LOG = web.AppKey("access_log", AccessLog)

# The request's time limit: a handler that legitimately runs on (the live stream, once it is
# open) lifts it with ``request[DEADLINE].reschedule(None)``.
DEADLINE = web.RequestKey("deadline", asyncio.Timeout)
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every log record (``%(request_id)s``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Everything every request needs, in one layer (each layer costs a call per request):
    its id, CORS, the contract's error shape, the timeout, ``no-store`` for answers to
    credentialed requests, the writer's read-your-writes marker (service/freshness.py), then
    one access-log line and the request metrics."""
    started = time.perf_counter()
    request_id = _request_id(request)
    request_id_var.set(request_id)
    settings = request.app[SETTINGS]
    origin = request.headers.get("Origin")
    allowed_origin = origin if origin is not None and origin in settings.cors_origins else None
    status = 500  # what the log says if the handler is cancelled (client gone)
    try:
        if allowed_origin and _is_preflight(request):
            response: web.StreamResponse = _preflight_answer()
        else:
            response = await _answer_or_error(request, handler, settings.request_timeout)
            principal = request.get(PRINCIPAL_KEY)
            await note_own_write(request, principal.user_id if principal else None)
        status = response.status
        _add_headers(request, response, request_id, allowed_origin)
        return response
    finally:
        seconds = time.perf_counter() - started
        record_request(request, status, seconds)
        _log_access(request, request_id, status, seconds)


def _log_access(request: web.Request, request_id: str, status: int, seconds: float) -> None:
    """One line per request: the path, never the query string (it may hold a token); the
    route's name, never an id."""
    principal = request.get(PRINCIPAL_KEY)
    request.app[ACCESS_LOG].write(
        request_id, request.method, request.match_info.route.name or UNMATCHED,
        request.rel_url.path, status, seconds, principal.user_id if principal else None)


def _request_id(request: web.Request) -> str:
    incoming = request.headers.get("X-Request-Id", "")
    return incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _add_headers(request: web.Request, response: web.StreamResponse, request_id: str,
                 allowed_origin: str | None) -> None:
    headers = response.headers
    headers["X-Request-Id"] = request_id
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if "Authorization" in request.headers:  # nothing private kept by a cache or a browser
        headers.setdefault("Cache-Control", "no-store")
    if allowed_origin:
        headers["Access-Control-Allow-Origin"] = allowed_origin
        headers["Vary"] = "Origin"


def _is_preflight(request: web.Request) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def _preflight_answer() -> web.Response:
    return web.Response(status=204, headers={
        "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Request-Id",
        "Access-Control-Max-Age": "600",
    })


async def _answer_or_error(request: web.Request, handler: Handler,
                           limit_seconds: float) -> web.StreamResponse:
    """The handler's answer, or its failure in the contract's error shape; never a trace or
    SQL text. No request runs past ``limit_seconds``: it is cancelled and answered 503."""
    try:
        _check_header_sizes(request)
        async with asyncio.timeout(limit_seconds) as deadline:
            request[DEADLINE] = deadline
            response = await handler(request)
        if deadline.expired():  # aiopg's wait_for swallowed the cancel (CPython gh-86296)
            raise TimeoutError
        return response
    except ApiError as error:
        return _error_answer(error)
    except ConnectionResetError:
        # The client went away mid-body: nobody will read an answer, and it is no fault here.
        log.info("client disconnected during %s %s", request.method, request.rel_url.path)
        return _error_answer(BadRequest("The request was cut short."))
    except web.HTTPException as http_error:
        if http_error.status < 400:
            raise
        return _error_answer(_from_http(http_error))
    except (DatabaseUnavailable, QueryCanceled, TimeoutError) as error:
        log.warning("answering 503: %s", error)
        return _error_answer(Unavailable())
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.rel_url.path)
        return _error_answer(ApiError())


def _check_header_sizes(request: web.Request) -> None:
    """Headers the parser let through (``service.protocol``) but no client legitimately
    sends; the value is never echoed or logged."""
    for name, value in request.headers.items():
        if len(value) > MAX_HEADER_BYTES:
            raise BadRequest(f"The {name[:40]} header is too large.")


def _from_http(http_error: web.HTTPException) -> ApiError:
    error_class = BY_STATUS.get(http_error.status, ApiError)
    error = error_class()
    if error_class is ApiError:  # a status the contract does not name: keep it, plainly
        error.status, error.code = http_error.status, "http_error"
        error.message = http_error.reason
    return error


def _error_answer(error: ApiError) -> web.Response:
    response = json_answer(error.body(), status=error.status, headers=error.headers)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


MIDDLEWARES = (request_middleware,)
