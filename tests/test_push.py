"""Web push sending, against a real push service on the test loop that decrypts and verifies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

import tasks.push
from service.config import Settings
from tasks import base64url
from tasks.outcome import Outcome
from tasks.push import (
    TOPIC,
    PushSender,
    endpoint_allowed,
    is_subscription_gone,
    load_vapid_key,
    parse_retry_after,
    push_topic,
    vapid_public_key,
)
from tasks.settings import SettingError
from tests.push_service import PushService, verify_vapid

SUBJECT = "mailto:ops@hireme.test"
PAYLOAD = {"type": "message", "title": "New message", "body": "Grace: héllo ✓",
           "url": "http://hireme.test/conversations/3", "notification_id": 42}


def new_raw_key() -> tuple[str, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    return base64url.encode(raw), key


def public_b64(key: ec.EllipticCurvePrivateKey) -> str:
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    return base64url.encode(point)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def vapid_key() -> tuple[str, ec.EllipticCurvePrivateKey]:
    return new_raw_key()


@pytest.fixture
def settings(push_service: PushService, vapid_key: tuple[str, Any]) -> Settings:
    return Settings(secret_key="x" * 40, vapid_private_key=vapid_key[0], vapid_subject=SUBJECT,
                    push_endpoint_allowlist=(push_service.origin,))


@pytest.fixture
def sender(settings: Settings, session: aiohttp.ClientSession) -> PushSender:
    return PushSender(settings, session, timeout=5.0)  # a loaded machine is slow, not broken


async def send(sender: PushSender, subscription: dict[str, Any],
               payload: dict[str, Any] = PAYLOAD, **options: Any) -> Outcome:
    options.setdefault("topic", "message-42")
    return await sender.send(subscription["endpoint"], subscription["keys"]["p256dh"],
                             subscription["keys"]["auth"], payload, **options)


# ---- delivery ---------------------------------------------------------------------------


async def test_push_is_decrypted_by_the_service_with_ttl_topic_and_vapid_claims(
        sender: PushSender, push_service: PushService,
        vapid_key: tuple[str, ec.EllipticCurvePrivateKey]) -> None:
    subscription = push_service.new_subscription()
    before = time.time()

    outcome = await send(sender, subscription, ttl=3600)

    assert outcome.status == "sent"
    [push] = await push_service.wait_for(1)
    assert push.payload == PAYLOAD
    assert push.ttl == 3600
    assert push.topic == "message-42"
    assert push.urgency == "normal"
    assert push.vapid_claims["aud"] == push_service.origin
    assert push.vapid_claims["sub"] == SUBJECT
    assert before + 12 * 3600 - 1 <= push.vapid_claims["exp"] <= time.time() + 12 * 3600
    assert push_service.rejected == []


async def test_ttl_defaults_to_a_day_never_zero(sender: PushSender,
                                                push_service: PushService) -> None:
    await send(sender, push_service.new_subscription())

    [push] = await push_service.wait_for(1)
    assert push.ttl == tasks.push.DEFAULT_TTL_SECONDS > 0


async def test_each_send_signs_fresh_claims(sender: PushSender,
                                            push_service: PushService) -> None:
    """pywebpush writes aud/exp into the claims dict it is given: a reused dict would carry
    the first send's expiry into every later one."""
    subscription = push_service.new_subscription()
    assert (await send(sender, subscription)).status == "sent"
    await asyncio.sleep(1.1)  # exp has one-second resolution
    assert (await send(sender, subscription)).status == "sent"

    first, second = await push_service.wait_for(2)
    assert second.vapid_claims["exp"] > first.vapid_claims["exp"]
    assert push_service.rejected == []


async def test_an_invalid_topic_is_hashed_into_a_valid_stable_one(
        sender: PushSender, push_service: PushService) -> None:
    subscription = push_service.new_subscription()
    topic = "application_status:job 17/user 9 — a long human topic"

    await send(sender, subscription, topic=topic)
    await send(sender, subscription, topic=topic)

    first, second = await push_service.wait_for(2)
    assert first.topic == second.topic == push_topic(topic)
    assert first.topic is not None and TOPIC.fullmatch(first.topic)
    assert push_topic("short-Topic_1") == "short-Topic_1"


# ---- push service answers -----------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_subscription_is_dead_and_marked_for_deletion(
        sender: PushSender, push_service: PushService, status: int) -> None:
    push_service.respond_with = status

    outcome = await send(sender, push_service.new_subscription())

    assert outcome.status == "dead"
    assert is_subscription_gone(outcome)


async def test_429_is_retried_after_the_requested_delay(sender: PushSender,
                                                        push_service: PushService) -> None:
    push_service.respond_with, push_service.retry_after = 429, 7

    outcome = await send(sender, push_service.new_subscription())

    assert (outcome.status, outcome.retry_after) == ("retry", 7)
    assert not is_subscription_gone(outcome)


async def test_server_error_is_retried_and_keeps_the_subscription(
        sender: PushSender, push_service: PushService) -> None:
    push_service.respond_with = 500

    outcome = await send(sender, push_service.new_subscription())

    assert outcome.status == "retry"
    assert not is_subscription_gone(outcome)


@pytest.mark.parametrize("status", [400, 403, 413])
async def test_other_refusals_are_dead_but_keep_the_subscription(
        sender: PushSender, push_service: PushService, status: int) -> None:
    push_service.respond_with = status

    outcome = await send(sender, push_service.new_subscription())

    assert outcome.status == "dead"
    assert not is_subscription_gone(outcome)


async def test_a_hanging_push_service_times_out_into_a_retry(
        settings: Settings, session: aiohttp.ClientSession, push_service: PushService) -> None:
    push_service.hang_seconds = 5
    sender = PushSender(settings, session, timeout=0.5)
    started = time.monotonic()

    outcome = await send(sender, push_service.new_subscription())

    assert outcome.status == "retry"
    assert time.monotonic() - started < 2


