"""/auth/*: register, verify email, log in and out, change and reset the password."""

from __future__ import annotations

from aiohttp import web

from service.api.email_tokens import reset_password_with_token, verify_email_with_token
from service.api.schemas import (
    AuthAnswer,
    LoginRequest,
    OwnUser,
    PasswordChangeRequest,
    PasswordResetConfirmRequest,
    PasswordResetRequest,
    RegisterRequest,
    VerifyEmailRequest,
)
from service.appkeys import STORES
from service.authn import authenticate
from service.errors import Conflict, Forbidden, Unauthorized, ValidationFailed
from service.freshness import WROTE_AS
from service.limits import enforce_auth_limit
from service.passwords import hash_password, upgrade_hash_txn, verify_password
from service.responses import from_row, json_answer, no_content, read_body
from service.tokens import new_auth_token, new_token
from sql import tokens, users
from tasks.notify import enqueue_email_txn
from tasks.work import unit_of_work

VERIFY_EMAIL_LIFETIME = "7 days"
PASSWORD_RESET_LIFETIME = "1 hour"
BAD_TOKEN = "is invalid, expired or already used"


async def register(request: web.Request) -> web.Response:
    body = await read_body(request, RegisterRequest)
    await enforce_auth_limit(request, "register", body.email)
    password_hash = await hash_password(body.password)
    verify_token, verify_hash = new_token()
    async with unit_of_work(request.app[STORES], "register") as work:
        cur = work.cur
        user = await users.insert_user_txn(
            cur, email=body.email, password_hash=password_hash, first_name=body.first_name,
            last_name=body.last_name, role=body.role)
        if user is None:
            raise Conflict("This email is already registered.")
        request[WROTE_AS] = user["id"]  # the new account's first reads see it
        token, token_hash = new_auth_token(user["id"])
        await tokens.insert_auth_token_txn(cur, token_hash, user["id"])
        await tokens.insert_email_token_txn(cur, verify_hash, user["id"], "verify_email",
                                            VERIFY_EMAIL_LIFETIME)
        await enqueue_email_txn(work, "welcome", user["id"], {"verify_token": verify_token},
                                f"welcome:{user['id']}")
    user["followed_by_me"] = False
    return json_answer(AuthAnswer(user=from_row(user, OwnUser), token=token), status=201)


async def verify_email(request: web.Request) -> web.Response:
    body = await read_body(request, VerifyEmailRequest)
    if not await verify_email_with_token(request.app[STORES], body.token):
        raise ValidationFailed({"token": BAD_TOKEN})
    return no_content()


async def login(request: web.Request) -> web.Response:
    body = await read_body(request, LoginRequest)
    await enforce_auth_limit(request, "login", body.email)
    db = request.app[STORES].db
    user = await users.get_login(db, body.email)
    # Unknown email and wrong password take the same path and time, and answer the same.
    password_hash = user["password_hash"] if user else None
    if not await verify_password(password_hash, body.password) or user is None:
        raise Unauthorized("Wrong email or password.")
    if user["suspended_at"] is not None:
        raise Forbidden("This account is suspended.")
    token, token_hash = new_auth_token(user["id"])
    async with unit_of_work(request.app[STORES], "login") as work:
        await tokens.insert_auth_token_txn(work.cur, token_hash, user["id"])
        await upgrade_hash_txn(work.cur, user["id"], user["password_hash"], body.password)
    user["followed_by_me"] = False
    return json_answer(AuthAnswer(user=from_row(user, OwnUser), token=token))


async def logout(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    async with unit_of_work(request.app[STORES], "logout") as work:
        await tokens.delete_auth_token_txn(work.cur, principal.token_hash)
        work.token_revoked(principal.token_hash)
    return no_content()


async def change_password(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_body(request, PasswordChangeRequest)
    await enforce_auth_limit(request, "password", str(principal.user_id))
    db = request.app[STORES].db
    current_hash = await users.get_password_hash(db, principal.user_id)
    if not await verify_password(current_hash, body.current_password):
        raise ValidationFailed({"current_password": "is not your current password"})
    new_hash = await hash_password(body.new_password)
    async with unit_of_work(request.app[STORES], "change_password") as work:
        await users.update_password_txn(work.cur, principal.user_id, new_hash)
        work.token_revoked(*await tokens.delete_user_tokens_txn(work.cur, principal.user_id,
                                                                keep=principal.token_hash))
    return no_content()


async def request_password_reset(request: web.Request) -> web.Response:
    body = await read_body(request, PasswordResetRequest)
    await enforce_auth_limit(request, "password_reset", body.email)
    db = request.app[STORES].db
    user = await users.get_login(db, body.email)
    if user is not None and user["suspended_at"] is None:
        reset_token, reset_hash = new_token()
        async with unit_of_work(request.app[STORES], "request_password_reset") as work:
            await tokens.insert_email_token_txn(work.cur, reset_hash, user["id"], "password_reset",
                                                PASSWORD_RESET_LIFETIME)
            await enqueue_email_txn(work, "password_reset", user["id"],
                                    {"reset_token": reset_token}, f"reset:{reset_hash.hex()}")
    # The same answer whether or not the email is known.
    return web.Response(status=202)


async def confirm_password_reset(request: web.Request) -> web.Response:
    body = await read_body(request, PasswordResetConfirmRequest)
    await enforce_auth_limit(request, "password_reset_confirm", None)
    if not await reset_password_with_token(request.app[STORES], body.token,
                                           body.new_password):
        raise ValidationFailed({"token": BAD_TOKEN})
    return no_content()
