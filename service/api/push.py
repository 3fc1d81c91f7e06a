"""/push: the VAPID public key and browsers' push subscriptions."""

from __future__ import annotations

from aiohttp import web

from service.api.schemas import PushEndpoint, PushSubscriptionIn, VapidKey
from service.appkeys import SETTINGS, STORES
from service.authn import authenticate
from service.errors import Unavailable, ValidationFailed
from service.responses import json_answer, no_content, read_body
from sql import push
from tasks.push import endpoint_allowed, load_vapid_key, vapid_public_key


async def get_vapid_public_key(request: web.Request) -> web.Response:
    private_key = request.app[SETTINGS].vapid_private_key
    if not private_key:
        raise Unavailable("Web push is not configured on this server.")
    return json_answer(VapidKey(key=vapid_public_key(load_vapid_key(private_key))))


async def subscribe(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_body(request, PushSubscriptionIn)
    # Only known push services: we never make requests to an arbitrary host (SSRF).
    if not endpoint_allowed(body.endpoint, request.app[SETTINGS].push_endpoint_allowlist):
        raise ValidationFailed({"endpoint": "is not a push service this server sends to"})
    created = await push.upsert_subscription(request.app[STORES].db, principal.user_id,
                                             body.endpoint, body.keys.p256dh, body.keys.auth)
    return json_answer({"endpoint": body.endpoint}, status=201 if created else 200)


async def unsubscribe(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_body(request, PushEndpoint)
    await push.delete_own_subscription(request.app[STORES].db, principal.user_id, body.endpoint)
    return no_content()
