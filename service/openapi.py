"""GET /api/v1/openapi.json: the contract as OpenAPI 3.1, built from the code.

Paths and methods come from the route table; request and response bodies are the same msgspec
types that validate and encode them (``msgspec.json.schema_components``); what each operation
can answer besides its success follows from what it is (authenticated, has an id in its path,
takes a body, writes) plus the statuses listed here. ``tests/test_openapi.py`` fails when a
route has no operation here, or the reverse, or when an operation's declared body or query
is not what its handler reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
import msgspec
from aiohttp import web

from service.api.job_schemas import (
    Application,
    ApplicationCreate,
    ApplicationsQuery,
    ApplicationUpdate,
    ApplicationWithApplicant,
    ApplicationWithHistory,
    ApplicationWithJob,
    Job,
    JobAlert,
    JobAlertCreate,
    JobAlertList,
    JobCreate,
    JobsQuery,
    JobUpdate,
)
from service.api.live_schemas import EventsQuery, Ticket
from service.api.report_schemas import Report, ReportCreate
from service.api.schemas import (
    AuthAnswer,
    Count,
    ErrorAnswer,
    LoginRequest,
    MeAnswer,
    Notification,
    NotificationsQuery,
    OwnUser,
    Page,
    PageQuery,
    PasswordChangeRequest,
    PasswordResetConfirmRequest,
    PasswordResetRequest,
    Preferences,
    ProfileUpdate,
    PublicProfile,
    PushEndpoint,
    PushSubscriptionIn,
    RegisterRequest,
    UnsubscribeQuery,
    UserSearchQuery,
    VapidKey,
    VerifyEmailRequest,
)
from service.api.social_schemas import (
    Comment,
    CommentCreate,
    Conversation,
    ConversationCreate,
    Message,
    MessageCreate,
    Post,
    PostCreate,
)
from service.pages.unsubscribe import HTML_HEADERS

API = "/api/v1"
REF = "#/components/schemas/{name}"
ERROR_MEANINGS = {
    400: "Malformed: the body is not a JSON object, or a query parameter or cursor is bad.",
    401: "Missing, unknown, revoked or expired token.",
    403: "Authenticated, but not allowed to do this.",
    404: "No such resource, or a private one of someone else.",
    409: "Already exists.",
    413: "The body is over the configured limit.",
    422: "A field breaks a rule; `fields` says which and why.",
    429: "Too many requests; see the Retry-After header.",
    503: "The database is unreachable, or the request ran past its time limit.",
}


@dataclass(frozen=True)
class Operation:
    summary: str
    answer: Any = None  # the success body's type; None: no body
    status: int = 200
    body: type | None = None
    query: type | None = None
    auth: bool = True
    also: tuple[int, ...] = ()  # statuses beyond those that follow from the shape
    rate_limited: bool = False  # counted against AUTH_RATE_LIMIT (no token to count by)
    html: bool = False  # a page for a browser: its answers, errors too, are HTML
    stream: bool = False  # a Server-Sent Events stream (API.md, "Live events")
    idempotent: bool = False  # a repeat answers 200 with the same body, not 201


def _page(item: type) -> Any:
    return Page[item]  # type: ignore[valid-type]


OPERATIONS: dict[str, Operation] = {
    "register": Operation("Create an account", AuthAnswer, 201, RegisterRequest, auth=False,
                          also=(409,), rate_limited=True),
    "verify_email": Operation("Verify an email address", None, 204, VerifyEmailRequest,
                              auth=False),
    "login": Operation("Log in", AuthAnswer, body=LoginRequest, auth=False, also=(401, 403),
                       rate_limited=True),
    "logout": Operation("Log out: the token stops working at once", None, 204),
    "change_password": Operation("Change the password; every other token is revoked", None,
                                 204, PasswordChangeRequest, rate_limited=True),
    "request_password_reset": Operation("Email a password-reset link", None, 202,
                                        PasswordResetRequest, auth=False, rate_limited=True),
    "confirm_password_reset": Operation("Set a new password with a reset token", None, 204,
                                        PasswordResetConfirmRequest, auth=False,
                                        rate_limited=True),
    "get_me": Operation("Your account and unread counts", MeAnswer),
    "update_me": Operation("Change your profile", OwnUser, body=ProfileUpdate),
    "search_users": Operation("Search people by name prefix", _page(PublicProfile),
                              query=UserSearchQuery),
    "get_user": Operation("A public profile", PublicProfile),
    "list_notifications": Operation("Your notifications, newest first", _page(Notification),
                                    query=NotificationsQuery),
    "notifications_unread_count": Operation("Unread notifications", Count),
    "mark_all_notifications_read": Operation("Mark every notification read", None, 204),
    "mark_notification_read": Operation("Mark one notification read", None, 204),
    "get_notification_preferences": Operation("Email and push per type", Preferences),
    "put_notification_preferences": Operation("Set email and push per type", Preferences,
                                              body=Preferences),
    "vapid_public_key": Operation("The VAPID application server key", VapidKey),
    "push_subscribe": Operation("Store a browser push subscription", PushEndpoint, 201,
                                PushSubscriptionIn, idempotent=True),
    "push_unsubscribe": Operation("Remove a push subscription", None, 204, PushEndpoint),
    "email_unsubscribe_page": Operation("The page an unsubscribe link opens",
                                        query=UnsubscribeQuery, auth=False, html=True),
    "email_unsubscribe": Operation("RFC 8058 one-click unsubscribe", None, 204,
                                   query=UnsubscribeQuery, auth=False),
    "create_job": Operation("Post a job (employers)", Job, 201, JobCreate, also=(403,)),
    "list_jobs": Operation("Jobs, filtered and searched, newest first", _page(Job),
                           query=JobsQuery),
    "get_job": Operation("A job", Job),
    "update_job": Operation("Change, close or reopen your job", Job, body=JobUpdate,
                            also=(403,)),
    "delete_job": Operation("Delete a job (owner or admin)", None, 204, also=(403,)),
    "save_job": Operation("Save a job", None, 201, idempotent=True),
    "unsave_job": Operation("Unsave a job", None, 204),
    "list_saved_jobs": Operation("Your saved jobs", _page(Job), query=PageQuery),
    "apply": Operation("Apply to a job (job seekers)", Application, 201, ApplicationCreate,
                       also=(403, 409)),
    "list_job_applications": Operation("Applications to your job",
                                       _page(ApplicationWithApplicant),
                                       query=ApplicationsQuery),
    "list_my_applications": Operation("Your applications", _page(ApplicationWithJob),
                                      query=PageQuery),
    "get_application": Operation("An application with its history", ApplicationWithHistory),
    "change_application_status": Operation("Move an application along (job owner)",
                                           Application, body=ApplicationUpdate, also=(403,)),
    "withdraw_application": Operation("Withdraw your application", None, 204),
    "create_conversation": Operation("Start (or find) a conversation", Conversation, 201,
                                     ConversationCreate, also=(403, 404), idempotent=True),
    "list_conversations": Operation("Your conversations, most recent first",
                                    _page(Conversation), query=PageQuery),
    "list_messages": Operation("Messages of a conversation, newest first", _page(Message),
                               query=PageQuery),
    "send_message": Operation("Send a message", Message, 201, MessageCreate, also=(403,)),
    "read_conversation": Operation("Mark a conversation read", None, 204),
    "messages_unread_count": Operation("Unread messages", Count),
    "create_job_alert": Operation("Create a job alert", JobAlert, 201, JobAlertCreate),
    "list_job_alerts": Operation("Your job alerts", JobAlertList),
    "delete_job_alert": Operation("Delete a job alert", None, 204),
    "follow_user": Operation("Follow someone", PublicProfile, 201, also=(403,), idempotent=True),
    "unfollow_user": Operation("Unfollow someone", None, 204),
    "list_followers": Operation("Someone's followers, newest first", _page(PublicProfile),
                                query=PageQuery),
    "list_following": Operation("Whom someone follows", _page(PublicProfile), query=PageQuery),
    "block_user": Operation("Block someone", PublicProfile, 201, idempotent=True),
    "unblock_user": Operation("Unblock someone", None, 204),
    "list_blocks": Operation("Whom you block", _page(PublicProfile), query=PageQuery),
    "create_post": Operation("Post", Post, 201, PostCreate),
    "get_post": Operation("A post", Post),
    "delete_post": Operation("Delete a post (author or admin)", None, 204, also=(403,)),
    "list_user_posts": Operation("Someone's posts, newest first", _page(Post),
                                 query=PageQuery),
    "like_post": Operation("Like a post", Post, 201, also=(403,), idempotent=True),
    "unlike_post": Operation("Unlike a post", None, 204),
    "list_comments": Operation("Comments of a post, oldest first", _page(Comment),
                               query=PageQuery),
    "add_comment": Operation("Comment on a post", Comment, 201, CommentCreate, also=(403,)),
    "delete_comment": Operation("Delete a comment", None, 204, also=(403,)),
    "get_feed": Operation("Your home feed, newest first", _page(Post), query=PageQuery),
    "create_events_ticket": Operation("A single-use ticket (60 s) to open the live stream "
                                      "with, for EventSource", Ticket, 201),
    "stream_events": Operation("Your live events as Server-Sent Events: notification, "
                               "message, unread; resume with Last-Event-ID; the bearer token "
                               "or ?ticket= authenticates", query=EventsQuery, stream=True),
    "create_report": Operation("Report a user, post, comment or job to the admins", Report,
                               201, ReportCreate, also=(404,), idempotent=True),
}


def error_statuses(method: str, path: str, operation: Operation) -> list[int]:
    """Every status besides success this operation can answer."""
    statuses = {503, *operation.also}
    if operation.auth:
        statuses.add(401)
    if "{" in path:
        statuses.add(404)
    if operation.body is not None:
        statuses |= {400, 413, 422}
    if operation.query is not None:
        statuses.add(400)
    if operation.rate_limited or (operation.auth and method not in ("GET", "HEAD")):
        statuses.add(429)
    return sorted(statuses)


def build_document(app: web.Application) -> dict[str, Any]:
    types: list[Any] = [ErrorAnswer]
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if not path.startswith(API) or route.method == "HEAD" or route.name in ABOUT_THE_API:
            continue
        operation = OPERATIONS[route.name or ""]
        types.extend(t for t in (operation.answer, operation.body, operation.query) if t)
        paths.setdefault(path[len(API):], {})[route.method.lower()] = (route.name, operation)
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    refs = dict(zip(map(id, types), schemas, strict=True))
    document_paths = {
        path: {method: _operation(name, method.upper(), path, op, refs, components)
               for method, (name, op) in methods.items()}
        for path, methods in sorted(paths.items())}
    return {
        "openapi": "3.1.0",
        "info": {"title": "hireme", "version": "1",
                 "description": "The hireme HTTP API. Errors share one shape; lists are "
                                "keyset-paged with `limit` and `cursor`."},
        "servers": [{"url": API}],
        "paths": document_paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A token from register or login"}},
        },
    }


def _operation(name: str, method: str, path: str, op: Operation, refs: dict[int, Any],
               components: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {str(op.status): _success(op, refs)}
    if op.idempotent:
        responses["200"] = {**_success(op, refs), "description": "Already done before"}
    error = {"content": {"text/html": {}} if op.html else {
        "application/json": {"schema": refs[id(ErrorAnswer)]}}}
    for status in error_statuses(method, path, op):
        responses[str(status)] = {"description": ERROR_MEANINGS[status], **error}
    operation: dict[str, Any] = {"operationId": name, "summary": op.summary,
                                 "responses": responses}
    if op.auth:
        operation["security"] = [{"bearer": []}]
    parameters = _parameters(path, op, refs, components)
    if parameters:
        operation["parameters"] = parameters
    if op.body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[id(op.body)]}}}
    return operation


def _success(op: Operation, refs: dict[int, Any]) -> dict[str, Any]:
    if op.html:
        return {"description": "An HTML page", "content": {"text/html": {}}}
    if op.stream:
        return {"description": "A stream of events", "content": {"text/event-stream": {
            "schema": {"type": "string"}}}}
    if op.answer is None:
        return {"description": "Done"}
    return {"description": "OK", "content": {"application/json": {
        "schema": refs[id(op.answer)]}}}


def _parameters(path: str, op: Operation, refs: dict[int, Any],
                components: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if "{id}" in path:
        found.append({"name": "id", "in": "path", "required": True,
                      "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"}})
    if op.query is not None:
        schema = components[refs[id(op.query)]["$ref"].rsplit("/", 1)[1]]
        required = set(schema.get("required", ()))
        found.extend({"name": field, "in": "query", "required": field in required,
                      "schema": field_schema}
                     for field, field_schema in schema["properties"].items())
    return found


@dataclass
class Document:
    """The encoded document, built on first request (the route table is final by then)."""

    encoded: bytes | None = None
    built: dict[str, Any] | None = None

    def of(self, app: web.Application) -> dict[str, Any]:
        if self.built is None:
            self.built = build_document(app)
        return self.built


DOCUMENT = web.AppKey("openapi_document", Document)
# Routes that describe the API rather than belong to it.
ABOUT_THE_API = frozenset({"openapi", "api_docs"})


async def openapi_document(request: web.Request) -> web.Response:
    document = request.app[DOCUMENT]
    if document.encoded is None:
        document.encoded = msgspec.json.encode(document.of(request.app))
    return web.Response(body=document.encoded, content_type="application/json")


async def api_docs(request: web.Request) -> web.Response:
    """The document as a page people read: every operation, its parameters and answers.
    Rendered here, so it needs no script and nothing from a CDN."""
    response = aiohttp_jinja2.render_template(
        "api_docs.html", request, {"document": request.app[DOCUMENT].of(request.app)})
    response.headers.update(HTML_HEADERS)
    return response
