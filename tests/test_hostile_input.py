"""Whatever a client sends gets the contract's 4xx in the error shape, never a 500.

The property test is generated from the route table: every route, with hostile values for
each body field and query parameter its handler declares, for its path id and its cursor.
The tests after it pin each defect that was once a 500 (or a wrong answer) to its fix.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import validation
from tasks import base64url
from tests.conftest import API, Account, ClientFactory, register
from tests.helpers import new_vapid_key
from tests.routing import routes, schemas_read_by

# -- the route table, and the schemas each handler reads -----------------------------------

ROUTES = [(method, path, handler) for method, path, _, handler in routes()]
_schemas_read_by = schemas_read_by


def _fields(schema: type) -> list[str]:
    return [field.encode_name for field in msgspec.structs.fields(schema)]


# -- hostile values ---------------------------------------------------------------------------

HOSTILE_TEXT = ["a\x00b", "\x00", "", " ", "²", "١", "１", "\u202e\u0000", "\ufeff", "😀" * 30,
                "x" * 5000, "-1", "0", "1e400", "9" * 30, "true", "null", "NaN",
                "'; DROP TABLE users; --", "%00", "../../etc/passwd", "<script>", "a,b",
                "2026-01-01T00:00:00+23:59"]
HOSTILE_IDS = ["1", "2", "0", "-1", "²", "١", "１", "1e3", "0x1", "99999999999999999999",
               "9223372036854775808", "9223372036854775807", "%00", "a", " 1"]
DEEP = object()  # stands for an array nested thousands deep, written out as raw JSON

json_scalars = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40),
                         st.integers(min_value=-2**80, max_value=2**80),
                         st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                         st.none())
json_values = st.one_of(
    json_scalars, st.just(DEEP),
    st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.sampled_from(HOSTILE_TEXT), inner, max_size=3),
                 max_leaves=8))
query_values = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40),
                         st.integers(min_value=-2**80, max_value=2**80).map(str))


cursor_parts = st.one_of(
    st.sampled_from(["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59",
                     "2026-01-01T00:00:00+23:59", "2026-01-01T00:00:00", "x", "", "\x00"]),
    st.sampled_from([2**70, -2**70, 2**63, -1, 0, 1.5, 1e308, True, None, [], {}]),
    st.integers(min_value=-2**70, max_value=2**70), st.text(max_size=10))
cursors = st.one_of(
    st.lists(cursor_parts, max_size=4).map(
        lambda parts: base64url.encode(json.dumps(parts).encode())),
    st.binary(max_size=40).map(base64url.encode), st.text(max_size=40))


def _encode_body(body: dict[str, Any]) -> bytes:
    """JSON with every ``DEEP`` written as 3,000 nested arrays (json.dumps would recurse)."""
    deep = "[" * 3000 + "]" * 3000
    marker = "__deep_marker__"
    text = json.dumps(body, default=lambda value: marker)
    return text.replace(f'"{marker}"', deep).encode()


# -- a world with one of everything, so hostile requests reach past "not found" --------------

@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    """Push configured too, so its routes answer rather than say they are switched off."""
    return await make_client(vapid_private_key=new_vapid_key())


@pytest.fixture
async def world(client: TestClient[Any, Any]) -> list[Account]:
    """An employer and a job seeker, and one of each thing (ids 1): a job, an application, a
    post, a follow, a conversation with a message, a comment, a job alert."""
    employer = await register(client, role="employer")
    seeker = await register(client)
    job = await client.post(f"{API}/jobs", headers=employer.headers, json={
        "title": "Engineer", "description": "Builds things", "category": "it",
        "location": "Nassau", "employment_type": "full_time", "remote": False})
    assert job.status == 201, await job.text()
    job_id = (await job.json())["id"]
    steps = [
        (f"{API}/jobs/{job_id}/applications", seeker, {"cover_letter": "hi"}),
        (f"{API}/posts", seeker, {"body": "hello"}),
        (f"{API}/users/{seeker.id}/follow", employer, None),
        (f"{API}/conversations", seeker, {"user_id": employer.id}),
        (f"{API}/conversations/1/messages", seeker, {"body": "hi"}),
        (f"{API}/posts/1/comments", employer, {"body": "nice"}),
        (f"{API}/job_alerts", seeker, {"q": "engineer", "frequency": "daily"}),
    ]
    for path, account, body in steps:
        answer = await client.post(path, headers=account.headers, json=body)
        assert answer.status in (200, 201), (path, await answer.text())
    return [employer, seeker]


def _assert_contract_answer(route: str, status: int, content_type: str, text: str) -> None:
    assert status < 500, f"{route} answered {status}: {text[:500]}"
    if status >= 400 and content_type != "text/html":  # pages (links in emails) are HTML
        assert content_type == "application/json", (route, status, text[:200])
        error = json.loads(text)["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str), text
        assert all(isinstance(k, str) and isinstance(v, str)
                   for k, v in error.get("fields", {}).items()), text


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_no_route_answers_5xx_to_hostile_input(client: TestClient[Any, Any],
                                                     world: list[Account],
                                                     data: st.DataObject) -> None:
    method, route, handler = data.draw(st.sampled_from(ROUTES), label="route")
    schemas = _schemas_read_by(handler)
    path = re.sub(r"\{(\w+)\}", lambda _: data.draw(st.sampled_from(HOSTILE_IDS), label="id"),
                  route)
    query: dict[str, str] = {}
    body: dict[str, Any] = {}
    for schema in schemas:
        for name in _fields(schema):
            if method == "GET" or "cursor" in _fields(schema):
                query[name] = data.draw(cursors if name == "cursor" else query_values,
                                        label=f"query {name}")
            elif data.draw(st.booleans(), label=f"send {name}"):
                body[name] = data.draw(json_values, label=f"body {name}")
    caller = data.draw(st.sampled_from(world), label="caller")
    answer = await client.request(method, path, params=query, data=_encode_body(body),
                                  headers={**caller.headers, "Content-Type": "application/json"})
    if answer.content_type == "text/event-stream":  # the live stream never ends: its head is
        answer.close()                               # the answer (tests/test_live.py reads it)
        assert answer.status == 200, route
        return
    _assert_contract_answer(route, answer.status, answer.content_type, await answer.text())


def test_the_route_table_declares_what_the_property_test_sends() -> None:
    """The property test finds each handler's schemas by reading its source: make sure it
    still does, so a refactor cannot silently leave routes untested."""
    bodies = {route for method, route, handler in ROUTES
              if method in ("POST", "PUT", "PATCH") and _schemas_read_by(handler)}
    queries = {route for method, route, handler in ROUTES
               if method == "GET" and _schemas_read_by(handler)}
    assert {f"{API}/auth/register", f"{API}/posts", f"{API}/me",
            f"{API}/push/subscriptions", f"{API}/notifications/preferences"} <= bodies
    assert {f"{API}/jobs", f"{API}/feed", f"{API}/users", f"{API}/notifications",
            f"{API}/conversations/{{id}}/messages"} <= queries


# -- each defect that was once a 500, pinned ---------------------------------------------------

def cursor(*values: Any) -> str:
    return base64url.encode(json.dumps(values).encode())


@pytest.mark.parametrize("path", [f"{API}/auth/register", f"{API}/auth/login", f"{API}/posts"])
async def test_deeply_nested_json_is_a_400(client: TestClient[Any, Any], user: Account,
                                           path: str) -> None:
    for depth in (100, 3000, 20000):
        raw = b'{"body": ' + b"[" * depth + b"]" * depth + b"}"
        answer = await client.post(path, data=raw, headers=user.headers)
        assert answer.status in (400, 422), await answer.text()
        assert (await answer.json())["error"]["code"] in ("bad_request", "validation_error")


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/auth/register", {"email": "a\x00@example.com", "password": "p" * 10,
                        "first_name": "A", "last_name": "B", "role": "employer"}, "email"),
    ("/auth/login", {"email": "a@example.com", "password": "pass\x00word"}, "password"),
    ("/auth/password_reset", {"email": "a\x00@example.com"}, "email"),
    ("/posts", {"body": "a\x00b"}, "body"),
    ("/me", {"skills": ["python", "c\x00"]}, "skills"),
])
async def test_nul_in_a_body_string_is_a_422_on_that_field(
        client: TestClient[Any, Any], user: Account, path: str, body: dict[str, Any],
        field: str) -> None:
    method = "PATCH" if path == "/me" else "POST"
    answer = await client.request(method, f"{API}{path}", json=body, headers=user.headers)
    assert answer.status == 422, await answer.text()
    assert (await answer.json())["error"]["fields"] == {field: "must not contain NUL characters"}


@pytest.mark.parametrize("query", ["/jobs?q=a%00b", "/jobs?category=%00", "/users?q=a%00",
                                   "/jobs?location=%00x"])
async def test_nul_in_a_query_parameter_is_a_400(client: TestClient[Any, Any], user: Account,
                                                 query: str) -> None:
    answer = await client.get(f"{API}{query}", headers=user.headers)
    assert answer.status == 400, await answer.text()
    assert (await answer.json())["error"]["code"] == "bad_request"


@pytest.mark.parametrize("raw_id", ["%C2%B2", "%D9%A1", "%EF%BC%91", "9223372036854775808"])
@pytest.mark.parametrize("route", ["/jobs/{}", "/users/{}", "/posts/{}", "/users/{}/posts"])
async def test_path_ids_are_ascii_digits_only(client: TestClient[Any, Any], user: Account,
                                              route: str, raw_id: str) -> None:
    answer = await client.get(f"{API}{route.format(raw_id)}", headers=user.headers)
    assert answer.status == 404, await answer.text()


async def test_the_largest_bigint_id_is_simply_not_found(client: TestClient[Any, Any],
                                                         user: Account) -> None:
    answer = await client.get(f"{API}/jobs/9223372036854775807", headers=user.headers)
    assert answer.status == 404


@pytest.mark.parametrize("path", ["/notifications", "/feed", "/me/applications",
                                  "/users/{me}/posts", "/conversations", "/me/saved_jobs",
                                  "/jobs"])
@pytest.mark.parametrize("values", [
    ("0001-01-01T00:00:00+23:59", 5),
    ("9999-12-31T23:59:59-23:59", 5), ("2026-01-01T00:00:00+00:00", 2**70),
    ("2026-01-01T00:00:00+00:00", True), (5, 5), ("2026-01-01T00:00:00+00:00",),
])
async def test_a_cursor_with_impossible_values_is_a_400(client: TestClient[Any, Any],
                                                        user: Account, path: str,
                                                        values: tuple[Any, ...]) -> None:
    answer = await client.get(f"{API}{path.format(me=user.id)}", headers=user.headers,
                              params={"cursor": cursor(*values)})
    assert answer.status == 400, await answer.text()
    assert (await answer.json())["error"]["fields"] == {"cursor": "is malformed"}


async def test_a_cursor_with_a_far_offset_still_pages(client: TestClient[Any, Any],
                                                      user: Account) -> None:
    """A legal timestamp in an offset PostgreSQL refuses is the same instant in UTC."""
    answer = await client.get(f"{API}/notifications", headers=user.headers,
                              params={"cursor": cursor("2026-01-01T20:00:00+18:30", 5)})
    assert answer.status == 200, await answer.text()


@pytest.mark.parametrize("rank", ["x", True, None, [1]])
async def test_a_search_cursor_with_a_bad_rank_is_a_400(client: TestClient[Any, Any],
                                                        user: Account, rank: Any) -> None:
    answer = await client.get(f"{API}/jobs", headers=user.headers, params={
        "q": "engineer", "cursor": cursor(rank, "2026-01-01T00:00:00+00:00", 5)})
    assert answer.status == 400, await answer.text()


def test_decoded_cursor_timestamps_are_utc() -> None:
    moment, row_id = validation.decode_cursor(cursor("2026-01-01T20:00:00+18:30", 7),
                                              datetime, int)
    assert moment.utcoffset().total_seconds() == 0 and moment.hour == 1 and row_id == 7


# -- messages a person can read ------------------------------------------------------------------

async def test_validation_messages_read_as_a_person_would(client: TestClient[Any, Any]) -> None:
    answer = await client.post(f"{API}/auth/register", json={
        "email": "not-an-email", "password": "short", "first_name": "  ", "last_name": 5,
        "role": "nope"})
    assert answer.status == 422
    assert (await answer.json())["error"]["fields"] == {
        "email": "must be an email address",
        "password": "must have at least 8 characters",
        "first_name": "must not be blank",
        "last_name": "must be a string",
        "role": "must be one of: job_seeker, employer",
    }


async def test_nested_and_list_field_messages_name_the_item(client: TestClient[Any, Any],
                                                            user: Account) -> None:
    answer = await client.patch(f"{API}/me", headers=user.headers, json={
        "skills": ["ok", "x" * 51], "available_for_hire": "yes"})
    assert (await answer.json())["error"]["fields"] == {
        "skills[1]": "must have at most 50 characters",
        "available_for_hire": "must be true or false",
    }
    answer = await client.put(f"{API}/notifications/preferences", headers=user.headers,
                              json={"email": {"nope": True}})
    fields = (await answer.json())["error"]["fields"]
    assert fields == {"email": "keys must be one of: follow, post_like, post_comment, "
                               "application_received, application_status, job_closed, "
                               "message"}


async def test_query_messages_read_as_a_person_would(client: TestClient[Any, Any],
                                                     user: Account) -> None:
    answer = await client.get(f"{API}/jobs?limit=500&remote=maybe&employer_id=x",
                              headers=user.headers)
    assert answer.status == 400
    assert (await answer.json())["error"]["fields"] == {
        "limit": "must be at most 100", "remote": "must be true or false",
        "employer_id": "must be an integer"}


# -- conventions -----------------------------------------------------------------------------

async def test_unknown_query_parameters_are_ignored(client: TestClient[Any, Any],
                                                    user: Account) -> None:
    for path in ("/jobs", "/feed", "/notifications", "/users", "/conversations"):
        answer = await client.get(f"{API}{path}?utm_source=mail&fbclid=x&limit=5",
                                  headers=user.headers)
        assert answer.status == 200, (path, await answer.text())


async def test_authenticated_answers_are_not_stored(client: TestClient[Any, Any],
                                                    user: Account) -> None:
    for answer in (await client.get(f"{API}/me", headers=user.headers),
                   await client.get(f"{API}/jobs/999", headers=user.headers),
                   await client.get(f"{API}/me", headers={"Authorization": "Bearer nope"})):
        assert answer.headers["Cache-Control"] == "no-store"


async def test_a_401_names_the_bearer_scheme(client: TestClient[Any, Any]) -> None:
    for headers in ({}, {"Authorization": "Bearer unknown"}, {"Authorization": "Basic eDp5"}):
        answer = await client.get(f"{API}/me", headers=headers)
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"


async def test_an_oversized_header_gets_the_error_shape(client: TestClient[Any, Any]) -> None:
    secret = "Bearer " + "s3cret" * 1500  # 9 KB
    answer = await client.get(f"{API}/me", headers={"Authorization": secret})
    assert answer.status == 400
    body = await answer.json()
    assert body["error"]["code"] == "bad_request" and "s3cret" not in json.dumps(body)
