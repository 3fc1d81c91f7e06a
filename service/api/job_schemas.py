"""Request and response bodies of jobs, applications and job alerts (see ``schemas``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from service.api.schemas import NOT_BLANK, Cursor, Id, Limit, Location, PublicProfile

# -- jobs and applications ------------------------------------------------------------------

EmploymentType = Literal["full_time", "part_time", "contract", "internship", "temporary"]
JobStatus = Literal["open", "closed"]
Salary = Annotated[int, Meta(ge=0, le=2_147_483_647)]
JobTitle = Annotated[str, Meta(min_length=1, max_length=200, pattern=NOT_BLANK)]
JobDescription = Annotated[str, Meta(min_length=1, max_length=20_000, pattern=NOT_BLANK)]
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
    employer_id: Id | None = None
    remote: bool | None = None
    q: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    limit: Limit = 20
    cursor: Cursor | None = None


class JobRow(Struct):
    """A job as stored and cached: what every caller sees alike (``Job`` less its per-user
    parts). Its ``status`` is as of when it was read: an open job whose ``expires_at`` passed
    since is closed now."""

    id: int
    employer_id: int
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
    created_at: datetime
    updated_at: datetime

    def expired_since_read(self, now: datetime) -> bool:
        return self.status == "open" and self.expires_at <= now


class JobFlags(Struct):
    """Which of ``jobs`` a user saved and which of ``employers`` they follow."""

    jobs: list[int]
    saved: list[int]
    employers: list[int]
    followed: list[int]

    def cover(self, jobs: list[int], employers: list[int]) -> bool:
        return set(jobs) <= set(self.jobs) and set(employers) <= set(self.employers)


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


# -- job alerts -----------------------------------------------------------------------------

AlertFrequency = Literal["daily", "weekly"]
ALERT_CRITERIA = ("q", "category", "location", "remote")


class JobAlertCreate(Struct):
    """A saved job search; bounds match the CHECK constraints on ``job_alerts``."""

    frequency: AlertFrequency
    q: Annotated[str, Meta(min_length=1, max_length=100, pattern=NOT_BLANK)] | None = None
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


