"""/me and /users: own account, profile edits, public profiles and the people search."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp.test_utils import TestClient

from service.api.answers import public_profile
from service.api.schemas import OwnUser, PublicProfile
from sql.db import Database
from tests.conftest import API, Account, register

PUBLIC_FIELDS = {"id", "first_name", "last_name", "role", "headline", "bio", "location",
                 "skills", "available_for_hire", "followers_count", "following_count",
                 "followed_by_me", "created_at"}


async def test_me_answers_user_and_unread_counts(client: TestClient[Any, Any], user: Account):
    response = await client.get(f"{API}/me", headers=user.headers)
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"user", "unread_notifications", "unread_messages"}
    assert set(body["user"]) == PUBLIC_FIELDS | {"email", "email_verified"}
    assert body["user"]["created_at"].endswith("Z")
    assert (body["unread_notifications"], body["unread_messages"]) == (0, 0)


async def test_patch_me_changes_only_the_given_fields(client: TestClient[Any, Any],
                                                      user: Account):
    response = await client.patch(f"{API}/me", headers=user.headers, json={
        "headline": "Engineer", "skills": ["python", "sql"], "available_for_hire": True})
    assert response.status == 200
    body = await response.json()
    assert body["headline"] == "Engineer"
    assert body["skills"] == ["python", "sql"]
    assert body["available_for_hire"] is True
    assert body["first_name"] == "Ada"
    me = await (await client.get(f"{API}/me", headers=user.headers)).json()
    assert me["user"]["headline"] == "Engineer"


async def test_patch_me_validates_every_field_and_changes_nothing(
        client: TestClient[Any, Any], user: Account, db: Database):
    response = await client.patch(f"{API}/me", headers=user.headers, json={
        "headline": "x" * 201, "skills": ["ok"] * 51, "first_name": "  ", "email": "a@b.co",
        "bio": "fine"})
    assert response.status == 422
    fields = (await response.json())["error"]["fields"]
    assert set(fields) == {"headline", "skills", "first_name", "email"}
    assert await db.fetch_value("SELECT bio FROM users WHERE id = %(id)s", {"id": user.id}) == ""


async def test_public_profile_hides_the_email(client: TestClient[Any, Any], user: Account,
                                              employer: Account):
    response = await client.get(f"{API}/users/{employer.id}", headers=user.headers)
    assert response.status == 200
    body = await response.json()
    assert set(body) == PUBLIC_FIELDS
    assert body["role"] == "employer" and body["followed_by_me"] is False


def test_a_public_profile_is_an_own_accounts_public_fields():
    """``public_profile`` (the employers of a cached jobs page) takes an account's fields by
    position: an account must begin with a profile's fields, and no email comes along."""
    user = OwnUser(id=7, first_name="Ada", last_name="Lovelace", role="employer",
                   headline="Hiring", bio="Engines", location="London", skills=["maths"],
                   available_for_hire=False, followers_count=3, following_count=1,
                   followed_by_me=False, created_at=datetime(2026, 1, 2, tzinfo=UTC),
                   email="ada@example.com", email_verified=True)
    for followed in (True, False):
        profile = public_profile(user, followed)
        assert type(profile) is PublicProfile
        assert msgspec.structs.asdict(profile) == {
            name: getattr(user, name) for name in PublicProfile.__struct_fields__
        } | {"followed_by_me": followed}


async def test_unknown_or_malformed_user_id_is_404(client: TestClient[Any, Any], user: Account):
    for path in ("999999", "abc", "0", "-1", "99999999999999999999999"):
        response = await client.get(f"{API}/users/{path}", headers=user.headers)
        assert response.status == 404, path
        assert (await response.json())["error"]["code"] == "not_found"


async def test_profiles_need_a_token(client: TestClient[Any, Any], user: Account):
    assert (await client.get(f"{API}/users/{user.id}")).status == 401


async def test_search_by_name_prefix_is_paged_newest_first(client: TestClient[Any, Any]):
    ada = await register(client, first_name="Ada", last_name="Byron")
    adam = await register(client, first_name="Adam", last_name="Smith")
    bob = await register(client, first_name="Bob", last_name="Adams")
    await register(client, first_name="Carol", last_name="Jones")
    seen = []
    cursor = None
    while True:
        query = {"q": "ad", "limit": "2"} | ({"cursor": cursor} if cursor else {})
        response = await client.get(f"{API}/users", params=query, headers=ada.headers)
        assert response.status == 200
        page = await response.json()
        seen += [item["id"] for item in page["items"]]
        assert "email" not in page["items"][0]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [bob.id, adam.id, ada.id]


async def test_search_never_matches_by_email_and_treats_wildcards_literally(
        client: TestClient[Any, Any]):
    user = await register(client, email="zed@example.com", first_name="Ann", last_name="Lee")
    for q in ("zed", "%", "_"):
        response = await client.get(f"{API}/users", params={"q": q}, headers=user.headers)
        assert (await response.json())["items"] == [], q


async def test_search_filters_available_for_hire(client: TestClient[Any, Any]):
    looking = await register(client)
    await register(client)
    await client.patch(f"{API}/me", headers=looking.headers, json={"available_for_hire": True})
    response = await client.get(f"{API}/users", params={"available_for_hire": "true"},
                                headers=looking.headers)
    assert [item["id"] for item in (await response.json())["items"]] == [looking.id]


async def test_bad_paging_parameters_are_400(client: TestClient[Any, Any], user: Account):
    for params in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "!!!"},
                   {"cursor": "WyJhIl0"}):
        response = await client.get(f"{API}/users", params=params, headers=user.headers)
        assert response.status == 400, params
        assert (await response.json())["error"]["code"] == "bad_request"
