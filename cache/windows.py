"""Fixed-window counters in this process's memory: rate limits while Redis is unavailable.

Bounded: at most ``MAX_SUBJECTS`` counters, the least recently hit dropped first, so a flood
of distinct subjects costs memory only up to the bound while a busy subject keeps its count.
"""

from __future__ import annotations

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
