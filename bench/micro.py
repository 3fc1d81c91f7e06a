"""``python -m bench.micro``: the per-request (and per-delivery) Python steps on their own,
in microseconds.

wrk figures on a shared 2-core machine move by tens of percent from run to run; a step that
every request takes (decoding its query or body) is measured here alone, in-process, where a
change of a few hundred microseconds shows plainly.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from datetime import UTC, datetime

from service.api.answers import public_profile
from service.api.job_schemas import JobCreate, JobsQuery
from service.api.schemas import OwnUser
from service.validation import decode_body, decode_query
from tasks.email import Envelope
from tasks.mail_render import outbox_message_id, render_email

JOB_BODY = (b'{"title": "Senior engineer", "description": "Build the platform.", '
            b'"location": "Nassau", "category": "engineering", "employment_type": "full_time", '
            b'"remote": true, "salary_min": 50000, "salary_max": 90000}')
EMPLOYER = OwnUser(id=7, first_name="Ada", last_name="Lovelace", role="employer",
                   headline="Hiring engineers", bio="We build engines.", location="London",
                   skills=["python", "postgres"], available_for_hire=False, followers_count=3,
                   following_count=1, followed_by_me=False,
                   created_at=datetime(2026, 1, 2, tzinfo=UTC), email="ada@example.com",
                   email_verified=True)
STEPS: dict[str, Callable[[], object]] = {
    "decode_query(JobsQuery), 3 parameters": lambda: decode_query(
        {"category": "engineering", "location": "Nassau", "limit": "20"}, JobsQuery),
    "decode_body(JobCreate), 8 fields": lambda: decode_body(JOB_BODY, JobCreate),
    "a cached jobs page's 20 employer profiles": lambda: [
        public_profile(EMPLOYER, n % 2 == 0) for n in range(20)],
    "an application email rendered and turned into wire bytes": lambda: Envelope.of(
        render_email("application_received",
                     {"first_name": "Ada", "applicant_name": "Grace Hopper",
                      "job_title": "Compiler engineer", "url": "https://hireme.example/jobs/1"},
                     to="ada@example.com", mail_from="hireme <no-reply@hireme.example>",
                     message_id=outbox_message_id(1, "no-reply@hireme.example"),
                     unsubscribe_url="https://hireme.example/api/v1/email/unsubscribe?t=x")),
}


def main() -> None:
    for name, step in STEPS.items():
        step()  # anything resolved once per process is resolved before timing
        runs, seconds = timeit.Timer(step).autorange()
        print(f"{seconds / runs * 1e6:8.1f} µs  {name}")


if __name__ == "__main__":
    main()
