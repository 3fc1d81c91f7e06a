"""Seeded conversations, messages and notifications, as COPY text lines.

A conversation's messages are spaced between its start and its newest message, which is its
``updated_at``; some end in an unread streak. Each conversation gives its last receiver the
one ``message`` notification the service keeps per conversation (``message:<id>``); the
other notifications are spread over users by a skewed law, in time order, mostly read except
recent ones. Their dedup keys have the service's shape plus a ``#<id>`` suffix, which keeps
them unique without remembering every (user, event) pair drawn.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from sql.seed_plan import (
    Clock,
    Plan,
    World,
    is_employer,
    shuffled_cumulative,
    spread,
    table_rng,
)
from sql.seed_text import Sentences

DAY = 86_400
UNREAD_CONVERSATION_SHARE = 0.3
MAX_UNREAD_STREAK = 3

CONVERSATIONS_COLUMNS = ("id", "user_low_id", "user_high_id", "updated_at", "created_at")


def conversation_rows(plan: Plan, world: World) -> Iterator[str]:
    """Distinct pairs, one side drawn by a skewed law (some people talk to many)."""
    rng = table_rng(plan, "conversations")
    clock = Clock()
    users = plan.users
    talkers = shuffled_cumulative(rng, users, 0.7)
    pairs: set[tuple[int, int]] = set()
    population = range(1, users + 1)
    while len(pairs) < plan.count("conversations"):
        first = rng.choices(population, cum_weights=talkers)[0]
        second = rng.randrange(1, users + 1)
        if first != second:
            pairs.add((min(first, second), max(first, second)))
    world.message_counts = spread(rng, plan.count("messages"),
                                  shuffled_cumulative(rng, len(pairs), 0.8),
                                  cap=plan.count("messages"), minimum=1)
    for index, (low, high) in enumerate(sorted(pairs)):
        ended = plan.anchor - rng.randrange(0, 180 * DAY)
        step = rng.randrange(30, 3 * 3600)
        world.message_steps.append(step)
        started = ended - (world.message_counts[index] - 1) * step - rng.randrange(DAY)
        world.conversation_ends.append(ended)
        world.last_senders.append(low)  # replaced by the messages' own draw
        world.last_receivers.append(high)
        world.unread_streaks.append(0)
        yield (f"{index + 1}\t{low}\t{high}\t{clock.format(ended)}\t"
               f"{clock.format(started)}\n")


MESSAGES_COLUMNS = ("id", "conversation_id", "sender_id", "receiver_id", "body", "is_read",
                    "created_at")


def message_rows(plan: Plan, world: World) -> Iterator[str]:
    rng = table_rng(plan, "messages")
    clock, words = Clock(), Sentences(rng)
    ends = world.conversation_ends
    message_id = 0
    for index, count in enumerate(world.message_counts):
        low, high = world.last_senders[index], world.last_receivers[index]
        senders = [low if rng.random() < 0.5 else high for _ in range(count)]
        unread = _unread_tail(rng, senders)
        step = world.message_steps[index]
        for position, sender in enumerate(senders):
            message_id += 1
            created = ends[index] - (count - 1 - position) * step
            receiver = high if sender == low else low
            is_read = "f" if position >= count - unread else "t"
            yield (f"{message_id}\t{index + 1}\t{sender}\t{receiver}\t"
                   f"{words.words(rng.randrange(2, 30))}\t{is_read}\t{clock.format(created)}\n")
        world.last_senders[index] = senders[-1]
        world.last_receivers[index] = high if senders[-1] == low else low
        world.unread_streaks[index] = 1 if unread else 0


def _unread_tail(rng: random.Random, senders: list[int]) -> int:
    """How many of the newest messages (all from the last sender) are still unread."""
    if rng.random() >= UNREAD_CONVERSATION_SHARE:
        return 0
    streak = 0
    for sender in reversed(senders):
        if sender != senders[-1] or streak == MAX_UNREAD_STREAK:
            break
        streak += 1
    return rng.randint(1, streak)


# The newest message of each conversation, set once from the loaded rows.
UPDATE_LAST_MESSAGES = """
    UPDATE conversations c SET last_message_id = m.last_id
    FROM (SELECT conversation_id, max(id) AS last_id FROM messages GROUP BY conversation_id) m
    WHERE c.id = m.conversation_id
"""

NOTIFICATIONS_COLUMNS = ("id", "user_id", "actor_id", "notification_type", "related_id", "data",
                         "is_read", "dedup_key", "created_at")
SEEKER_TYPES = ("follow", "post_like", "post_comment", "application_status", "job_closed")
SEEKER_WEIGHTS = (25, 45, 12, 12, 6)
EMPLOYER_TYPES = ("follow", "post_like", "post_comment", "application_received")
EMPLOYER_WEIGHTS = (20, 25, 5, 50)
# (path, what related_id counts): the object each type is about.
RELATED = {"follow": ("/users/{}", "users"), "post_like": ("/posts/{}", "posts"),
           "post_comment": ("/posts/{}", "posts"),
           "application_received": ("/applications/{}", "job_applications"),
           "application_status": ("/applications/{}", "job_applications"),
           "job_closed": ("/jobs/{}", "jobs")}


def notification_rows(plan: Plan, world: World) -> Iterator[str]:
    rng = table_rng(plan, "notifications")
    clock = Clock()
    conversations = len(world.conversation_ends)
    others = max(0, plan.count("notifications") - conversations)
    recipients = shuffled_cumulative(rng, plan.users, 0.6)
    population = range(1, plan.users + 1)
    times = sorted(rng.randrange(plan.anchor - 90 * DAY, plan.anchor) for _ in range(others))
    users = rng.choices(population, cum_weights=recipients, k=others)
    for index, (user_id, created) in enumerate(zip(users, times, strict=True)):
        kind = (rng.choices(EMPLOYER_TYPES, EMPLOYER_WEIGHTS)[0] if is_employer(user_id)
                else rng.choices(SEEKER_TYPES, SEEKER_WEIGHTS)[0])
        actor = rng.randrange(1, plan.users + 1)
        path, counted = RELATED[kind]
        related = actor if kind == "follow" else rng.randrange(1, plan.count(counted) + 1)
        yield (f"{index + 1}\t{user_id}\t{actor}\t{kind}\t{related}\t"
               f'{{"path": "{path.format(related)}"}}\t'
               f"{_read_flag(rng, plan.anchor - created)}\t{kind}:{related}:{actor}#{index + 1}\t"
               f"{clock.format(created)}\n")
    for index in range(min(conversations, plan.count("notifications") - others)):
        conversation_id = index + 1
        yield (f"{others + index + 1}\t{world.last_receivers[index]}\t"
               f"{world.last_senders[index]}\tmessage\t{conversation_id}\t"
               f'{{"path": "/conversations/{conversation_id}", '
               f'"conversation_id": {conversation_id}}}\t'
               f"{'f' if world.unread_streaks[index] else 't'}\tmessage:{conversation_id}\t"
               f"{clock.format(world.conversation_ends[index])}\n")


def _read_flag(rng: random.Random, age: int) -> str:
    """Recent notifications are often unread, old ones hardly ever."""
    unread = 0.5 if age < 3 * DAY else 0.1 if age < 30 * DAY else 0.01
    return "f" if rng.random() < unread else "t"
