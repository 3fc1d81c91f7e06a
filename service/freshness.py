"""Read-your-writes across requests: a caller who wrote a moment ago reads from the primary.

After an authenticated write request (any unsafe method: it may have committed, and a failed
write only costs a few primary reads), the middleware marks the writer for the replicas' lag
bound plus the time a health check takes to notice a worse lag (cache/recent_writes.py). Here
rather than in the unit of work, so that single-statement writes (saving a job, unliking)
count too. When a later request's caller is known, a marker that is set, or one Redis could
not be asked about, pins that request's reads to the primary (sql/replicas.py). Without
replicas nothing is marked or read.
"""

from __future__ import annotations

from aiohttp import web

from cache.recent_writes import mark_recent_write, wrote_recently
from service.appkeys import STORES
from sql.replicas import pin_reads_to_primary

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Whose write this request was, when not the authenticated caller (a new account).
WROTE_AS = web.RequestKey("wrote_as", int)


def marker_to_read(request: web.Request, hint: int | None) -> str | None:
    """The recent-write marker to read with the token, when replicas may answer reads."""
    if hint is None or not request.config_dict[STORES].db.replicas:
        return None
    return request.config_dict[STORES].cache.keys.recent_write(hint)


async def follow_own_writes(request: web.Request, user_id: int, marked: bool | None) -> None:
    """Pin the request to the primary if the caller wrote recently. ``marked``: the marker as
    read with the token, or None when it was not read (or Redis did not answer), in which case
    it is asked now; Redis unable to say counts as a recent write, the safe side."""
    if not request.config_dict[STORES].db.replicas:
        return
    cache = request.config_dict[STORES].cache
    if marked is None:
        marked = await wrote_recently(cache, user_id)
    if marked or cache.recent_writes.wrote_recently(user_id):
        pin_reads_to_primary()


async def note_own_write(request: web.Request, caller: int | None) -> None:
    """After a write request by ``caller``: their next reads, in any process, see it."""
    database = request.config_dict[STORES].db
    writer = request.get(WROTE_AS, caller)
    if writer is None or request.method in SAFE_METHODS or not database.replicas:
        return
    await mark_recent_write(request.config_dict[STORES].cache, writer,
                            database.replica_set.read_your_writes_seconds)
