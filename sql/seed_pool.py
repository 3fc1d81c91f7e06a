"""What the benchmark needs from a seeded database: logged-in users and ids worth asking for.

The pool's tokens are stored exactly as a login stores them (SHA-256 of the token), so the
benchmark authenticates without paying argon2 per user. Search words and filters are
measured on the loaded rows, so the benchmark knows how many jobs each one matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sql.seed_plan import World
from sql.seed_text import COMMON_SEARCH_WORD

RARE_MATCHES_MAX = 10  # "a rare word" matches at most this many jobs

# Users with a conversation, in id order (ids are random with respect to activity, so the
# first ones are a fair sample); each with the newest conversation they are in.
SELECT_POOL = """
    SELECT u.id, u.email, u.role, c.id AS conversation_id
    FROM users u
    CROSS JOIN LATERAL (
        SELECT id FROM conversations
        WHERE user_low_id = u.id OR user_high_id = u.id
        ORDER BY updated_at DESC, id DESC
        LIMIT 1) c
    ORDER BY u.id
    LIMIT %(size)s
"""


def pick_pool(cur: Any, size: int) -> list[dict[str, Any]]:
    cur.execute(SELECT_POOL, {"size": size})
    return [{"id": row[0], "email": row[1], "role": row[2], "conversation_id": row[3]}
            for row in cur.fetchall()]


def token_rows(pool: list[dict[str, Any]],
               new_token: Callable[[int], tuple[str, bytes]]) -> Iterator[str]:
    """One auth_tokens line per pooled user; the token itself goes into the pool entry."""
    for user in pool:
        token, token_hash = new_token(user["id"])
        user["token"] = token
        yield f"\\\\x{token_hash.hex()}\t{user['id']}\n"


COUNT_MATCHES = """
    SELECT count(*) FROM jobs WHERE search @@ websearch_to_tsquery('english', %(q)s)
"""
# The most common open (category, location) pair: a filter that matches many jobs.
SELECT_FILTER = """
    SELECT category, location, count(*) FROM jobs
    WHERE status = 'open' AND expires_at > now()
    GROUP BY category, location
    ORDER BY count(*) DESC, category, location
    LIMIT 1
"""
SELECT_IDS = """
    SELECT (SELECT max(id) FROM posts) AS max_post_id,
           (SELECT max(id) FROM jobs WHERE status = 'open' AND expires_at > now()) AS job_id
"""


def search_terms(cur: Any, world: World) -> dict[str, Any]:
    """Common and rare search words with their match counts, a matching filter, ids."""
    common = _matches(cur, COMMON_SEARCH_WORD)
    rare, rare_count = "", 0
    for word in world.rare_words:
        rare_count = _matches(cur, word)
        if 1 <= rare_count <= RARE_MATCHES_MAX:
            rare = word
            break
    cur.execute(SELECT_FILTER)
    category, location, filtered = cur.fetchone() or ("", "", 0)
    cur.execute(SELECT_IDS)
    max_post_id, job_id = cur.fetchone()
    return {
        "search": {"common": COMMON_SEARCH_WORD, "common_matches": common,
                   "rare": rare, "rare_matches": rare_count if rare else 0},
        "filter": {"category": category, "location": location, "matches": filtered},
        "post_id": 1, "max_post_id": max_post_id, "job_id": job_id,
    }


def _matches(cur: Any, word: str) -> int:
    cur.execute(COUNT_MATCHES, {"q": word})
    return int(cur.fetchone()[0])
