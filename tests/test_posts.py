"""Posts, likes and comments: every endpoint's answers, counters and notifications."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from sql.db import Database
from tests.conftest import API, Account, ClientFactory, register
from tests.helpers import (
    block,
    create_post,
    delete_post,
    follow,
    insert_job,
    notifications_of,
    walk,
)
from tests.statement_counter import StatementCounter

Client = TestClient[Any, Any]
POST_FIELDS = {"id", "author", "body", "post_type", "related_job_id", "likes_count",
               "comments_count", "liked_by_me", "created_at"}


async def get_post(client: Client, viewer: Account, post_id: int) -> dict[str, Any]:
    response = await client.get(f"{API}/posts/{post_id}", headers=viewer.headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def make_admin(db: Database, account: Account) -> None:
    await db.execute("UPDATE users SET is_admin = true WHERE id = %(id)s", {"id": account.id})


async def comment(client: Client, account: Account, post_id: int, body: str = "nice",
                  expect: int = 201) -> dict[str, Any]:
    response = await client.post(f"{API}/posts/{post_id}/comments", json={"body": body},
                                 headers=account.headers)
    answer: dict[str, Any] = await response.json()
    assert response.status == expect, answer
    return answer


# -- posts ----------------------------------------------------------------------------------

async def test_create_and_get_a_text_post(client: Client, user: Account):
    post = await create_post(client, user, "First post")
    assert set(post) == POST_FIELDS
    assert post["author"]["id"] == user.id and "email" not in post["author"]
    assert (post["post_type"], post["related_job_id"]) == ("text", None)
    assert (post["likes_count"], post["comments_count"], post["liked_by_me"]) == (0, 0, False)
    assert post["created_at"].endswith("Z")
    assert await get_post(client, user, post["id"]) == post


async def test_a_job_post_needs_an_existing_job(client: Client, user: Account,
                                                employer: Account, db: Database):
    job_id = await insert_job(db, employer)
    post = await create_post(client, employer, "We are hiring", post_type="job",
                             related_job_id=job_id)
    assert (post["post_type"], post["related_job_id"]) == ("job", job_id)
    for extra in ({"post_type": "job"}, {"post_type": "job", "related_job_id": 999999},
                  {"post_type": "job", "related_job_id": 0}):
        response = await client.post(f"{API}/posts", json={"body": "x"} | extra,
                                     headers=employer.headers)
        assert response.status == 422, extra
        assert set((await response.json())["error"]["fields"]) == {"related_job_id"}
    await db.execute("DELETE FROM jobs WHERE id = %(id)s", {"id": job_id})
    response = await client.get(f"{API}/posts/{post['id']}", headers=user.headers)
    assert response.status == 404  # the job's posts go with it


async def test_create_post_validation(client: Client, user: Account):
    for body, fields in (({"body": ""}, {"body"}), ({"body": "   "}, {"body"}),
                         ({"body": "x" * 5001}, {"body"}), ({}, {"body"}),
                         ({"body": "x", "post_type": "poll"}, {"post_type"}),
                         ({"body": 5, "extra": 1}, {"body", "extra"})):
        response = await client.post(f"{API}/posts", json=body, headers=user.headers)
        assert response.status == 422, body
        assert set((await response.json())["error"]["fields"]) == fields, body
    assert (await client.post(f"{API}/posts", data=b"nope",
                              headers=user.headers)).status == 400
    assert (await client.post(f"{API}/posts", json={"body": "x"})).status == 401
    assert (await create_post(client, user, "x" * 5000))["body"] == "x" * 5000


async def test_get_unknown_post_is_404(client: Client, user: Account):
    for path in ("999999", "abc", "0"):
        assert (await client.get(f"{API}/posts/{path}", headers=user.headers)).status == 404
    assert (await client.get(f"{API}/posts/1")).status == 401


async def test_delete_post_author_or_admin_only(client: Client, user: Account, db: Database):
    author, admin = await register(client), await register(client)
    await make_admin(db, admin)
    first, second = await create_post(client, author), await create_post(client, author)
    await delete_post(client, user, first["id"], expect=403)
    await delete_post(client, author, first["id"])
    await delete_post(client, author, first["id"], expect=404)
    await delete_post(client, admin, second["id"])
    await delete_post(client, user, 999999, expect=404)
    assert await db.fetch_value("SELECT count(*) FROM posts") == 0


async def test_deleting_a_post_removes_its_notifications(client: Client, user: Account,
                                                         db: Database):
    author = await register(client)
    post = await create_post(client, author)
    await client.post(f"{API}/posts/{post['id']}/like", headers=user.headers)
    await comment(client, user, post["id"])
    unread = await client.get(f"{API}/notifications/unread_count", headers=author.headers)
    assert (await unread.json())["count"] == 2
    await delete_post(client, author, post["id"])
    unread = await client.get(f"{API}/notifications/unread_count", headers=author.headers)
    assert (await unread.json())["count"] == 0


async def test_user_posts_are_newest_first_and_paged(client: Client, user: Account):
    author = await register(client)
    ids = [(await create_post(client, author, f"post {n}"))["id"] for n in range(5)]
    await create_post(client, user, "someone else's")
    assert await walk(client, user, f"/users/{author.id}/posts") == list(reversed(ids))
    assert await walk(client, user, f"/users/{user.id}/posts", limit=10) != []
    other = await register(client)
    assert await walk(client, user, f"/users/{other.id}/posts") == []
    assert (await client.get(f"{API}/users/999999/posts", headers=user.headers)).status == 404
    bad = await client.get(f"{API}/users/{author.id}/posts", params={"cursor": "x"},
                           headers=user.headers)
    assert bad.status == 400


# -- likes ----------------------------------------------------------------------------------

async def test_like_is_201_then_200_and_counted_once(client: Client, user: Account,
                                                     db: Database):
    author = await register(client)
    post = await create_post(client, author)
    first = await client.post(f"{API}/posts/{post['id']}/like", headers=user.headers)
    assert first.status == 201
    liked = await first.json()
    assert (liked["likes_count"], liked["liked_by_me"]) == (1, True)
    again = await client.post(f"{API}/posts/{post['id']}/like", headers=user.headers)
    assert again.status == 200 and (await again.json())["likes_count"] == 1
    assert (await get_post(client, author, post["id"]))["liked_by_me"] is False
    response = await client.delete(f"{API}/posts/{post['id']}/like", headers=user.headers)
    assert response.status == 204
    assert (await client.delete(f"{API}/posts/{post['id']}/like",
                                headers=user.headers)).status == 204
    assert (await get_post(client, user, post["id"]))["likes_count"] == 0


async def test_like_unlike_like_notifies_once_and_self_likes_never(client: Client,
                                                                    user: Account,
                                                                    db: Database):
    author = await register(client)
    post = await create_post(client, author)
    for _ in range(2):
        await client.post(f"{API}/posts/{post['id']}/like", headers=user.headers)
        await client.delete(f"{API}/posts/{post['id']}/like", headers=user.headers)
    await client.post(f"{API}/posts/{post['id']}/like", headers=user.headers)
    await client.post(f"{API}/posts/{post['id']}/like", headers=author.headers)
    [note] = await notifications_of(db, author.id, "post_like")
    assert (note["actor_id"], note["related_id"]) == (user.id, post["id"])
    assert await db.fetch_value("SELECT count(*) FROM outbox WHERE kind = 'email' "
                                "AND payload->>'email_type' = 'post_like'") == 0
    assert (await get_post(client, user, post["id"]))["likes_count"] == 2


async def test_concurrent_double_like_is_one_like_and_one_notification(
        client: Client, user: Account, db: Database):
    author = await register(client)
    post = await create_post(client, author)
    responses = await asyncio.gather(*[
        client.post(f"{API}/posts/{post['id']}/like", headers=user.headers) for _ in range(4)])
    assert sorted(r.status for r in responses) == [200, 200, 200, 201]
    assert await db.fetch_value("SELECT count(*) FROM post_likes") == 1
    assert await db.fetch_value("SELECT likes_count FROM posts") == 1
    assert len(await notifications_of(db, author.id, "post_like")) == 1


async def test_a_like_and_a_post_answer_what_they_wrote_without_reading_it_again(
        client: Client, user: Account, make_client: ClientFactory,
        statement_counter: StatementCounter):
    author, fan = await register(client), await register(client)
    post = await create_post(client, author)
    await follow(client, user, author.id)
    await client.post(f"{API}/posts/{post['id']}/like", headers=fan.headers)
    # The measured app runs only these requests; its sweeper waits an hour after start-up.
    measured = await make_client(database_url=await statement_counter.start(),
                                 delivery_sweep_seconds=3600)
    try:
        await measured.get(f"{API}/me", headers=user.headers)  # warm: the token is cached
        statement_counter.queries.clear()
        response = await measured.post(f"{API}/posts/{post['id']}/like", headers=user.headers)
        liked = await response.json()
        # BEGIN with the like (the post comes back with it), the notification, the author's
        # event ids, the events, COMMIT: no read of the post after commit.
        like_statements = list(statement_counter.queries)
        statement_counter.queries.clear()
        created = await create_post(measured, user, "mine")
        post_statements = list(statement_counter.queries)  # BEGIN with the insert, COMMIT
    finally:
        await measured.close()  # before the proxy under it stops
    assert response.status == 201
    assert liked == await get_post(client, user, post["id"])
    assert (liked["likes_count"], liked["liked_by_me"]) == (2, True)
    assert liked["author"]["followed_by_me"] is True
    assert created == await get_post(client, user, created["id"])
    assert (len(like_statements), len(post_statements)) == (5, 2), (like_statements,
                                                                    post_statements)


async def test_like_errors(client: Client, user: Account):
    for method in (client.post, client.delete):
        assert (await method(f"{API}/posts/999999/like", headers=user.headers)).status == 404
        assert (await method(f"{API}/posts/1/like")).status == 401


async def test_liked_by_me_is_per_viewer_in_lists(client: Client, user: Account):
    author, other = await register(client), await register(client)
    posts = [await create_post(client, author, f"p{n}") for n in range(3)]
    await client.post(f"{API}/posts/{posts[1]['id']}/like", headers=user.headers)
    for viewer, expected in ((user, [False, True, False]), (other, [False, False, False])):
        page = await (await client.get(f"{API}/users/{author.id}/posts",
                                       headers=viewer.headers)).json()
        assert [item["liked_by_me"] for item in page["items"]] == expected


# -- comments -------------------------------------------------------------------------------

async def test_comments_are_oldest_first_and_counted(client: Client, user: Account,
                                                     db: Database):
    author = await register(client)
    post = await create_post(client, author)
    created = [await comment(client, user, post["id"], f"c{n}") for n in range(5)]
    assert set(created[0]) == {"id", "post_id", "author", "body", "created_at"}
    assert created[0]["author"]["id"] == user.id and created[0]["post_id"] == post["id"]
    ids = await walk(client, user, f"/posts/{post['id']}/comments")
    assert ids == [c["id"] for c in created]
    assert (await get_post(client, user, post["id"]))["comments_count"] == 5
    assert len(await notifications_of(db, author.id, "post_comment")) == 5
    await comment(client, author, post["id"], "my own post")
    assert len(await notifications_of(db, author.id, "post_comment")) == 5


async def test_comment_errors(client: Client, user: Account):
    author = await register(client)
    post = await create_post(client, author)
    for body in ("", "  ", "x" * 2001):
        response = await comment(client, user, post["id"], body, expect=422)
        assert set(response["error"]["fields"]) == {"body"}
    assert (await comment(client, user, post["id"], "x" * 2000))["body"] == "x" * 2000
    await comment(client, user, 999999, expect=404)
    assert (await client.get(f"{API}/posts/999999/comments",
                             headers=user.headers)).status == 404
    assert (await client.get(f"{API}/posts/{post['id']}/comments")).status == 401
    bad = await client.get(f"{API}/posts/{post['id']}/comments", params={"limit": "101"},
                           headers=user.headers)
    assert bad.status == 400


async def test_a_blocked_user_cannot_comment(client: Client, user: Account):
    author = await register(client)
    post = await create_post(client, author)
    await block(client, author, user.id)
    answer = await comment(client, user, post["id"], expect=403)
    assert answer["error"]["code"] == "forbidden"
    await client.delete(f"{API}/users/{user.id}/block", headers=author.headers)
    await comment(client, user, post["id"])


async def test_delete_comment_by_its_author_the_post_author_or_admin(
        client: Client, user: Account, db: Database):
    author, stranger, admin = (await register(client), await register(client),
                               await register(client))
    await make_admin(db, admin)
    post = await create_post(client, author)
    first, second, third = [await comment(client, user, post["id"]) for _ in range(3)]
    for account, target in ((stranger, first), (stranger, second)):
        response = await client.delete(f"{API}/comments/{target['id']}",
                                       headers=account.headers)
        assert response.status == 403
    for account, target in ((user, first), (author, second), (admin, third)):
        response = await client.delete(f"{API}/comments/{target['id']}",
                                       headers=account.headers)
        assert response.status == 204
    assert (await client.delete(f"{API}/comments/{first['id']}",
                                headers=user.headers)).status == 404
    assert (await get_post(client, user, post["id"]))["comments_count"] == 0
    assert await notifications_of(db, author.id, "post_comment") == []
    unread = await client.get(f"{API}/notifications/unread_count", headers=author.headers)
    assert (await unread.json())["count"] == 0


async def test_follow_shows_in_author_profiles_of_posts(client: Client, user: Account):
    author = await register(client)
    post = await create_post(client, author)
    assert (await get_post(client, user, post["id"]))["author"]["followed_by_me"] is False
    await follow(client, user, author.id)
    assert (await get_post(client, user, post["id"]))["author"]["followed_by_me"] is True


# -- blocks: neither sees the other's posts, neither likes or comments on them ---------------

async def like(client: Client, account: Account, post_id: int) -> int:
    response = await client.post(f"{API}/posts/{post_id}/like", headers=account.headers)
    return response.status


async def test_a_blocked_pair_cannot_like_each_others_posts(client: Client, user: Account,
                                                          db: Database):
    blocker = await register(client)
    blockers_post, users_post = await create_post(client, blocker), await create_post(client, user)
    await block(client, blocker, user.id)
    assert await like(client, user, blockers_post["id"]) == 403
    assert await like(client, blocker, users_post["id"]) == 403
    assert await db.fetch_value("SELECT count(*) FROM post_likes") == 0
    assert await notifications_of(db, blocker.id, "post_like") == []
    assert await notifications_of(db, user.id, "post_like") == []
    unread = await client.get(f"{API}/notifications/unread_count", headers=blocker.headers)
    assert (await unread.json())["count"] == 0

    await client.delete(f"{API}/users/{user.id}/block", headers=blocker.headers)
    assert await like(client, user, blockers_post["id"]) == 201
    assert len(await notifications_of(db, blocker.id, "post_like")) == 1


async def test_the_blocker_cannot_comment_on_the_blocked_users_posts(client: Client,
                                                                     user: Account,
                                                                     db: Database):
    blocker = await register(client)
    post = await create_post(client, user)
    await block(client, blocker, user.id)
    answer = await comment(client, blocker, post["id"], expect=403)
    assert answer["error"]["code"] == "forbidden"
    assert await notifications_of(db, user.id, "post_comment") == []


async def test_a_block_hides_each_ones_posts_from_the_other(client: Client, user: Account):
    blocker, bystander = await register(client), await register(client)
    blockers_post, users_post = await create_post(client, blocker), await create_post(client, user)
    await comment(client, bystander, blockers_post["id"])
    await block(client, blocker, user.id)
    for viewer, author, post in ((user, blocker, blockers_post), (blocker, user, users_post)):
        listed = await client.get(f"{API}/users/{author.id}/posts", headers=viewer.headers)
        assert listed.status == 200
        assert await listed.json() == {"items": [], "next_cursor": None}
        one = await client.get(f"{API}/posts/{post['id']}", headers=viewer.headers)
        assert one.status == 404
        assert (await one.json())["error"]["code"] == "not_found"
        comments = await client.get(f"{API}/posts/{post['id']}/comments",
                                    headers=viewer.headers)
        assert comments.status == 404
    # Everyone else still sees both, and each still sees their own.
    for viewer, author, post in ((bystander, blocker, blockers_post),
                                 (bystander, user, users_post), (user, user, users_post),
                                 (blocker, blocker, blockers_post)):
        assert await walk(client, viewer, f"/users/{author.id}/posts") == [post["id"]]
        assert (await get_post(client, viewer, post["id"]))["id"] == post["id"]
    assert len(await walk(client, bystander, f"/posts/{blockers_post['id']}/comments")) == 1

    await client.delete(f"{API}/users/{user.id}/block", headers=blocker.headers)
    assert await walk(client, user, f"/users/{blocker.id}/posts") == [blockers_post["id"]]
    assert await walk(client, user, f"/posts/{blockers_post['id']}/comments") != []
