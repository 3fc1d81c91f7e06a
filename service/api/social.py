"""/users/{id}/follow, /block, the followers / following lists and /me/blocks.

Follow and block lock the pair of users first (sql/social.py), so a follow can never slip in
next to a block. Feeds follow the graph after commit (tasks/feeds.py).
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from service.api.schemas import Page, PageQuery, PublicProfile
from service.appkeys import SETTINGS, STORES
from service.authn import authenticate
from service.errors import Forbidden, NotFound, ValidationFailed
from service.paging import split_page
from service.responses import from_row, json_answer, no_content
from service.validation import decode_cursor, decode_query, path_id
from sql import social, users
from sql.db import Database
from tasks.feeds import follows_removed_txn, merge_author_after_commit
from tasks.notify import NewNotification, notify_txn
from tasks.work import unit_of_work

BLOCKED = "You cannot follow this user."


async def _profile(db: Database, user_id: int, viewer_id: int) -> PublicProfile:
    """The profile as it is right after the caller's own write (primary, not a replica)."""
    profiles = await users.get_profiles(db, [user_id], viewer_id, stale_ok=False)
    if user_id not in profiles:
        raise NotFound()
    return from_row(profiles[user_id], PublicProfile)


async def follow(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    target = path_id(request)
    if target == principal.user_id:
        raise ValidationFailed({"id": "you cannot follow yourself"})
    stores = request.app[STORES]
    async with unit_of_work(stores, "follow_user") as work:
        work.own_user_changed(principal.user_id, target)  # following / followers counts
        work.job_flags_changed(principal.user_id)  # followed_by_me on job answers
        if not await social.lock_pair_txn(work.cur, principal.user_id, target):
            raise NotFound()
        if await social.blocked_between_txn(work.cur, principal.user_id, target):
            raise Forbidden(BLOCKED)
        created = await social.insert_follow_txn(work.cur, principal.user_id, target)
        if created:
            await notify_txn(work, NewNotification(
                user_id=target, type="follow", actor_id=principal.user_id,
                related_id=principal.user_id, data={"path": f"/users/{principal.user_id}"},
                dedup_key=f"follow:{principal.user_id}", email=False))
            merge_author_after_commit(work, principal.user_id, target)
    profile = await _profile(stores.db, target, principal.user_id)
    return json_answer(profile, 201 if created else 200)


async def unfollow(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    target = path_id(request)
    max_followers = request.app[SETTINGS].feed_fanout_max_followers
    async with unit_of_work(request.app[STORES], "unfollow_user") as work:
        work.own_user_changed(principal.user_id, target)
        work.job_flags_changed(principal.user_id)
        # The pair's rows in id order, as follow and block take them: never a deadlock.
        await social.lock_pair_txn(work.cur, principal.user_id, target)
        removed = await social.delete_follows_txn(work.cur, principal.user_id, target)
        await follows_removed_txn(work, removed, max_followers)
    return no_content()


async def block(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    target = path_id(request)
    if target == principal.user_id:
        raise ValidationFailed({"id": "you cannot block yourself"})
    stores = request.app[STORES]
    max_followers = request.app[SETTINGS].feed_fanout_max_followers
    async with unit_of_work(stores, "block_user") as work:
        work.own_user_changed(principal.user_id, target)  # follows both ways go
        work.job_flags_changed(principal.user_id, target)
        if not await social.lock_pair_txn(work.cur, principal.user_id, target):
            raise NotFound()
        created = await social.insert_block_txn(work.cur, principal.user_id, target)
        removed = await social.delete_follows_txn(work.cur, principal.user_id, target,
                                                  both_ways=True)
        await follows_removed_txn(work, removed, max_followers)
    profile = await _profile(stores.db, target, principal.user_id)
    return json_answer(profile, 201 if created else 200)


async def unblock(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    target = path_id(request)
    await social.delete_block(request.app[STORES].db, principal.user_id, target)
    return no_content()


async def list_followers(request: web.Request) -> web.Response:
    return await _people_page(request, "followers", path_id(request))


async def list_following(request: web.Request) -> web.Response:
    return await _people_page(request, "following", path_id(request))


async def list_blocks(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    return await _people_page(request, "blocks", principal.user_id)


async def _people_page(request: web.Request, which: str, owner_id: int) -> web.Response:
    """Newest first: one query for the page, one for the profiles."""
    principal = await authenticate(request)
    query = decode_query(request.query, PageQuery)
    before = decode_cursor(query.cursor, datetime, int) if query.cursor else None
    db = request.app[STORES].db
    rows = await social.list_people(db, which, owner_id, before=before, limit=query.limit + 1,
                                    stale_ok=which != "blocks")
    if rows is None:
        raise NotFound()
    page, next_cursor = split_page(rows, query.limit,
                                   lambda row: (row["created_at"], row["user_id"]))
    profiles = await users.get_profiles(db, {row["user_id"] for row in page},
                                        principal.user_id)
    items = [from_row(profiles[row["user_id"]], PublicProfile)
             for row in page if row["user_id"] in profiles]
    return json_answer(Page(items=items, next_cursor=next_cursor))
