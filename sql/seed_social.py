"""Seeded posts, likes, comments and follows, as COPY text lines.

Posts are in time order: each job's announcement (by its employer, at the job's time, as
``POST /jobs`` makes it) merged with text posts of the last year by skewed authors. Like and
comment counts per post are drawn first, so the posts' counters are written with the rows.
Follows are a power law with a ceiling: a few accounts have 50k+ followers at scale 1.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from sql.seed_plan import Clock, Plan, World, shuffled_cumulative, spread, table_rng
from sql.seed_text import Sentences

DAY = 86_400
FOLLOWER_CAP_SHARE = 0.6  # nobody is followed by more than this share of all users
FOLLOW_EXPONENT = 1.0

POSTS_COLUMNS = ("id", "user_id", "body", "post_type", "related_job_id", "likes_count",
                 "comments_count", "created_at")


class Engagement:
    """Likes and comments per post, drawn once with the same popularity weights."""

    def __init__(self, plan: Plan, posts: int) -> None:
        rng = table_rng(plan, "engagement")
        popularity = shuffled_cumulative(rng, posts, 0.9)
        self.likes = spread(rng, plan.count("post_likes"), popularity, cap=plan.users // 2)
        self.comments = spread(rng, plan.count("post_comments"), popularity,
                               cap=plan.count("post_comments"))


def post_rows(plan: Plan, world: World, engagement: Engagement) -> Iterator[str]:
    rng = table_rng(plan, "posts")
    clock, words = Clock(), Sentences(rng)
    jobs = len(world.job_times)
    authors = shuffled_cumulative(rng, plan.users, 0.8)
    text_times = sorted(rng.randrange(plan.anchor - 365 * DAY, plan.anchor)
                        for _ in range(plan.count("posts") - jobs))
    # (time, job number or -1): the two time-ordered streams merged into one id order.
    merged = heapq.merge(((t, -1) for t in text_times),
                         ((t, index) for index, t in enumerate(world.job_times)))
    for post_index, (created, job_index) in enumerate(merged):
        if job_index >= 0:
            author = world.job_employers[job_index]
            body = f"We are hiring: {world.job_titles[job_index]}"
            kind, related = "job", str(job_index + 1)
        else:
            author = rng.choices(range(1, plan.users + 1), cum_weights=authors)[0]
            body, kind, related = words.words(rng.randrange(8, 40)), "text", r"\N"
        world.post_times.append(created)
        world.post_authors.append(author)
        yield (f"{post_index + 1}\t{author}\t{body}\t{kind}\t{related}\t"
               f"{engagement.likes[post_index]}\t{engagement.comments[post_index]}\t"
               f"{clock.format(created)}\n")


LIKES_COLUMNS = ("post_id", "user_id", "created_at")


def like_rows(plan: Plan, world: World, engagement: Engagement) -> Iterator[str]:
    rng = table_rng(plan, "post_likes")
    clock = Clock()
    users = range(1, plan.users + 1)
    for post_index, count in enumerate(engagement.likes):
        if not count:
            continue
        posted = world.post_times[post_index]
        age = max(1, plan.anchor - posted)
        for user_id in rng.sample(users, count):
            yield f"{post_index + 1}\t{user_id}\t{clock.format(posted + rng.randrange(age))}\n"


COMMENTS_COLUMNS = ("id", "post_id", "user_id", "body", "created_at")


def comment_rows(plan: Plan, world: World, engagement: Engagement) -> Iterator[str]:
    rng = table_rng(plan, "post_comments")
    clock, words = Clock(), Sentences(rng)
    comment_id = 0
    for post_index, count in enumerate(engagement.comments):
        if not count:
            continue
        posted = world.post_times[post_index]
        age = max(1, plan.anchor - posted)
        for created in sorted(posted + rng.randrange(age) for _ in range(count)):
            comment_id += 1
            user_id = rng.randrange(1, plan.users + 1)
            yield (f"{comment_id}\t{post_index + 1}\t{user_id}\t"
                   f"{words.words(rng.randrange(3, 25))}\t{clock.format(created)}\n")


FOLLOWS_COLUMNS = ("follower_id", "followed_id", "created_at")


def follow_rows(plan: Plan) -> Iterator[str]:
    """Each user's followers, distinct and never the user; counts from a capped Zipf law."""
    rng = table_rng(plan, "follows")
    clock = Clock()
    users = plan.users
    cap = max(1, int(users * FOLLOWER_CAP_SHARE))
    counts = spread(rng, plan.count("follows"),
                    shuffled_cumulative(rng, users, FOLLOW_EXPONENT), cap=cap)
    population = range(1, users + 1)
    for index, count in enumerate(counts):
        followed_id = index + 1
        followers = rng.sample(population, count + 1)
        if followed_id in followers:
            followers.remove(followed_id)
        for follower_id in followers[:count]:
            created = plan.anchor - rng.randrange(0, 2 * 365 * DAY)
            yield f"{follower_id}\t{followed_id}\t{clock.format(created)}\n"


# The follow counters, set once from the loaded rows (the service keeps them in step after).
UPDATE_FOLLOW_COUNTS = """
    UPDATE users u
    SET followers_count = coalesce(f.followers, 0), following_count = coalesce(g.following, 0)
    FROM users base
    LEFT JOIN (SELECT followed_id, count(*) AS followers FROM follows GROUP BY followed_id) f
        ON f.followed_id = base.id
    LEFT JOIN (SELECT follower_id, count(*) AS following FROM follows GROUP BY follower_id) g
        ON g.follower_id = base.id
    WHERE u.id = base.id AND (f.followers IS NOT NULL OR g.following IS NOT NULL)
"""
