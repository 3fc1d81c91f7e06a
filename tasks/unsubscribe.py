"""Signed one-click unsubscribe links (RFC 8058): no login, so the link itself is the proof.

A token is ``base64url(payload) "." base64url(HMAC-SHA256)``; the payload is
``user_id:email_type:alert_id``. The MAC covers the encoded payload text under a purpose
prefix, so no other use of ``SECRET_KEY`` (admin sessions) yields a valid token and no
second spelling of the same bytes passes. Tokens do not expire: an old email's link must work.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from tasks import base64url
from tasks.mail_render import UNSUBSCRIBABLE_EMAIL_TYPES

PURPOSE = b"hireme-unsubscribe-v1."
MAX_TOKEN_LENGTH = 256
_TOKEN_SHAPE = re.compile(r"([A-Za-z0-9_-]{1,200})\.([A-Za-z0-9_-]{43})")
_PAYLOAD_SHAPE = re.compile(r"([1-9][0-9]{0,18}):([a-z_]{1,40}):([1-9][0-9]{0,18})?")


@dataclass(frozen=True)
class UnsubscribeTarget:
    """What a valid token turns off: one email type of one user, or one job alert."""

    user_id: int
    email_type: str
    alert_id: int | None = None


def make_unsubscribe_token(secret_key: str, user_id: int, email_type: str,
                           alert_id: int | None = None) -> str:
    """A token for ``email_type`` of ``user_id``; ``job_alert`` ones name the alert."""
    _check_target(UnsubscribeTarget(user_id, email_type, alert_id))
    payload = f"{user_id}:{email_type}:{'' if alert_id is None else alert_id}"
    encoded = base64url.encode(payload.encode("ascii"))
    return f"{encoded}.{_sign(secret_key, encoded)}"


def read_unsubscribe_token(secret_key: str, token: str) -> UnsubscribeTarget | None:
    """The target of a genuine token; None for anything malformed, tampered or foreign."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    shape = _TOKEN_SHAPE.fullmatch(token)
    if shape is None:
        return None
    encoded, signature = shape.groups()
    if not hmac.compare_digest(_sign(secret_key, encoded), signature):
        return None
    try:
        payload = base64url.decode(encoded).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    fields = _PAYLOAD_SHAPE.fullmatch(payload)
    if fields is None:
        return None
    user_id, email_type, alert_id = fields.groups()
    target = UnsubscribeTarget(int(user_id), email_type,
                               None if alert_id is None else int(alert_id))
    try:
        _check_target(target)
    except ValueError:
        return None
    return target


def unsubscribe_url(public_base_url: str, token: str) -> str:
    """The link for the ``List-Unsubscribe`` header and the email footer."""
    return f"{public_base_url.rstrip('/')}/api/v1/email/unsubscribe?{urlencode({'token': token})}"


def _check_target(target: UnsubscribeTarget) -> None:
    if target.email_type not in UNSUBSCRIBABLE_EMAIL_TYPES:
        raise ValueError(f"{target.email_type!r} emails cannot be unsubscribed from")
    if target.user_id < 1 or (target.alert_id is not None and target.alert_id < 1):
        raise ValueError("ids are positive integers")
    if (target.email_type == "job_alert") != (target.alert_id is not None):
        raise ValueError("a job_alert token, and only that, names its alert")


def _sign(secret_key: str, encoded_payload: str) -> str:
    mac = hmac.new(secret_key.encode(), PURPOSE + encoded_payload.encode("ascii"),
                   hashlib.sha256)
    return base64url.encode(mac.digest())
