"""VAPID keys (RFC 8292) in the text forms people paste and browsers take.

``VAPID_PRIVATE_KEY`` may be the raw P-256 private scalar as base64url (32 bytes); the public
key browsers subscribe with (the "application server key") is the uncompressed point as
base64url (65 bytes). ``tasks.push.load_vapid_key`` reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tasks import base64url


@dataclass(frozen=True)
class VapidKeys:
    private: str  # VAPID_PRIVATE_KEY
    public: str  # the application server key


def new_vapid_keys() -> VapidKeys:
    """A fresh P-256 key pair, as ``run.py vapid`` prints it."""
    key = ec.generate_private_key(ec.SECP256R1())
    return VapidKeys(private=private_key_text(key), public=public_key_text(key.public_key()))


def private_key_text(key: ec.EllipticCurvePrivateKey) -> str:
    """The raw 32-byte private scalar, base64url."""
    return base64url.encode(key.private_numbers().private_value.to_bytes(32, "big"))


def public_key_text(key: ec.EllipticCurvePublicKey) -> str:
    """The uncompressed point (0x04, x, y), base64url."""
    return base64url.encode(key.public_bytes(serialization.Encoding.X962,
                                             serialization.PublicFormat.UncompressedPoint))
