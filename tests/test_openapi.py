"""The served OpenAPI document: complete, valid, and true to what the handlers do."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource

from service.openapi import ABOUT_THE_API, OPERATIONS
from tests.conftest import API, Account, register
from tests.routing import routes, schemas_read_by

API_ROUTES = [(method, path, name, handler) for method, path, name, handler in routes()
              if path.startswith(API) and name not in ABOUT_THE_API]


@pytest.fixture
async def document(client: TestClient[Any, Any]) -> dict[str, Any]:
    answer = await client.get(f"{API}/openapi.json")
    assert answer.status == 200
    body: dict[str, Any] = await answer.json()
    return body


def test_every_route_has_an_operation_and_every_operation_a_route() -> None:
    assert {name for _, _, name, _ in API_ROUTES} == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "name", "handler"), API_ROUTES,
                         ids=[name for _, _, name, _ in API_ROUTES])
def test_each_operation_declares_what_its_handler_reads(method: str, path: str, name: str,
                                                        handler: Any) -> None:
    operation = OPERATIONS[name]
    declared = {schema for schema in (operation.body, operation.query) if schema}
    assert declared == schemas_read_by(handler)


async def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)
    assert document["servers"] == [{"url": API}]


async def test_every_operation_lists_its_error_answers(document: dict[str, Any]) -> None:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            statuses = set(operation["responses"])
            assert "503" in statuses, (method, path)
            if operation.get("security"):
                assert "401" in statuses, (method, path)
            if "{id}" in path:
                assert "404" in statuses, (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= statuses, (method, path)
            if operation.get("security") and method != "get":
                assert "429" in statuses, (method, path)


def _validator(document: dict[str, Any], method: str, path: str,
               status: int) -> Draft202012Validator:
    schema = document["paths"][path][method]["responses"][str(status)]["content"][
        "application/json"]["schema"]
    registry: Registry[Any] = Registry().with_resource(
        "urn:doc", Resource.from_contents({**document, "$schema":
                                           "https://json-schema.org/draft/2020-12/schema"}))
    ref = schema["$ref"].replace("#/", "urn:doc#/")
    return Draft202012Validator({"$ref": ref}, registry=registry)


async def test_real_answers_match_their_schemas(client: TestClient[Any, Any],
                                                document: dict[str, Any],
                                                employer: Account) -> None:
    seeker = await register(client)
    job = await client.post(f"{API}/jobs", headers=employer.headers, json={
        "title": "Engineer", "description": "Builds", "category": "it", "location": "Nassau",
        "employment_type": "full_time", "remote": True, "salary_min": 1, "salary_max": 2})
    job_id = (await job.json())["id"]
    await client.post(f"{API}/jobs/{job_id}/applications", headers=seeker.headers,
                      json={"cover_letter": "hi"})
    await client.post(f"{API}/posts", headers=seeker.headers, json={"body": "hello"})
    calls = [
        ("get", "/me", seeker, 200), ("get", "/jobs", seeker, 200),
        ("get", f"/jobs/{job_id}", seeker, 200), ("get", "/feed", seeker, 200),
        ("get", "/notifications", employer, 200), ("get", "/me/applications", seeker, 200),
        ("get", f"/jobs/{job_id}/applications", employer, 200),
        ("get", "/users", seeker, 200), ("get", "/jobs/999", seeker, 404),
        ("post", "/posts", seeker, 422),
    ]
    for method, path, account, status in calls:
        answer = await client.request(method.upper(), f"{API}{path}", headers=account.headers,
                                      json={} if method == "post" else None)
        assert answer.status == status, (path, await answer.text())
        template = path.replace(str(job_id), "{id}").replace("/999", "/{id}")
        errors = list(_validator(document, method, template, status).iter_errors(
            await answer.json()))
        assert errors == [], (path, errors[:1])


async def test_the_docs_page_lists_every_operation(client: TestClient[Any, Any]) -> None:
    answer = await client.get(f"{API}/docs")
    assert answer.status == 200 and answer.content_type == "text/html"
    assert "script" not in answer.headers["Content-Security-Policy"].replace(
        "default-src 'none'", "")
    page = await answer.text()
    for name in OPERATIONS:
        assert f'id="{name}"' in page
