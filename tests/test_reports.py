"""POST /reports: one open report per reporter and target, hidden or missing targets are 404."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from sql.db import Database
from tests.conftest import API, Account, register
from tests.helpers import post_job

Client = TestClient[Any, Any]


async def report(client: Client, account: Account, target_type: str, target_id: int,
                 reason: str = "spam", expect: int = 201) -> dict[str, Any]:
    response = await client.post(f"{API}/reports", headers=account.headers, json={
        "target_type": target_type, "target_id": target_id, "reason": reason})
    body: dict[str, Any] = await response.json()
    assert response.status == expect, body
    return body


async def post(client: Client, account: Account, body: str = "hello") -> int:
    response = await client.post(f"{API}/posts", headers=account.headers, json={"body": body})
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


async def comment(client: Client, account: Account, post_id: int) -> int:
    response = await client.post(f"{API}/posts/{post_id}/comments", headers=account.headers,
                                 json={"body": "a comment"})
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


async def test_each_kind_of_target_can_be_reported(client: Client, user: Account,
                                                   employer: Account) -> None:
    post_id = await post(client, employer)
    comment_id = await comment(client, employer, post_id)
    job = await post_job(client, employer)
    for target_type, target_id in [("user", employer.id), ("post", post_id),
                                   ("comment", comment_id), ("job", job["id"])]:
        answer = await report(client, user, target_type, target_id, reason="<b>rude</b>")
        assert answer["target_type"] == target_type and answer["target_id"] == target_id
        assert answer["reason"] == "<b>rude</b>" and answer["status"] == "open"


async def test_a_repeat_while_open_is_the_same_report(client: Client, user: Account,
                                                      employer: Account, db: Database) -> None:
    first = await report(client, user, "user", employer.id, reason="first")
    again = await report(client, user, "user", employer.id, reason="second", expect=200)
    assert again == first
    other = await register(client)
    assert (await report(client, other, "user", employer.id))["id"] != first["id"]
    await db.execute("UPDATE reports SET status = 'resolved', resolved_at = now() "
                     "WHERE id = %(id)s", {"id": first["id"]})
    assert (await report(client, user, "user", employer.id))["id"] not in (first["id"],)


async def test_missing_targets_are_not_found(client: Client, user: Account,
                                             employer: Account) -> None:
    post_id = await post(client, employer)
    deleted = await client.delete(f"{API}/posts/{post_id}", headers=employer.headers)
    assert deleted.status == 204
    for target_type in ("user", "post", "comment", "job"):
        body = await report(client, user, target_type, 999_999, expect=404)
        assert body["error"]["code"] == "not_found"
    await report(client, user, "post", post_id, expect=404)


async def test_a_block_either_way_hides_posts_and_comments(client: Client, user: Account,
                                                           employer: Account) -> None:
    third = await register(client)
    post_id = await post(client, employer)
    comment_id = await comment(client, third, post_id)
    blocked = await client.post(f"{API}/users/{user.id}/block", headers=employer.headers)
    assert blocked.status == 201
    await report(client, user, "post", post_id, expect=404)
    # The comment's author is fine, but the post it sits under is the blocker's.
    await report(client, user, "comment", comment_id, expect=404)
    await report(client, third, "comment", comment_id)
    own_post = await post(client, user)
    await report(client, employer, "post", own_post, expect=404)  # the blocked one's too


async def test_a_suspended_user_cannot_be_reported(client: Client, user: Account,
                                                   employer: Account, db: Database) -> None:
    await db.execute("UPDATE users SET suspended_at = now() WHERE id = %(id)s",
                     {"id": employer.id})
    await report(client, user, "user", employer.id, expect=404)


async def test_bad_fields_are_422(client: Client, user: Account, employer: Account) -> None:
    response = await client.post(f"{API}/reports", headers=user.headers, json={
        "target_type": "message", "target_id": employer.id, "reason": " "})
    body = await response.json()
    assert response.status == 422, body
    assert set(body["error"]["fields"]) == {"target_type", "reason"}
    body = await report(client, user, "user", employer.id, reason="x" * 1001, expect=422)
    assert set(body["error"]["fields"]) == {"reason"}
    body = await report(client, user, "user", user.id, expect=422)
    assert set(body["error"]["fields"]) == {"target_id"}


async def test_reporting_needs_a_token(client: Client, employer: Account) -> None:
    response = await client.post(f"{API}/reports", json={
        "target_type": "user", "target_id": employer.id, "reason": "spam"})
    assert response.status == 401
