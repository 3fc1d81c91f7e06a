"""Request and response bodies of reports (see ``service.api.schemas``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

from service.api.schemas import NOT_BLANK, Id

TargetType = Literal["user", "post", "comment", "job"]
Reason = Annotated[str, Meta(min_length=1, max_length=1000, pattern=NOT_BLANK)]


class ReportCreate(Struct):
    target_type: TargetType
    target_id: Id
    reason: Reason


class Report(Struct):
    id: int
    target_type: TargetType
    target_id: int
    reason: str
    status: Literal["open", "resolved"]
    created_at: datetime
