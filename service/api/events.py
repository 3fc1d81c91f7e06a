"""/events: the live stream (Server-Sent Events) and the tickets browsers open it with.

A stream registers in this process's ``Streams`` before it reads anything from PostgreSQL, so
no event published meanwhile is missed; everything it writes goes through ``_write_events``,
which drops ids already sent and fills a gap from PostgreSQL: the replay after
Last-Event-ID, the seam with live events, the fallback poll and events that cross on the
channel all end in the same order, without duplicates. An idle stream holds no database
connection and no timer of its own (service/live.py keeps it alive).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

from aiohttp import web

from cache.client import CacheUnavailable
from cache.live import claim_stream_slot, release_stream_slot
from service.api.live_schemas import EventsQuery, Ticket
from service.appkeys import STORES
from service.authn import PRINCIPAL_KEY, Principal, authenticate
from service.errors import Unauthorized
from service.live import (
    MAX_STREAMS_PER_USER,
    STREAMS,
    Close,
    Rendered,
    Stream,
    render,
)
from service.middleware import DEADLINE
from service.responses import json_answer
from service.tokens import hash_token
from service.validation import decode_query
from sql.db import Database, DatabaseUnavailable, QueryCanceled
from sql.events import (
    PAGE_SIZE,
    TICKET_SECONDS,
    get_stream_start,
    insert_ticket,
    list_events_after,
    spend_ticket,
)

log = logging.getLogger(__name__)

RETRY = b"retry: 3000\n\n"
MAX_EVENT_ID_DIGITS = 18  # below bigint's limit, so any accepted id compares safely
STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx passes each event on at once
}


async def create_ticket(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    ticket = secrets.token_urlsafe(32)
    await insert_ticket(request.app[STORES].db, hash_token(ticket), principal.token_hash,
                        principal.user_id)
    return json_answer(Ticket(ticket=ticket, expires_in=TICKET_SECONDS), 201)


async def stream_events(request: web.Request) -> web.StreamResponse:
    query = decode_query(request.query, EventsQuery)
    principal = await _stream_principal(request, query.ticket)
    streams = request.app[STREAMS]
    stream = streams.open(principal.user_id, principal.token_hash)
    try:
        await _claim_slot(request, stream)
        response = web.StreamResponse(headers=STREAM_HEADERS)
        await response.prepare(request)
        stream.transport = request.transport
        request[DEADLINE].reschedule(None)  # a stream runs until one side ends it
        resume_after = _last_event_id(request.headers.get("Last-Event-ID", query.last_event_id))
        try:
            await response.write(RETRY)
            await _start(request.app[STORES].db, response, stream, resume_after)
            stream.ready = True
            await _serve(request.app[STORES].db, response, stream)
        except ConnectionError:
            pass  # the client went away
        except (DatabaseUnavailable, QueryCanceled) as error:
            # Too late for an error answer: end the stream; the client comes back with its
            # Last-Event-ID and misses nothing.
            log.warning("ending a live stream: %s", error)
        return response
    finally:
        streams.forget(stream)
        async with streams.slot_commands:
            await release_stream_slot(request.app[STORES].cache, stream.user_id, stream.id)


async def _stream_principal(request: web.Request, ticket: str | None) -> Principal:
    """The bearer token's caller, else the ticket's (spent here: it works once)."""
    if ticket is None or "Authorization" in request.headers:
        return await authenticate(request)
    row = await spend_ticket(request.app[STORES].db, hash_token(ticket))
    if row is None:
        raise Unauthorized("The ticket is unknown, spent or expired.")
    principal = Principal(row["user_id"], row["role"], row["is_admin"], bytes(row["token_hash"]))
    request[PRINCIPAL_KEY] = principal
    return principal


async def _claim_slot(request: web.Request, stream: Stream) -> None:
    """Count the stream against the user's limit in every process; the oldest beyond it
    are closed by their processes (this one's too, through the channel)."""
    with contextlib.suppress(CacheUnavailable):  # then Streams.open limits per process
        async with request.app[STREAMS].slot_commands:
            await claim_stream_slot(request.app[STORES].cache, stream.user_id, stream.id,
                                    MAX_STREAMS_PER_USER)


def _last_event_id(value: str | None) -> int | None:
    """The id to resume after. Anything but a plain number starts afresh, as no header
    does: EventSource cannot recover from an error answer, and ids are opaque to clients."""
    if value and value.isascii() and value.isdigit() and len(value) <= MAX_EVENT_ID_DIGITS:
        return int(value)
    return None


async def _start(db: Database, response: web.StreamResponse, stream: Stream,
                 resume_after: int | None) -> None:
    """Replay what the client missed, or, for a new client (or one whose missed events are
    past retention), one ``unread`` event as of the user's newest event id."""
    start = await get_stream_start(db, stream.user_id)
    newest = int(start["last_id"])
    if resume_after is not None:
        # An id from the future (a tampered or foreign one) must not hide later events.
        stream.last_id = min(resume_after, newest)
        first = await list_events_after(db, stream.user_id, stream.last_id, limit=1)
        if stream.last_id == newest or (first and first[0]["id"] == stream.last_id + 1):
            await _catch_up(db, response, stream)
            return
    await stream.send(response, newest, render({"id": newest, "kind": "unread", "data": {
        "notifications": start["notifications"], "messages": start["messages"]}}))


async def _serve(db: Database, response: web.StreamResponse, stream: Stream) -> None:
    """Write what the inbox gets until the stream is closed or the client goes."""
    while True:
        item = await stream.inbox.get()
        if isinstance(item, Close):
            if item.last:
                await response.write(item.last)
            return
        if isinstance(item, bytes):  # a keep-alive
            await response.write(item)
            continue
        await _write_events(db, response, stream, item)


async def _write_events(db: Database, response: web.StreamResponse, stream: Stream,
                        events: list[Rendered]) -> None:
    """In order, once each: a later id than the next one expected means another process's
    event overtook an earlier one on the channel, which PostgreSQL already has."""
    for event_id, lines in events:
        if event_id <= stream.last_id:
            continue
        if event_id > stream.last_id + 1:
            await _catch_up(db, response, stream)
            continue
        await stream.send(response, event_id, lines)


async def _catch_up(db: Database, response: web.StreamResponse, stream: Stream) -> None:
    """Every stored event after the last one sent, page by page (a connection only per
    page, none between them)."""
    while True:
        rows = await list_events_after(db, stream.user_id, stream.last_id)
        for row in rows:
            await stream.send(response, int(row["id"]), render(row))
        if len(rows) < PAGE_SIZE:
            return
        await asyncio.sleep(0)  # let other streams write between pages
