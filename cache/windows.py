"""What this process keeps in memory for when Redis cannot be asked: fixed-window rate-limit
counters, and its recent writers (read-your-writes, cache/recent_writes.py).

Bounded: at most ``MAX_SUBJECTS`` entries each, the least recently hit dropped first, so a
flood of distinct subjects costs memory only up to the bound while a busy one keeps its entry.
"""

from __future__ import annotations

import time

MAX_SUBJECTS = 50_000


class LocalWindows:
    def __init__(self, max_subjects: int = MAX_SUBJECTS) -> None:
        self.max_subjects = max_subjects
        # (scope, subject) -> (window start, attempts); dict order is least recently hit first
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}

    def hit(self, scope: str, subject: str, window_start: int) -> int:
        """Count one attempt in the window starting at ``window_start``; the attempts so far."""
        key = (scope, subject)
        start, attempts = self._counts.pop(key, (window_start, 0))
        attempts = attempts + 1 if start == window_start else 1
        self._counts[key] = (window_start, attempts)
        while len(self._counts) > self.max_subjects:
            del self._counts[next(iter(self._counts))]
        return attempts


class LocalRecentWrites:
    """This process's recent writers: user id -> monotonic time their window ends."""

    def __init__(self, max_users: int = MAX_SUBJECTS) -> None:
        self.max_users = max_users
        self._until: dict[int, float] = {}  # least recently written first

    def note(self, user_id: int, seconds: float) -> None:
        self._until.pop(user_id, None)
        self._until[user_id] = time.monotonic() + seconds
        while len(self._until) > self.max_users:
            del self._until[next(iter(self._until))]

    def wrote_recently(self, user_id: int) -> bool:
        until = self._until.get(user_id)
        return until is not None and time.monotonic() < until
