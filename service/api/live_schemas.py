"""What the live events endpoints read and answer (API.md, "Live events")."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct


class EventsQuery(Struct):
    ticket: Annotated[str, Meta(min_length=1, max_length=200,
                                description="a ticket from POST /events/ticket, for "
                                            "EventSource, which cannot send a bearer token")] \
        | None = None
    last_event_id: Annotated[str, Meta(max_length=40, description=(
        "the last event id seen, for a client that cannot send the Last-Event-ID header "
        "(a new EventSource with a new ticket); the header wins when both are sent"))] \
        | None = None


class Ticket(Struct):
    ticket: str
    expires_in: int


class UnreadCounts(Struct):
    """The data of an ``unread`` event."""

    notifications: int
    messages: int
