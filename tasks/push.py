"""Sending one web push: encrypt, sign, POST, and judge what the push service answered.

pywebpush encrypts the JSON payload (aes128gcm) and POSTs it on the process's shared
aiohttp session. The VAPID header is signed here from a fresh claims dict per send:
pywebpush's helpers write ``aud``/``exp`` into a dict they are given and would reuse it.
Only allowlisted push-service origins are ever contacted (API.md, "Web push": no SSRF).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os.path
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from http_ece import ECEException
from py_vapid import Vapid02, VapidException
from pywebpush import WebPusher, WebPushException

from tasks import base64url
from tasks.outcome import Outcome
from tasks.settings import SettingError, TaskSettings
from tasks.webpush_keys import public_key_text

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 10.0  # the whole POST; passed to aiohttp and enforced around it
TIMEOUT_GRACE_SECONDS = 1.0  # the outer asyncio.timeout also covers encryption and signing
DEFAULT_TTL_SECONDS = 24 * 3600
VAPID_EXPIRY_SECONDS = 12 * 3600  # RFC 8292: at most 24 hours ahead
MAX_PAYLOAD_BYTES = 3993  # one 4096-byte aes128gcm record minus header (86), tag and delimiter
MAX_RETRY_AFTER_SECONDS = 24 * 3600
GONE = "subscription gone"  # reason prefix: the caller deletes the subscription
RETRY_STATUSES = frozenset({408, 429})  # and every 5xx

TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 section 5.4
BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=4)
def load_vapid_key(value: str) -> Vapid02:
    """VAPID_PRIVATE_KEY: a PEM file path (or PEM text), or the raw scalar as base64url."""
    value = value.strip()
    if not value:
        raise SettingError("VAPID_PRIVATE_KEY is empty: web push is not configured")
    if value.startswith("-----BEGIN"):
        key = _pem_private_key(value.encode())
    elif os.path.isfile(value):
        key = _pem_private_key(Path(value).read_bytes())
    elif BASE64URL.fullmatch(value):
        key = _raw_private_key(value)
    else:
        raise SettingError("VAPID_PRIVATE_KEY is neither an existing PEM file nor a base64url key")
    # no-strict: py_vapid's own `sub` regex refuses https: subjects with a path; Settings
    # has already checked the scheme.
    return Vapid02(key, conf={"no-strict": True})


def _pem_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SettingError("VAPID_PRIVATE_KEY: the PEM is not an unencrypted private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise SettingError("VAPID_PRIVATE_KEY must be a P-256 (prime256v1) EC key")
    return key


def _raw_private_key(value: str) -> ec.EllipticCurvePrivateKey:
    try:
        raw = base64url.decode(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise SettingError("VAPID_PRIVATE_KEY must be 32 bytes as base64url (`run.py vapid`)")
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError:
        raise SettingError("VAPID_PRIVATE_KEY is not a valid P-256 private key") from None


def vapid_public_key(vapid: Vapid02) -> str:
    """The application server key browsers subscribe with: the uncompressed point, base64url."""
    public: ec.EllipticCurvePublicKey = vapid.public_key
    return public_key_text(public)


def endpoint_origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a plain http(s) URL, default port dropped; else None.

    None for anything a browser and our HTTP client might read differently: userinfo,
    fragments, whitespace or control characters, non-ASCII, an invalid port.
    """
    if not url.isascii() or any(char <= " " or char == "\x7f" for char in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if parts.scheme not in DEFAULT_PORTS or "@" in parts.netloc or "#" in url:
        return None
    if not parts.hostname or "\\" in parts.netloc:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def endpoint_allowed(endpoint: str, allowlist: Sequence[str]) -> bool:
    """Whether the endpoint's origin is exactly one of the allowlisted origins."""
    origin = endpoint_origin(endpoint)
    if origin is None:
        return False
    return any(_allowlisted_origin(allowed) == origin for allowed in allowlist)


def _allowlisted_origin(entry: str) -> str | None:
    """An allowlist entry's origin; None for an entry with a path or query (no origin)."""
    entry = entry.strip()
    if entry.endswith("/"):
        entry = entry[:-1]
    if "?" in entry or "/" in entry.partition("://")[2]:
        return None
    return endpoint_origin(entry)


def push_topic(topic: str) -> str:
    """A valid Topic header (≤ 32 base64url characters); others are hashed into one."""
    if TOPIC.fullmatch(topic):
        return topic
    return base64url.encode(hashlib.sha256(topic.encode()).digest())[:32]


def is_subscription_gone(outcome: Outcome) -> bool:
    """The push service said the subscription no longer exists (404/410): delete it."""
    return outcome.status == "dead" and outcome.reason.startswith(GONE)


def parse_retry_after(value: str | None) -> int | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP-date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(int(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = max(0, math.ceil(when.timestamp() - time.time()))
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


def judge_status(status: int, retry_after: str | None) -> Outcome:
    """What the push service's answer means for the delivery row."""
    if 200 <= status < 300:
        return Outcome.sent()
    if status in (404, 410):
        return Outcome.dead(f"{GONE}: push {status}")
    if status in RETRY_STATUSES or status >= 500:
        return Outcome.retry(f"push {status}", retry_after=parse_retry_after(retry_after))
    return Outcome.dead(f"push {status}: refused")  # 400, 403 (VAPID), 413 (too large), ...


class PushSender:
    """Sends one push per call; never raises for a delivery failure, returns an Outcome."""

    def __init__(self, settings: TaskSettings, session: aiohttp.ClientSession, *,
                 timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self.session = session
        self.timeout = timeout
        self.subject = settings.vapid_subject
        self.allowlist = settings.push_endpoint_allowlist
        # Without a key the process still starts (email works); each push is then dead.
        self.vapid = (load_vapid_key(settings.vapid_private_key)
                      if settings.vapid_private_key else None)

    async def send(self, endpoint: str, p256dh: str, auth: str, payload: Mapping[str, Any],
                   *, topic: str, ttl: int = DEFAULT_TTL_SECONDS) -> Outcome:
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        origin = endpoint_origin(endpoint)
        if origin is None or not endpoint_allowed(endpoint, self.allowlist):
            outcome = Outcome.dead("push endpoint is not an allowlisted push service")
        elif self.vapid is None:
            outcome = Outcome.dead("web push is not configured (VAPID_PRIVATE_KEY)")
        elif not _keys_valid(p256dh, auth):
            outcome = Outcome.dead("push subscription keys are invalid")
        elif len(data) > MAX_PAYLOAD_BYTES:
            outcome = Outcome.dead(f"push payload too large ({len(data)} bytes)")
        else:
            outcome = await self._post(self.vapid, endpoint, origin, p256dh, auth, data,
                                       topic=push_topic(topic), ttl=ttl)
        _log_outcome(origin, outcome)
        return outcome

    async def _post(self, vapid: Vapid02, endpoint: str, origin: str, p256dh: str, auth: str,
                    data: bytes, *, topic: str, ttl: int) -> Outcome:
        subscription = {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}
        try:
            headers = {"Topic": topic, "Urgency": "normal", **self._authorization(vapid, origin)}
            async with asyncio.timeout(self.timeout + TIMEOUT_GRACE_SECONDS):
                pusher = WebPusher(subscription, aiohttp_session=self.session)
                response = await pusher.send_async(
                    data=data, headers=headers, ttl=ttl, content_encoding="aes128gcm",
                    timeout=aiohttp.ClientTimeout(total=self.timeout))
        except TimeoutError:
            return Outcome.retry("push timeout")
        except (aiohttp.ClientError, OSError) as error:
            return Outcome.retry(f"push connection failed: {type(error).__name__}")
        except VapidException as error:
            return Outcome.dead(f"vapid: {error}")
        except (WebPushException, ECEException, ValueError) as error:
            return Outcome.dead(f"push encryption failed: {type(error).__name__}")
        return judge_status(int(response.status), response.headers.get("Retry-After"))

    def _authorization(self, vapid: Vapid02, origin: str) -> dict[str, str]:
        """``Authorization: vapid t=<JWT>,k=<key>`` from claims built for this send alone."""
        claims = {"sub": self.subject, "aud": origin,
                  "exp": int(time.time()) + VAPID_EXPIRY_SECONDS}
        return {"Authorization": str(vapid.sign(claims)["Authorization"])}


def _keys_valid(p256dh: str, auth: str) -> bool:
    """A P-256 public point and a 16-byte secret, as a browser's PushSubscription has."""
    if not (BASE64URL.fullmatch(p256dh) and BASE64URL.fullmatch(auth)):
        return False
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), base64url.decode(p256dh))
        return len(base64url.decode(auth)) == 16
    except ValueError:  # binascii.Error included
        return False


def _log_outcome(origin: str | None, outcome: Outcome) -> None:
    # Only the origin: the endpoint's path is the subscription's capability.
    if outcome.status == "sent":
        log.info("push sent to %s", origin)
    else:
        log.warning("push to %s: %s (%s)", origin, outcome.status, outcome.reason)
