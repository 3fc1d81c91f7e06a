"""What a delivery attempt came to; the queue turns it into the row's next state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["sent", "retry", "dead", "skipped"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str = ""
    retry_after: float | None = None  # seconds the peer asked us to wait (429 Retry-After)

    @classmethod
    def sent(cls) -> Outcome:
        return cls("sent")

    @classmethod
    def retry(cls, reason: str, retry_after: float | None = None) -> Outcome:
        return cls("retry", reason, retry_after)

    @classmethod
    def dead(cls, reason: str) -> Outcome:
        return cls("dead", reason)

    @classmethod
    def skipped(cls, reason: str) -> Outcome:
        return cls("skipped", reason)
