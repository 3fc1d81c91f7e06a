"""Request and response bodies, declared once.

These classes drive validation (``service.validation``), JSON encoding and the OpenAPI
document. Bounds here match the CHECK constraints in ``sql/migrations``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

T = TypeVar("T")

Email = Annotated[str, Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                            description="an email address (case-insensitive)")]
Password = Annotated[str, Meta(min_length=8, max_length=128)]
AnyPassword = Annotated[str, Meta(min_length=1, max_length=128)]
Name = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")]
Headline = Annotated[str, Meta(max_length=200)]
Bio = Annotated[str, Meta(max_length=5000)]
Location = Annotated[str, Meta(max_length=200)]
Skill = Annotated[str, Meta(min_length=1, max_length=50, pattern=r"\S")]
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
    expiration_time: int | None = None


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


# -- jobs and applications ------------------------------------------------------------------

EmploymentType = Literal["full_time", "part_time", "contract", "internship", "temporary"]
JobStatus = Literal["open", "closed"]
Salary = Annotated[int, Meta(ge=0, le=2_147_483_647)]
JobTitle = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]
JobDescription = Annotated[str, Meta(min_length=1, max_length=20_000, pattern=r"\S")]
Category = Annotated[str, Meta(max_length=100)]
HttpUrl = Annotated[str, Meta(max_length=2000, pattern=r"^https?://[^\s/$.?#][^\s]*$")]
ApplicationStatus = Literal["submitted", "reviewed", "interview", "offered", "hired",
                            "rejected", "withdrawn"]


def _salary_problems(salary_min: int | None, salary_max: int | None) -> dict[str, str]:
    if salary_min is not None and salary_max is not None and salary_min > salary_max:
        return {"salary_min": "must not exceed salary_max"}
    return {}


def _expiry_problems(expires_at: datetime | None) -> dict[str, str]:
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= _now()):
        return {"expires_at": "must be a future RFC 3339 timestamp with a time zone"}
    return {}


def _now() -> datetime:
    return datetime.now(UTC)


class JobCreate(Struct):
    title: JobTitle
    description: JobDescription
    employment_type: EmploymentType
    category: Category = ""
    location: Location = ""
    remote: bool = False
    salary_min: Salary | None = None
    salary_max: Salary | None = None
    expires_at: datetime | None = None

    def check(self) -> dict[str, str]:
        return _salary_problems(self.salary_min, self.salary_max) | \
            _expiry_problems(self.expires_at)


class JobUpdate(Struct):
    title: JobTitle | UnsetType = UNSET
    description: JobDescription | UnsetType = UNSET
    employment_type: EmploymentType | UnsetType = UNSET
    category: Category | UnsetType = UNSET
    location: Location | UnsetType = UNSET
    remote: bool | UnsetType = UNSET
    salary_min: Salary | UnsetType | None = UNSET
    salary_max: Salary | UnsetType | None = UNSET
    expires_at: datetime | UnsetType = UNSET
    status: JobStatus | UnsetType = UNSET

    def check(self) -> dict[str, str]:
        expires_at = None if self.expires_at is UNSET else self.expires_at
        return _expiry_problems(expires_at)


class JobsQuery(Struct):
    status: JobStatus = "open"
    category: Category | None = None
    location: Location | None = None
    employer_id: Annotated[int, Meta(ge=1)] | None = None
    remote: bool | None = None
    q: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    limit: Limit = 20
    cursor: Cursor | None = None


class Job(Struct):
    id: int
    employer: PublicProfile
    title: str
    description: str
    category: str
    location: str
    employment_type: EmploymentType
    remote: bool
    salary_min: int | None
    salary_max: int | None
    status: JobStatus
    expires_at: datetime
    applications_count: int
    saved_by_me: bool
    created_at: datetime
    updated_at: datetime


class ApplicationCreate(Struct):
    cover_letter: Annotated[str, Meta(max_length=10_000)] = ""
    resume_url: HttpUrl | None = None


class ApplicationUpdate(Struct):
    status: Literal["reviewed", "interview", "offered", "hired", "rejected"]


class ApplicationsQuery(Struct):
    status: ApplicationStatus | None = None
    limit: Limit = 20
    cursor: Cursor | None = None


class Application(Struct):
    id: int
    job_id: int
    applicant_id: int
    cover_letter: str
    resume_url: str | None
    status: ApplicationStatus
    created_at: datetime
    updated_at: datetime


class ApplicationWithApplicant(Application):
    applicant: PublicProfile


class ApplicationWithJob(Application):
    job: Job


class StatusChange(Struct):
    status: ApplicationStatus
    changed_by: int | None
    created_at: datetime


class ApplicationWithHistory(Application):
    history: list[StatusChange]


# -- messages -------------------------------------------------------------------------------

UserId = Annotated[int, Meta(ge=1, le=9_223_372_036_854_775_807)]
MessageBody = Annotated[str, Meta(min_length=1, max_length=5000, pattern=r"\S")]


class ConversationCreate(Struct):
    user_id: UserId


class MessageCreate(Struct):
    body: MessageBody


class Message(Struct):
    id: int
    conversation_id: int
    sender_id: int
    receiver_id: int
    body: str
    is_read: bool
    created_at: datetime


class Conversation(Struct):
    id: int
    other_user: PublicProfile
    last_message: Message | None
    unread_count: int
    updated_at: datetime


# -- job alerts -----------------------------------------------------------------------------

AlertFrequency = Literal["daily", "weekly"]
ALERT_CRITERIA = ("q", "category", "location", "remote")


class JobAlertCreate(Struct):
    """A saved job search; bounds match the CHECK constraints on ``job_alerts``."""

    frequency: AlertFrequency
    q: Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")] | None = None
    category: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    location: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    remote: bool | None = None

    def check(self) -> dict[str, str]:
        if all(getattr(self, name) is None for name in ALERT_CRITERIA):
            return dict.fromkeys(ALERT_CRITERIA, "give at least one of q, category, "
                                                  "location, remote")
        return {}


class JobAlert(Struct):
    id: int
    q: str | None
    category: str | None
    location: str | None
    remote: bool | None
    frequency: AlertFrequency
    last_sent_at: datetime | None
    created_at: datetime


class JobAlertList(Struct):
    items: list[JobAlert]


# -- posts, comments and the home feed ------------------------------------------------------

PostType = Literal["text", "job"]
PostBody = Annotated[str, Meta(min_length=1, max_length=5000, pattern=r"\S")]
CommentBody = Annotated[str, Meta(min_length=1, max_length=2000, pattern=r"\S")]
JobId = Annotated[int, Meta(ge=1, le=9_223_372_036_854_775_807)]


class PostCreate(Struct):
    body: PostBody
    post_type: PostType = "text"
    related_job_id: JobId | None = None

    def check(self) -> dict[str, str]:
        if self.post_type == "job" and self.related_job_id is None:
            return {"related_job_id": "is required for a job post"}
        return {}


class CommentCreate(Struct):
    body: CommentBody


class Post(Struct):
    id: int
    author: PublicProfile
    body: str
    post_type: PostType
    related_job_id: int | None
    likes_count: int
    comments_count: int
    liked_by_me: bool
    created_at: datetime


class Comment(Struct):
    id: int
    post_id: int
    author: PublicProfile
    body: str
    created_at: datetime
