"""Seeded rows for users, jobs, applications and saved jobs, as COPY text lines.

Ids are given explicitly (1..n, in time order where the table has one), so later tables can
refer to them without reading anything back. Every 10th user is an employer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from sql.seed_plan import (
    EMPLOYER_SHARE,
    Clock,
    Plan,
    World,
    employer_count,
    is_employer,
    shuffled_cumulative,
    spread,
    table_rng,
)
from sql.seed_text import (
    CATEGORIES,
    EMPLOYMENT_TYPES,
    EMPLOYMENT_WEIGHTS,
    FIELDS,
    FIRST_NAMES,
    LAST_NAMES,
    LOCATIONS,
    ROLE_WEIGHTS,
    ROLES,
    SENIORITY,
    SENIORITY_WEIGHTS,
    SKILLS,
    Sentences,
    rare_words,
    zipf_cumulative,
)

DAY = 86_400
LOCATION_CUMULATIVE = zipf_cumulative(len(LOCATIONS), 1.0)
CATEGORY_CUMULATIVE = zipf_cumulative(len(CATEGORIES), 0.8)
APPLICATION_STATUSES = ("submitted", "reviewed", "interview", "offered", "hired", "rejected",
                        "withdrawn")
APPLICATION_WEIGHTS = (55, 15, 10, 3, 2, 12, 3)
SEEKERS_PER_EMPLOYER = EMPLOYER_SHARE - 1  # seeker number k is user k + k // 9 + 1
RARE_WORDS_PER_JOB = 0.3  # share of descriptions that carry one long-tail word
JOBS_PER_RARE_WORD = 3  # so each made-up word matches about this many jobs


def user_email(user_id: int) -> str:
    return f"user{user_id}@seed.hireme.test"


USERS_COLUMNS = ("id", "email", "password_hash", "first_name", "last_name", "role", "headline",
                 "location", "skills", "available_for_hire", "email_verified", "last_seen_at",
                 "created_at", "updated_at")


def user_rows(plan: Plan, password_hash: str) -> Iterator[str]:
    rng = table_rng(plan, "users")
    clock = Clock()
    now = plan.anchor
    for user_id in range(1, plan.users + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        role = "employer" if is_employer(user_id) else "job_seeker"
        title = f"{rng.choice(FIELDS)} {rng.choices(ROLES, ROLE_WEIGHTS)[0]}"
        location = rng.choices(LOCATIONS, cum_weights=LOCATION_CUMULATIVE)[0]
        skills = ",".join(rng.sample(SKILLS, rng.randrange(0, 6)))
        hire = "t" if role == "job_seeker" and rng.random() < 0.3 else "f"
        created = now - rng.randrange(30 * DAY, 3 * 365 * DAY)
        # Most accounts were seen recently: feeds fan out to users active in 30 days.
        seen = now - rng.randrange(0, 30 * DAY if rng.random() < 0.8 else 365 * DAY)
        stamp = clock.format(created)
        yield (f"{user_id}\t{user_email(user_id)}\t{password_hash}\t{first}\t{last}\t{role}\t"
               f"{title}\t{location}\t{{{skills}}}\t{hire}\tt\t{clock.format(seen)}\t"
               f"{stamp}\t{stamp}\n")


JOBS_COLUMNS = ("id", "employer_id", "title", "description", "category", "location",
                "employment_type", "remote", "salary_min", "salary_max", "status", "expires_at",
                "applications_count", "created_at", "updated_at")


def job_rows(plan: Plan, world: World) -> Iterator[str]:
    """Jobs of the last 60 days in id order; most open, some closed, some expired."""
    rng = table_rng(plan, "jobs")
    clock, words = Clock(), Sentences(rng)
    count = plan.count("jobs")
    employers = employer_count(plan.users)
    employer_weights = shuffled_cumulative(rng, employers, 0.7)
    tail = rare_words(max(10, round(count * RARE_WORDS_PER_JOB / JOBS_PER_RARE_WORD)), rng)
    world.rare_words = tail
    applications = spread(rng, plan.count("job_applications"),
                          shuffled_cumulative(rng, count, 0.7),
                          cap=plan.users - employers)
    world.application_counts = applications
    times = sorted(rng.randrange(plan.anchor - 60 * DAY, plan.anchor) for _ in range(count))
    for index, created in enumerate(times):
        employer_id = (rng.choices(range(employers), cum_weights=employer_weights)[0] + 1) * 10
        title = " ".join(filter(None, (
            rng.choices(SENIORITY, SENIORITY_WEIGHTS)[0], rng.choice(FIELDS),
            rng.choices(ROLES, ROLE_WEIGHTS)[0])))
        description = words.words(rng.randrange(25, 60))
        if rng.random() < RARE_WORDS_PER_JOB:
            description += " " + rng.choice(tail)
        world.job_times.append(created)
        world.job_employers.append(employer_id)
        world.job_titles.append(title)
        yield "\t".join((
            str(index + 1), str(employer_id), title, description,
            rng.choices(CATEGORIES, cum_weights=CATEGORY_CUMULATIVE)[0],
            rng.choices(LOCATIONS, cum_weights=LOCATION_CUMULATIVE)[0],
            rng.choices(EMPLOYMENT_TYPES, EMPLOYMENT_WEIGHTS)[0],
            "t" if rng.random() < 0.25 else "f", *_salary(rng),
            "closed" if rng.random() < 0.08 else "open",
            clock.format(created + rng.randrange(30 * DAY, 90 * DAY)),
            str(applications[index]), clock.format(created), clock.format(created))) + "\n"


def _salary(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.3:
        return r"\N", r"\N"
    low = rng.randrange(20, 150) * 1000
    return str(low), str(low + rng.randrange(0, 60) * 1000)


APPLICATIONS_COLUMNS = ("id", "job_id", "applicant_id", "cover_letter", "status", "created_at",
                        "updated_at")


def application_rows(plan: Plan, world: World) -> Iterator[str]:
    """Each job's applications (the count its row already carries) from distinct seekers."""
    rng = table_rng(plan, "job_applications")
    clock, words = Clock(), Sentences(rng)
    seekers = plan.users - employer_count(plan.users)
    application_id = 0
    for job_index, count in enumerate(world.application_counts):
        posted = world.job_times[job_index]
        for seeker in rng.sample(range(seekers), count):
            application_id += 1
            applicant_id = seeker + seeker // SEEKERS_PER_EMPLOYER + 1
            created = posted + rng.randrange(0, max(1, plan.anchor - posted))
            status = rng.choices(APPLICATION_STATUSES, APPLICATION_WEIGHTS)[0]
            letter = words.words(rng.randrange(5, 30)) if rng.random() < 0.6 else ""
            changed = created if status == "submitted" else min(
                plan.anchor, created + rng.randrange(DAY // 24, 7 * DAY))
            yield (f"{application_id}\t{job_index + 1}\t{applicant_id}\t{letter}\t{status}\t"
                   f"{clock.format(created)}\t{clock.format(changed)}\n")


# Every application's history: 'submitted' by the applicant, then its current status (if it
# moved) by the employer, or by the applicant for a withdrawal. Derived in one set-based
# statement from the rows just loaded, in time order.
INSERT_APPLICATION_HISTORY = """
    INSERT INTO application_status_history (application_id, status, changed_by, created_at)
    SELECT application_id, status, changed_by, created_at
    FROM (SELECT a.id AS application_id, 'submitted' AS status, a.applicant_id AS changed_by,
                 a.created_at
          FROM job_applications a
          UNION ALL
          SELECT a.id, a.status,
                 CASE WHEN a.status = 'withdrawn' THEN a.applicant_id ELSE j.employer_id END,
                 a.updated_at
          FROM job_applications a JOIN jobs j ON j.id = a.job_id
          WHERE a.status <> 'submitted') AS h
    ORDER BY created_at, application_id
"""

SAVED_JOBS_COLUMNS = ("user_id", "job_id", "created_at")


def saved_job_rows(plan: Plan, world: World) -> Iterator[str]:
    rng = table_rng(plan, "saved_jobs")
    clock = Clock()
    jobs = len(world.job_times)
    counts = spread(rng, plan.count("saved_jobs"), shuffled_cumulative(rng, plan.users, 0.6),
                    cap=jobs)
    for user_index, count in enumerate(counts):
        for job_index in rng.sample(range(jobs), count):
            posted = world.job_times[job_index]
            saved = posted + rng.randrange(0, max(1, plan.anchor - posted))
            yield f"{user_index + 1}\t{job_index + 1}\t{clock.format(saved)}\n"