async def test_a_push_service_that_is_down_is_retried(sender: PushSender,
                                                      push_service: PushService) -> None:
    subscription = push_service.new_subscription()
    await push_service.stop()

    outcome = await send(sender, subscription)

    assert outcome.status == "retry"


# ---- refused before sending ---------------------------------------------------------------


async def test_endpoints_off_the_allowlist_are_never_contacted(
        settings: Settings, session: aiohttp.ClientSession, push_service: PushService) -> None:
    other_origin = replace(settings, push_endpoint_allowlist=("https://push.example",))
    sender = PushSender(other_origin, session)

    outcome = await send(sender, push_service.new_subscription())

    assert outcome.status == "dead"
    assert not push_service.received and not push_service.rejected


async def test_invalid_keys_and_oversized_payloads_are_dead_without_a_request(
        sender: PushSender, push_service: PushService) -> None:
    subscription = push_service.new_subscription()
    bad_point = {**subscription, "keys": {**subscription["keys"], "p256dh": "BA" + "A" * 85}}
    short_auth = {**subscription, "keys": {**subscription["keys"], "auth": "AAAA"}}

    outcomes = [await send(sender, bad_point), await send(sender, short_auth),
                await send(sender, subscription, {"body": "x" * 4000})]

    assert [outcome.status for outcome in outcomes] == ["dead"] * 3
    assert not push_service.received and not push_service.rejected


async def test_without_a_vapid_key_pushes_are_dead(settings: Settings,
                                                   session: aiohttp.ClientSession,
                                                   push_service: PushService) -> None:
    unconfigured = replace(settings, vapid_private_key="")

    outcome = await send(PushSender(unconfigured, session), push_service.new_subscription())

    assert outcome.status == "dead"
    assert not push_service.received and not push_service.rejected


# ---- the push service's own checks --------------------------------------------------------


async def test_the_service_rejects_a_jwt_signed_by_another_key_than_k(
        push_service: PushService, session: aiohttp.ClientSession) -> None:
    subscription = push_service.new_subscription()
    signer, advertised = Vapid02(), Vapid02()
    signer.generate_keys()
    advertised.generate_keys()
    claims = {"sub": SUBJECT, "aud": push_service.origin, "exp": int(time.time()) + 3600}
    token = signer.sign(claims)["Authorization"].split("t=", 1)[1].split(",k=")[0]
    authorization = f"vapid t={token},k={vapid_public_key(advertised)}"

    async with session.post(subscription["endpoint"], data=b"x", headers={
            "Authorization": authorization, "TTL": "60",
            "Content-Encoding": "aes128gcm"}) as response:
        assert response.status == 401

    [rejected] = push_service.rejected
    assert "signature" in rejected.reason
    assert push_service.received == []


def test_vapid_check_refuses_wrong_audience_and_stale_or_far_expiry() -> None:
    vapid = Vapid02()
    vapid.generate_keys()
    now = time.time()

    def header(aud: str, exp: float) -> str:
        return str(vapid.sign({"sub": SUBJECT, "aud": aud, "exp": int(exp)})["Authorization"])

    assert verify_vapid(header("http://a.test", now + 60), "http://a.test", now)["sub"]
    for aud, exp in [("http://b.test", now + 60), ("http://a.test", now - 1),
                     ("http://a.test", now + 25 * 3600)]:
        with pytest.raises(Exception, match="vapid"):
            verify_vapid(header(aud, exp), "http://a.test", now)


# ---- keys, allowlist, Retry-After ----------------------------------------------------------


def test_load_vapid_key_accepts_raw_base64url_and_pem_file(tmp_path: Path) -> None:
    raw, key = new_raw_key()
    pem_path = tmp_path / "vapid.pem"
    pem_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

    from_raw, from_pem = load_vapid_key(raw), load_vapid_key(str(pem_path))

    assert vapid_public_key(from_raw) == vapid_public_key(from_pem) == public_b64(key)
    assert len(base64url.decode(vapid_public_key(from_raw))) == 65


@pytest.mark.parametrize("value", ["", "not a key!", "AAAA", "/no/such/vapid.pem",
                                   "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"])
def test_load_vapid_key_refuses_anything_else(value: str) -> None:
    with pytest.raises(SettingError, match="VAPID_PRIVATE_KEY"):
        load_vapid_key(value)


ALLOWLIST = ("https://push.example", "http://127.0.0.1:8443")


@pytest.mark.parametrize("endpoint", [
    "https://push.example/wpush/v2/abc",
    "https://PUSH.example:443/x",
    "http://127.0.0.1:8443/push/1",
])
def test_endpoint_allowed_accepts_listed_origins(endpoint: str) -> None:
    assert endpoint_allowed(endpoint, ALLOWLIST)


@pytest.mark.parametrize("endpoint", [
    "https://evil.test/wpush",
    "http://push.example/wpush",  # http, not https
    "https://push.example:8443/wpush",  # another port
    "http://127.0.0.1:8444/push/1",
    "https://127.0.0.1:8443/push/1",
    "https://push.example@evil.test/",  # userinfo: the host is evil.test
    "https://user:pw@push.example/",
    "https://push.example.evil.test/",
    "https://push.example/x#frag",
    "ftp://push.example/",
    "https://push.example\\@evil.test/",
    "https://push.exa\tmple/",
    "https://[::1/",
    "not a url",
])
def test_endpoint_allowed_rejects_everything_else(endpoint: str) -> None:
    assert not endpoint_allowed(endpoint, ALLOWLIST)


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)

    assert parse_retry_after("7") == 7
    assert parse_retry_after(later) in range(118, 122)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
