"""Auth: register, verify email, login, logout, password change and reset."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from cache.keys import TOKEN_TTL_SECONDS
from service.appkeys import STORES
from service.config import RateLimit
from service.passwords import needs_rehash
from service.tokens import hash_token
from sql.db import Database
from tests.conftest import API, PASSWORD, Account, ClientFactory, register
from tests.helpers import password_hash_of, store_weak_password_hash

REGISTER = f"{API}/auth/register"
LOGIN = f"{API}/auth/login"


def registration(**changes: Any) -> dict[str, Any]:
    body = {"email": "new@example.com", "password": PASSWORD, "first_name": "Alan",
            "last_name": "Turing", "role": "job_seeker"}
    body.update(changes)
    return body


async def outbox_payloads(db: Database, email_type: str) -> list[dict[str, Any]]:
    rows = await db.fetch_all(
        "SELECT payload FROM outbox WHERE kind = 'email' AND payload->>'email_type' = %(t)s "
        "ORDER BY id", {"t": email_type})
    return [row["payload"] for row in rows]


async def test_register_answers_own_user_and_a_working_token(client: TestClient[Any, Any]):
    response = await client.post(REGISTER, json=registration(email="Mixed@Example.com"))
    assert response.status == 201
    body = await response.json()
    assert body["user"]["email"] == "Mixed@Example.com"
    assert body["user"]["email_verified"] is False
    assert body["user"]["role"] == "job_seeker"
    assert "password_hash" not in body["user"]
    assert len(body["token"]) >= 43
    me = await client.get(f"{API}/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status == 200
    assert (await me.json())["user"]["id"] == body["user"]["id"]


async def test_register_queues_the_welcome_email_in_the_same_transaction(
        client: TestClient[Any, Any], db: Database):
    user = await register(client)
    [payload] = await outbox_payloads(db, "welcome")
    assert payload["user_id"] == user.id
    assert payload["context"]["verify_token"]


async def test_register_duplicate_email_is_409_case_insensitively(client: TestClient[Any, Any]):
    assert (await client.post(REGISTER, json=registration())).status == 201
    response = await client.post(REGISTER, json=registration(email="NEW@example.COM"))
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "conflict"


async def test_register_reports_every_invalid_field(client: TestClient[Any, Any]):
    response = await client.post(REGISTER, json={
        "email": "not-an-email", "password": "short", "first_name": "", "role": "admin",
        "extra": 1})
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"email", "password", "first_name", "last_name", "role",
                                    "extra"}
    assert error["fields"]["last_name"] == "is required"


async def test_register_rejects_too_long_password_and_wrong_types(client: TestClient[Any, Any]):
    response = await client.post(REGISTER, json=registration(password="x" * 129, first_name=7))
    assert response.status == 422
    assert set((await response.json())["error"]["fields"]) == {"password", "first_name"}


async def test_body_that_is_not_a_json_object_is_400(client: TestClient[Any, Any], db: Database):
    for raw in (b"{", b"[1, 2]", b"", b"\xff"):
        response = await client.post(REGISTER, data=raw,
                                     headers={"Content-Type": "application/json"})
        assert response.status == 400, raw
        assert (await response.json())["error"]["code"] == "bad_request"
    assert await db.fetch_value("SELECT count(*) FROM users") == 0


async def test_login_with_right_and_wrong_password(client: TestClient[Any, Any], user: Account):
    good = await client.post(LOGIN, json={"email": user.email.upper(), "password": PASSWORD})
    assert good.status == 200
    body = await good.json()
    assert body["user"]["id"] == user.id and body["token"] != user.token
    wrong = await client.post(LOGIN, json={"email": user.email, "password": "wrong password"})
    unknown = await client.post(LOGIN, json={"email": "nobody@example.com",
                                             "password": "wrong password"})
    assert wrong.status == unknown.status == 401
    assert await wrong.json() == await unknown.json()


async def test_login_upgrades_a_hash_made_with_weaker_parameters(
        client: TestClient[Any, Any], user: Account, db: Database):
    weak = await store_weak_password_hash(db, user.id, PASSWORD)
    assert needs_rehash(weak)
    login = await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status == 200
    upgraded = await password_hash_of(db, user.id)
    assert upgraded != weak and not needs_rehash(upgraded)
    again = await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
    assert again.status == 200


async def test_logout_revokes_the_token_at_once(client: TestClient[Any, Any], user: Account):
    assert (await client.get(f"{API}/me", headers=user.headers)).status == 200  # now cached
    assert (await client.post(f"{API}/auth/logout", headers=user.headers)).status == 204
    response = await client.get(f"{API}/me", headers=user.headers)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"


async def test_logout_in_one_process_revokes_in_another(make_client: ClientFactory):
    first, second = await make_client(), await make_client()
    user = await register(first)
    assert (await second.get(f"{API}/me", headers=user.headers)).status == 200
    assert (await first.post(f"{API}/auth/logout", headers=user.headers)).status == 204
    assert (await second.get(f"{API}/me", headers=user.headers)).status == 401


async def test_cached_tokens_filled_together_do_not_expire_together(
        client: TestClient[Any, Any], user: Account):
    """Otherwise every token filled after a restart goes back to PostgreSQL in the same
    second, once a minute."""
    cache = client.server.app[STORES].cache
    key = cache.keys.token(hash_token(user.token).hex())
    lifetimes = set()
    for _ in range(8):
        await cache.redis.delete(key)
        response = await client.get(f"{API}/me", headers=user.headers)
        assert response.status == 200
        lifetimes.add(await cache.redis.ttl(key))
    assert len(lifetimes) > 1
    assert all(0.8 * TOKEN_TTL_SECONDS - 1 <= ttl <= TOKEN_TTL_SECONDS for ttl in lifetimes)


async def test_missing_or_malformed_token_is_401(client: TestClient[Any, Any]):
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer " + "x" * 500},
                    {"Authorization": "Bearer not-a-real-token"}):
        response = await client.get(f"{API}/me", headers=headers)
        assert response.status == 401, headers


async def test_password_change_revokes_every_other_token(make_client: ClientFactory):
    first, second = await make_client(), await make_client()
    user = await register(first)
    other_login = await second.post(LOGIN, json={"email": user.email, "password": PASSWORD})
    other = {"Authorization": f"Bearer {(await other_login.json())['token']}"}
    assert (await second.get(f"{API}/me", headers=other)).status == 200
    response = await first.post(f"{API}/auth/password", headers=user.headers, json={
        "current_password": PASSWORD, "new_password": "a brand new password"})
    assert response.status == 204
    assert (await second.get(f"{API}/me", headers=other)).status == 401
    assert (await first.get(f"{API}/me", headers=user.headers)).status == 200
    old = await first.post(LOGIN, json={"email": user.email, "password": PASSWORD})
    new = await first.post(LOGIN, json={"email": user.email, "password": "a brand new password"})
    assert (old.status, new.status) == (401, 200)


async def test_password_change_with_wrong_current_password_is_422(
        client: TestClient[Any, Any], user: Account):
    response = await client.post(f"{API}/auth/password", headers=user.headers, json={
        "current_password": "not it at all", "new_password": "a brand new password"})
    assert response.status == 422
    assert list((await response.json())["error"]["fields"]) == ["current_password"]


async def test_password_reset_flow(client: TestClient[Any, Any], user: Account, db: Database):
    unknown = await client.post(f"{API}/auth/password_reset", json={"email": "no@example.com"})
    known = await client.post(f"{API}/auth/password_reset", json={"email": user.email})
    assert unknown.status == known.status == 202
    [payload] = await outbox_payloads(db, "password_reset")
    assert payload["user_id"] == user.id
    token = payload["context"]["reset_token"]
    confirm = f"{API}/auth/password_reset/confirm"
    response = await client.post(confirm, json={"token": token, "new_password": "reset password"})
    assert response.status == 204
    assert (await client.get(f"{API}/me", headers=user.headers)).status == 401
    again = await client.post(confirm, json={"token": token, "new_password": "another password"})
    assert again.status == 422
    assert list((await again.json())["error"]["fields"]) == ["token"]
    login = await client.post(LOGIN, json={"email": user.email, "password": "reset password"})
    assert login.status == 200
    assert (await login.json())["user"]["email_verified"] is True


async def test_expired_reset_token_is_rejected(client: TestClient[Any, Any], user: Account,
                                               db: Database):
    await client.post(f"{API}/auth/password_reset", json={"email": user.email})
    [payload] = await outbox_payloads(db, "password_reset")
    await db.execute("UPDATE email_tokens SET expires_at = now() - interval '1 second'")
    response = await client.post(f"{API}/auth/password_reset/confirm", json={
        "token": payload["context"]["reset_token"], "new_password": "reset password"})
    assert response.status == 422


async def test_verify_email_with_the_welcome_token(client: TestClient[Any, Any], user: Account,
                                                   db: Database):
    [payload] = await outbox_payloads(db, "welcome")
    verify = f"{API}/auth/verify_email"
    assert (await client.post(verify, json={"token": "bogus"})).status == 422
    token = payload["context"]["verify_token"]
    assert (await client.post(verify, json={"token": token})).status == 204
    assert (await client.post(verify, json={"token": token})).status == 422
    me = await (await client.get(f"{API}/me", headers=user.headers)).json()
    assert me["user"]["email_verified"] is True


async def test_suspended_account_cannot_log_in_and_tokens_stop(
        client: TestClient[Any, Any], user: Account, db: Database):
    await db.execute("UPDATE users SET suspended_at = now() WHERE id = %(id)s", {"id": user.id})
    response = await client.post(LOGIN, json={"email": user.email, "password": PASSWORD})
    assert response.status == 403
    # Not yet cached, so the database check sees the suspension at once.
    assert (await client.get(f"{API}/me", headers=user.headers)).status == 401


async def test_token_expires_thirty_days_after_last_use(
        client: TestClient[Any, Any], db: Database):
    user = await register(client)
    await db.execute("UPDATE auth_tokens SET last_used_at = now() - interval '31 days'")
    assert (await client.get(f"{API}/me", headers=user.headers)).status == 401


async def test_login_rate_limit_per_account_answers_429_with_retry_after(
        make_client: ClientFactory):
    client = await make_client(auth_rate_limit=RateLimit(3, 60))
    user = await register(client)
    statuses = []
    for _ in range(4):
        response = await client.post(LOGIN, json={"email": user.email, "password": "wrong one"})
        statuses.append(response.status)
    assert statuses == [401, 401, 401, 429]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert (await response.json())["error"]["code"] == "rate_limited"


async def test_rate_limit_is_shared_between_processes(make_client: ClientFactory):
    first = await make_client(auth_rate_limit=RateLimit(2, 60))
    second = await make_client(auth_rate_limit=RateLimit(2, 60))
    reset = f"{API}/auth/password_reset"
    assert (await first.post(reset, json={"email": "a@example.com"})).status == 202
    assert (await second.post(reset, json={"email": "a@example.com"})).status == 202
    assert (await first.post(reset, json={"email": "a@example.com"})).status == 429
