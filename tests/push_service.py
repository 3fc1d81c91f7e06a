"""A real web push service on the test's own event loop: checks VAPID, decrypts, records.

It plays both ends a browser push needs: ``new_subscription()`` makes a browser-like
subscription (its own P-256 key pair and auth secret), and ``POST /push/<id>`` checks the
sender's VAPID JWT (RFC 8292) and headers (RFC 8030), decrypts the aes128gcm body
(RFC 8291) and keeps the JSON payload in ``received``. Failed checks answer 401/400 and
land in ``rejected``. ``respond_with``/``retry_after`` and ``hang_seconds`` make it fail.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import struct
import time
from dataclasses import dataclass
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tasks import base64url

HOST = "127.0.0.1"
MAX_BODY_BYTES = 4096  # RFC 8030: push services must accept at least 4096 bytes
MAX_VAPID_LIFETIME = 24 * 3600  # RFC 8292 section 2: exp no more than 24 hours ahead
BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
URGENCIES = frozenset({"very-low", "low", "normal", "high"})


@dataclass(frozen=True)
class ReceivedPush:
    subscription_id: str
    ttl: int
    topic: str | None
    urgency: str | None
    payload: dict[str, Any]
    vapid_claims: dict[str, Any]


@dataclass(frozen=True)
class RejectedPush:
    subscription_id: str
    status: int
    reason: str


class Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def b64decode(value: str) -> bytes:
    """Strict unpadded base64url, as JWTs and push keys use."""
    if not BASE64URL.fullmatch(value) or len(value) % 4 == 1:
        raise ValueError("not unpadded base64url")
    return base64url.decode(value)


def verify_vapid(authorization: str, audience: str, now: float) -> dict[str, Any]:
    """The claims of a valid ``vapid t=<JWT>,k=<key>`` header; Rejected(401) otherwise."""
    scheme, _, params = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise Rejected(401, "no vapid Authorization")
    fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
    try:
        header_b64, claims_b64, signature_b64 = fields.get("t", "").split(".")
        header = json.loads(b64decode(header_b64))
        claims = json.loads(b64decode(claims_b64))
        signature = b64decode(signature_b64)
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b64decode(fields.get("k", "")))
    except ValueError as error:  # JSONDecodeError and a bad point included
        raise Rejected(401, f"malformed vapid header: {error}") from None
    if header.get("alg") != "ES256" or len(signature) != 64:
        raise Rejected(401, "vapid JWT is not ES256")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    try:
        public_key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Rejected(401, "vapid signature does not match k") from None
    if not isinstance(claims, dict):
        raise Rejected(401, "vapid claims are not an object")
    if claims.get("aud") != audience:
        raise Rejected(401, f"vapid aud {claims.get('aud')!r} is not {audience!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or not now < exp <= now + MAX_VAPID_LIFETIME:
        raise Rejected(401, f"vapid exp {exp!r} is not within the next 24 hours")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise Rejected(401, "vapid sub missing")
    return claims


class PushService:
    """Serves ``POST /push/<id>`` on ``127.0.0.1``; start() before new_subscription()."""

    def __init__(self) -> None:
        self.port = 0
        self.received: list[ReceivedPush] = []
        self.rejected: list[RejectedPush] = []
        self.respond_with: int | None = None  # answer this status after the checks pass
        self.retry_after: int | None = None  # Retry-After sent with respond_with
        self.hang_seconds = 0.0  # sleep before answering anything
        self._subscriptions: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Event()

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES * 2)
        app.router.add_post("/push/{subscription_id}", self._push)
        # Cancel a hanging handler when the sender gives up, so stop() does not wait on it.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0,
                                     access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def new_subscription(self) -> dict[str, Any]:
        """A browser's ``PushSubscription.toJSON()`` for a fresh key pair and auth secret."""
        subscription_id = secrets.token_urlsafe(16)
        private_key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        self._subscriptions[subscription_id] = (private_key, auth)
        public = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": f"{self.origin}/push/{subscription_id}",
                "keys": {"p256dh": base64url.encode(public), "auth": base64url.encode(auth)}}

    async def wait_for(self, count: int, timeout: float = 10) -> list[ReceivedPush]:
        """Wait until at least ``count`` pushes arrived; the pushes so far."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return list(self.received)

    async def _push(self, request: web.Request) -> web.Response:
        subscription_id = request.match_info["subscription_id"]
        if self.hang_seconds:
            await asyncio.sleep(self.hang_seconds)
        try:
            push = await self._check(subscription_id, request)
        except Rejected as rejected:
            self.rejected.append(RejectedPush(subscription_id, rejected.status, rejected.reason))
            return web.Response(status=rejected.status, text=rejected.reason)
        if self.respond_with is not None:
            headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
            return web.Response(status=self.respond_with, headers=headers)
        self.received.append(push)
        self._arrived.set()
        return web.Response(status=201, headers={"Location": f"{self.origin}/message/1"})

    async def _check(self, subscription_id: str, request: web.Request) -> ReceivedPush:
        if subscription_id not in self._subscriptions:
            raise Rejected(410, "unknown subscription")
        claims = verify_vapid(request.headers.get("Authorization", ""), self.origin, time.time())
        ttl, topic = request.headers.get("TTL", ""), request.headers.get("Topic")
        urgency = request.headers.get("Urgency")
        if not ttl.isdigit():
            raise Rejected(400, f"TTL {ttl!r} is not a non-negative integer")
        if topic is not None and not TOPIC.fullmatch(topic):
            raise Rejected(400, f"Topic {topic!r} is not up to 32 base64url characters")
        if urgency is not None and urgency not in URGENCIES:
            raise Rejected(400, f"Urgency {urgency!r} is unknown")
        if request.headers.get("Content-Encoding") != "aes128gcm":
            raise Rejected(400, "Content-Encoding is not aes128gcm")
        body = await request.read()
        if len(body) > MAX_BODY_BYTES:
            raise Rejected(413, f"body of {len(body)} bytes")
        private_key, auth = self._subscriptions[subscription_id]
        try:
            plaintext = http_ece.decrypt(body, private_key=private_key, auth_secret=auth,
                                         version="aes128gcm")
            payload = json.loads(plaintext)
        except (http_ece.ECEException, InvalidTag, ValueError, struct.error) as error:
            raise Rejected(400, f"cannot decrypt: {error!r}") from None
        return ReceivedPush(subscription_id, int(ttl), topic, urgency, payload, claims)
