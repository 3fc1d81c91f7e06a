-- Live events (API.md, "Live events"): what the SSE streams carry, kept so that a client
-- reconnecting with Last-Event-ID replays exactly what it missed.

-- The last event id handed out per user. Ids come from here, taken with an UPDATE in the
-- same transaction as the change that causes the events: the row lock orders a user's
-- transactions, so ids are contiguous (1, 2, 3 …) in commit order, and a reader that sees
-- id n committed sees every id below it committed too.
CREATE TABLE event_counters (
    user_id bigint PRIMARY KEY REFERENCES users ON DELETE CASCADE,
    last_id bigint NOT NULL CHECK (last_id >= 0)
);

-- The events themselves, as the stream sends them. Replay and the fallback poll read
-- (user_id, id > n) on the primary key.
CREATE TABLE events (
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    id         bigint NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('notification', 'message', 'unread')),
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id)
);
-- Retention finds events past 24 hours oldest first, in bounded batches.
CREATE INDEX events_created_idx ON events (created_at);

-- Single-use tickets for browsers, whose EventSource cannot send an Authorization header.
-- Only the SHA-256 is kept; the ticket remembers the bearer token that asked for it, so
-- revoking that token also ends the streams opened with its tickets.
CREATE TABLE event_tickets (
    ticket_hash bytea PRIMARY KEY CHECK (octet_length(ticket_hash) = 32),
    token_hash  bytea NOT NULL REFERENCES auth_tokens ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX event_tickets_expires_idx ON event_tickets (expires_at);
CREATE INDEX event_tickets_token_idx ON event_tickets (token_hash);
