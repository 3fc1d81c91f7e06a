"""How many rows each seeded table gets, and the shared tools of the row generators.

Counts are declared for scale 1 and multiplied by the scale, so ``--scale 0.1`` is a tenth of
every table. Skewed quantities (followers per user, likes per post, applications per job)
come from ``spread``: an exact total spread over items by Zipf-like weights, with a cap.
"""

from __future__ import annotations

import random
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

# Rows per table at scale 1 (ISSUE 10: "100k users, 200k jobs, 1M applications, ...").
SCALE_1 = {
    "users": 100_000,
    "jobs": 200_000,
    "job_applications": 1_000_000,
    "saved_jobs": 300_000,
    "posts": 1_000_000,  # one per job (its announcement) plus text posts
    "post_likes": 3_000_000,
    "post_comments": 500_000,
    "follows": 2_000_000,
    "conversations": 200_000,
    "messages": 1_000_000,
    "notifications": 5_000_000,
}
EMPLOYER_SHARE = 10  # every 10th user is an employer
MIN_USERS = 20  # below this the skewed distributions have nothing to skew over
TOKEN_POOL_SIZE = 1_000
CHUNK = 100_000  # rows drawn per random.choices call


@dataclass(frozen=True)
class Plan:
    scale: float
    seed: int
    anchor: int  # epoch seconds all seeded times are relative to ("now" at seeding)
    counts: dict[str, int]

    @property
    def users(self) -> int:
        return self.counts["users"]

    def count(self, table: str) -> int:
        return self.counts[table]


def make_plan(scale: float, seed: int, anchor: int) -> Plan:
    if scale <= 0:
        raise ValueError("scale must be positive")
    counts = {table: max(1, round(rows * scale)) for table, rows in SCALE_1.items()}
    counts["users"] = max(MIN_USERS, counts["users"])
    users = counts["users"]
    # Caps that keep unique pairs possible at tiny scales.
    counts["follows"] = min(counts["follows"], users * (users - 1) // 4)
    counts["conversations"] = min(counts["conversations"], users * (users - 1) // 4)
    counts["messages"] = max(counts["messages"], counts["conversations"])
    counts["posts"] = max(counts["posts"], counts["jobs"])
    seekers = users - employer_count(users)
    counts["job_applications"] = min(counts["job_applications"], counts["jobs"] * seekers // 4)
    counts["saved_jobs"] = min(counts["saved_jobs"], counts["jobs"] * users // 4)
    counts["post_likes"] = min(counts["post_likes"], counts["posts"] * users // 4)
    return Plan(scale=scale, seed=seed, anchor=anchor, counts=counts)


def employer_count(users: int) -> int:
    return users // EMPLOYER_SHARE


def is_employer(user_id: int) -> bool:
    return user_id % EMPLOYER_SHARE == 0


def table_rng(plan: Plan, table: str) -> random.Random:
    """A generator per table, so each table's rows depend only on the seed (and the plan)."""
    return random.Random(f"hireme-seed:{plan.seed}:{table}")


def spread(rng: random.Random, total: int, cumulative: Sequence[float], cap: int,
           minimum: int = 0) -> array[int]:
    """Counts per item summing exactly to ``total``, each in ``minimum..cap``, drawn by weight.

    Draws that would pass an item's cap are drawn again, so the heavy head saturates at the
    cap and the rest of the mass spreads over the tail, like a real power law with a ceiling.
    """
    size = len(cumulative)
    if not size * minimum <= total <= size * cap:
        raise ValueError("total cannot be spread within the bounds")
    counts = array("q", [minimum]) * size
    remaining = total - size * minimum
    items = range(size)
    while remaining:
        for index in rng.choices(items, cum_weights=cumulative, k=min(remaining, CHUNK)):
            if counts[index] < cap:
                counts[index] += 1
                remaining -= 1
    return counts


def shuffled_cumulative(rng: random.Random, size: int, exponent: float) -> list[float]:
    """Zipf weights over ``size`` items in a random order (so heavy items are anywhere)."""
    weights = [1.0 / (rank + 1) ** exponent for rank in range(size)]
    rng.shuffle(weights)
    total = 0.0
    cumulative = []
    for weight in weights:
        total += weight
        cumulative.append(total)
    return cumulative


class Clock:
    """Formats epoch seconds for COPY cheaply: the hour prefix is cached, seconds appended."""

    def __init__(self) -> None:
        self._hours: dict[int, str] = {}

    def format(self, epoch: int) -> str:
        hour, rest = divmod(epoch, 3600)
        prefix = self._hours.get(hour)
        if prefix is None:
            prefix = time.strftime("%Y-%m-%d %H:", time.gmtime(hour * 3600))
            self._hours[hour] = prefix
        minute, second = divmod(rest, 60)
        return f"{prefix}{minute:02d}:{second:02d}+00"


@dataclass
class World:
    """What later tables need to know about earlier ones (filled as the rows are made)."""

    job_times: array[int]
    job_employers: array[int]
    job_titles: list[str]
    rare_words: list[str]  # the long-tail search words
    application_counts: array[int]
    post_times: array[int]
    post_authors: array[int]
    conversation_ends: array[int]
    message_counts: array[int]
    message_steps: array[int]
    last_senders: array[int]  # per conversation: who sent its newest message
    last_receivers: array[int]
    unread_streaks: array[int]  # per conversation: 1 when its newest messages are unread


def empty_world() -> World:
    return World(job_times=array("q"), job_employers=array("q"), job_titles=[], rare_words=[],
                 application_counts=array("q"), post_times=array("q"), post_authors=array("q"),
                 conversation_ends=array("q"), message_counts=array("q"),
                 message_steps=array("q"), last_senders=array("q"), last_receivers=array("q"),
                 unread_streaks=array("b"))
