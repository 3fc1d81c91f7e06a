"""Request middleware, outermost first: request id → CORS → access log → errors → timeout."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from service.appkeys import SETTINGS
from service.errors import BY_STATUS, ApiError, BadRequest, Unavailable
from service.metrics import record_request
from service.protocol import MAX_HEADER_BYTES
from service.responses import json_answer
from sql.db import DatabaseUnavailable, QueryCanceled

log = logging.getLogger(__name__)
access_log = logging.getLogger("hireme.access")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every log record (``%(request_id)s``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    request_id_var.set(request_id)
    response = await handler(request)
    response.headers["X-Request-Id"] = request_id
    return response


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        seconds = time.perf_counter() - started
        record_request(request, status, seconds)
        access_log.info("%s %s %s %.1fms", request.method, request.rel_url.path, status,
                        seconds * 1000)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves in the contract's error shape; never a trace or SQL text.

    An answer to a request that carries credentials is marked ``no-store``: nothing private
    is kept by a shared cache or a browser.
    """
    response = await _answer_or_error(request, handler)
    if "Authorization" in request.headers:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _answer_or_error(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        _check_header_sizes(request)
        response = await handler(request)
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
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


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


@web.middleware
async def timeout_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No request hangs past REQUEST_TIMEOUT: it is cancelled and answered 503."""
    async with asyncio.timeout(request.app[SETTINGS].request_timeout):
        return await handler(request)


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    allowed = origin is not None and origin in request.app[SETTINGS].cors_origins
    preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    if allowed and preflight:
        response: web.StreamResponse = web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Request-Id",
            "Access-Control-Max-Age": "600",
        })
    else:
        response = await handler(request)
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin or ""
        response.headers["Vary"] = "Origin"
    return response


MIDDLEWARES = (request_id_middleware, cors_middleware, access_log_middleware, error_middleware,
               timeout_middleware)
