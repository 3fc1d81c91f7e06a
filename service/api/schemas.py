"""Request and response bodies, declared once.

These classes drive validation (``service.validation``), JSON encoding and the OpenAPI
document. Bounds here match the CHECK constraints in ``sql/migrations``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

T = TypeVar("T")

# The pattern that says "not blank"; validation words its failure as a person would.
NOT_BLANK = r"\S"
BIGINT_MAX = 9_223_372_036_854_775_807

Id = Annotated[int, Meta(ge=1, le=BIGINT_MAX)]
Email = Annotated[str, Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                            description="an email address")]
Password = Annotated[str, Meta(min_length=8, max_length=128)]
AnyPassword = Annotated[str, Meta(min_length=1, max_length=128)]
Name = Annotated[str, Meta(min_length=1, max_length=100, pattern=NOT_BLANK)]
Headline = Annotated[str, Meta(max_length=200)]
Bio = Annotated[str, Meta(max_length=5000)]
Location = Annotated[str, Meta(max_length=200)]
Skill = Annotated[str, Meta(min_length=1, max_length=50, pattern=NOT_BLANK)]
Skills = Annotated[list[Skill], Meta(max_length=50)]
Role = Literal["job_seeker", "employer"]
OpaqueToken = Annotated[str, Meta(min_length=1, max_length=200)]
Limit = Annotated[int, Meta(ge=1, le=100)]
Cursor = Annotated[str, Meta(max_length=500)]
SearchText = Annotated[str, Meta(max_length=100)]


# -- requests -------------------------------------------------------------------------------

class RegisterRequest(Struct):
    email: Email
    password: Password
    first_name: Name
    last_name: Name
    role: Role


class LoginRequest(Struct):
    email: Annotated[str, Meta(max_length=254)]
    password: AnyPassword


class VerifyEmailRequest(Struct):
    token: OpaqueToken


class PasswordChangeRequest(Struct):
    current_password: AnyPassword
    new_password: Password


class PasswordResetRequest(Struct):
    email: Annotated[str, Meta(max_length=254)]


class PasswordResetConfirmRequest(Struct):
    token: OpaqueToken
    new_password: Password


class ProfileUpdate(Struct):
    first_name: Name | UnsetType = UNSET
    last_name: Name | UnsetType = UNSET
    headline: Headline | UnsetType = UNSET
    bio: Bio | UnsetType = UNSET
    location: Location | UnsetType = UNSET
    skills: Skills | UnsetType = UNSET
    available_for_hire: bool | UnsetType = UNSET


class PageQuery(Struct):
    limit: Limit = 20
    cursor: Cursor | None = None


class UserSearchQuery(Struct):
    q: SearchText | None = None
    available_for_hire: bool | None = None
    limit: Limit = 20
    cursor: Cursor | None = None


NotificationType = Literal["follow", "post_like", "post_comment", "application_received",
                           "application_status", "job_closed", "message"]


class NotificationsQuery(Struct):
    unread_only: bool = False
    type: NotificationType | None = None
    limit: Limit = 20
    cursor: Cursor | None = None


class Preferences(Struct):
    email: dict[NotificationType, bool] = {}
    push: dict[NotificationType, bool] = {}


Base64Url = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]+={0,2}$")]


class PushKeys(Struct):
    p256dh: Annotated[Base64Url, Meta(min_length=80, max_length=100,
                                      description="the browser's P-256 public key (65 bytes)")]
    auth: Annotated[Base64Url, Meta(min_length=16, max_length=30,
                                    description="the 16-byte auth secret")]


class PushSubscriptionIn(Struct, rename={"expiration_time": "expirationTime"}):
    """A browser ``PushSubscription.toJSON()``."""

    endpoint: Annotated[str, Meta(min_length=1, max_length=2000)]
    keys: PushKeys
    expiration_time: Annotated[int, Meta(ge=0, le=BIGINT_MAX)] | None = None


class PushEndpoint(Struct):
    endpoint: Annotated[str, Meta(min_length=1, max_length=2000)]


class UnsubscribeQuery(Struct):
    token: Annotated[str, Meta(min_length=1, max_length=256)]


# -- responses ------------------------------------------------------------------------------

class PublicProfile(Struct):
    id: int
    first_name: str
    last_name: str
    role: Role
    headline: str
    bio: str
    location: str
    skills: list[str]
    available_for_hire: bool
    followers_count: int
    following_count: int
    followed_by_me: bool
    created_at: datetime


class OwnUser(PublicProfile):
    email: str
    email_verified: bool


class Notification(Struct):
    id: int
    type: NotificationType
    actor: PublicProfile | None
    related_id: int | None
    data: dict[str, Any]
    is_read: bool
    created_at: datetime


class VapidKey(Struct):
    key: str


class Count(Struct):
    count: int


class AuthAnswer(Struct):
    user: OwnUser
    token: str


class MeAnswer(Struct):
    user: OwnUser
    unread_notifications: int
    unread_messages: int


class Page(Struct, Generic[T]):
    items: list[T]
    next_cursor: str | None


class Health(Struct):
    status: Literal["ok", "down"]
    db: Literal["ok", "down"]
    redis: Literal["ok", "down"]
    deliveries: Literal["ok", "lagging", "unknown"]


class ErrorDetail(Struct, omit_defaults=True):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorAnswer(Struct):
    error: ErrorDetail


def profile_fields() -> tuple[str, ...]:
    return tuple(field.name for field in msgspec.structs.fields(PublicProfile))
