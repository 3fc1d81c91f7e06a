"""/posts, likes and comments. Posts are answered through service/api/answers.py."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from service.api.answers import hydrated_post, post_page
from service.api.posting import create_post_txn, posts_removed_txn
from service.api.schemas import Page, PageQuery, PublicProfile
from service.api.social_schemas import Comment, CommentCreate, Post, PostCreate
from service.appkeys import STORES
from service.authn import authenticate
from service.errors import Forbidden, NotFound, ValidationFailed
from service.paging import split_page
from service.responses import from_row, json_answer, no_content, read_body
from service.validation import decode_cursor, decode_query, path_id
from sql import feeds, posts, users
from sql.db import Database, Row
from tasks.notify import NewNotification, notify_txn
from tasks.work import unit_of_work

BLOCKED = "You or the author of this post has blocked the other."


async def _one_post(db: Database, post_id: int, viewer_id: int) -> Post:
    row = await feeds.hydrated_post(db, post_id, viewer_id)
    if row is None:
        raise NotFound()
    return hydrated_post(row)


async def create_post(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_body(request, PostCreate)
    async with unit_of_work(request.app[STORES], "create_post") as work:
        post = await create_post_txn(work, author_id=principal.user_id, body=body.body,
                                     post_type=body.post_type,
                                     related_job_id=body.related_job_id)
    if post is None:
        raise ValidationFailed({"related_job_id": "no such job"})
    return json_answer(hydrated_post(post), 201)


async def get_post(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    post_id = path_id(request)
    return json_answer(await _one_post(request.app[STORES].db, post_id, principal.user_id))


async def delete_post(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    post_id = path_id(request)
    stores = request.app[STORES]
    async with unit_of_work(stores, "delete_post") as work:
        deleted = await posts.delete_post_txn(work.cur, post_id, principal.user_id,
                                              principal.is_admin)
        if deleted:
            await posts_removed_txn(work, [post_id])
    if not deleted:
        raise Forbidden() if await posts.post_exists(stores.db, post_id) else NotFound()
    return no_content()


async def list_user_posts(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    author_id = path_id(request)
    query = decode_query(request.query, PageQuery)
    before = decode_cursor(query.cursor, datetime, int) if query.cursor else None
    db = request.app[STORES].db
    rows = await posts.list_user_posts(db, author_id, principal.user_id, before=before,
                                       limit=query.limit + 1)
    if rows is None:
        raise NotFound()
    return json_answer(await post_page(db, rows, query.limit, principal.user_id))


async def like_post(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    post_id = path_id(request)
    async with unit_of_work(request.app[STORES], "like_post") as work:
        liked = await posts.insert_like_txn(work.cur, post_id, principal.user_id)
        if liked is not None and liked["inserted"] and liked["user_id"] != principal.user_id:
            await notify_txn(work, NewNotification(
                user_id=liked["user_id"], type="post_like", actor_id=principal.user_id,
                related_id=post_id, data={"path": f"/posts/{post_id}"},
                dedup_key=f"post_like:{post_id}:{principal.user_id}", email=False))
    if liked is None:
        raise NotFound()
    if liked["blocked"]:
        raise Forbidden(BLOCKED)
    return json_answer(hydrated_post(liked), 201 if liked["inserted"] else 200)


async def unlike_post(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    post_id = path_id(request)
    if not await posts.delete_like(request.app[STORES].db, post_id, principal.user_id):
        raise NotFound()
    return no_content()


async def list_comments(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    post_id = path_id(request)
    query = decode_query(request.query, PageQuery)
    after = decode_cursor(query.cursor, datetime, int) if query.cursor else None
    db = request.app[STORES].db
    rows = await posts.list_comments(db, post_id, principal.user_id, after=after,
                                     limit=query.limit + 1)
    if rows is None:
        raise NotFound()
    page, next_cursor = split_page(rows, query.limit, lambda row: (row["created_at"], row["id"]))
    items = await _comments(db, page, principal.user_id)
    return json_answer(Page(items=items, next_cursor=next_cursor))


async def _comments(db: Database, rows: list[Row], viewer_id: int) -> list[Comment]:
    authors = await users.get_profiles(db, {row["user_id"] for row in rows}, viewer_id)
    return [Comment(id=row["id"], post_id=row["post_id"],
                    author=from_row(authors[row["user_id"]], PublicProfile), body=row["body"],
                    created_at=row["created_at"])
            for row in rows if row["user_id"] in authors]


async def add_comment(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    post_id = path_id(request)
    body = await read_body(request, CommentCreate)
    stores = request.app[STORES]
    async with unit_of_work(stores, "add_comment") as work:
        comment = await posts.insert_comment_txn(work.cur, post_id, principal.user_id, body.body)
        if comment is not None and comment["post_author_id"] != principal.user_id:
            await notify_txn(work, NewNotification(
                user_id=comment["post_author_id"], type="post_comment",
                actor_id=principal.user_id, related_id=post_id,
                data={"path": f"/posts/{post_id}", "comment_id": comment["id"]},
                dedup_key=f"post_comment:{comment['id']}", email=False))
    if comment is None:
        if await posts.post_exists(stores.db, post_id):
            raise Forbidden(BLOCKED)
        raise NotFound()
    [item] = await _comments(stores.db, [comment], principal.user_id)
    return json_answer(item, 201)


async def delete_comment(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    comment_id = path_id(request)
    stores = request.app[STORES]
    async with unit_of_work(stores, "delete_comment") as work:
        removed = await posts.delete_comment_txn(work.cur, comment_id, principal.user_id,
                                                 principal.is_admin)
        if removed is not None and await posts.delete_comment_notification_txn(
                work.cur, removed["post_author_id"], f"post_comment:{comment_id}"):
            work.unread_count_changed("notifications", removed["post_author_id"])
    if removed is None:
        raise Forbidden() if await posts.comment_exists(stores.db, comment_id) else NotFound()
    return no_content()
