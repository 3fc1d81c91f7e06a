"""The contract's error shape, one exception per status code.

Handlers raise these; the error middleware turns them (and aiohttp's own HTTP errors,
database outages and unhandled exceptions) into ``{"error": {"code", "message", "fields"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    status = 500
    code = "internal_error"
    message = "Something went wrong on our side."

    def __init__(self, message: str | None = None, *, fields: Mapping[str, str] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.fields = dict(fields) if fields else None
        self.headers = dict(headers) if headers else {}

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


class BadRequest(ApiError):
    status, code, message = 400, "bad_request", "The request is malformed."


class Unauthorized(ApiError):
    status, code, message = 401, "unauthorized", "A valid bearer token is required."

    def __init__(self, message: str | None = None) -> None:
        # RFC 6750: a 401 names the scheme the client should authenticate with.
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status, code, message = 403, "forbidden", "You are not allowed to do this."


class NotFound(ApiError):
    status, code, message = 404, "not_found", "No such resource."


class MethodNotAllowed(ApiError):
    status, code, message = 405, "method_not_allowed", "Method not allowed on this path."


class Conflict(ApiError):
    status, code, message = 409, "conflict", "This already exists."


class PayloadTooLarge(ApiError):
    status, code, message = 413, "payload_too_large", "The request body is too large."


class ValidationFailed(ApiError):
    status, code, message = 422, "validation_error", "Some fields are invalid."

    def __init__(self, fields: Mapping[str, str], message: str | None = None) -> None:
        super().__init__(message, fields=fields)


class RateLimited(ApiError):
    status, code, message = 429, "rate_limited", "Too many requests; try again later."

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})


class Unavailable(ApiError):
    status, code, message = 503, "unavailable", "The service is temporarily unavailable."


BY_STATUS: dict[int, type[ApiError]] = {
    cls.status: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict,
                PayloadTooLarge, Unavailable)
}
