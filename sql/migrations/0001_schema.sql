-- 0001_schema: every table of the API contract (API.md), with the indexes its queries need.
--
-- Conventions, decided once for the whole file:
--   * ids are `bigint GENERATED ALWAYS AS IDENTITY`; times are `timestamptz`, set by the
--     database (`DEFAULT now()`); `updated_at` is set explicitly by the statement that changes
--     a row (no triggers, so every write says what it touches).
--   * every enum is a text column with a CHECK, every user-supplied string and list has the
--     length bound from API.md (or service/schemas.py where API.md names none), so a bug in
--     validation is a constraint error, never an unbounded row.
--   * list queries are keyset on `(created_at DESC, id DESC)` (or the list's own order), so
--     their indexes have that shape with the filter column in front; partial indexes carry the
--     hot filters (`WHERE NOT is_read`, pending deliveries).
--   * ARCHITECTURE.md "Data" lists the original system's indexes; each table below notes what
--     serves each of them, or why it was dropped.
--   * accounts are suspended, never deleted, by the service; user foreign keys still cascade
--     so that an offline erasure is one DELETE, but columns are indexed only for the queries
--     the service runs, not for the speed of that rare DELETE.
--
-- The runner (sql/migrate.py) applies this file in one transaction.

-- ---- users and credentials ----------------------------------------------------------------

-- Skills are a bounded list of bounded, non-empty strings (service/schemas.py: 50 x 1..50).
-- A CHECK cannot hold a subquery, so the element test lives in an immutable function.
CREATE FUNCTION skills_are_valid(skills text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT coalesce(array_ndims(skills), 1) = 1
       AND cardinality(skills) <= 50
       AND NOT EXISTS (SELECT 1 FROM unnest(skills) AS s
                       WHERE s IS NULL OR char_length(s) NOT BETWEEN 1 AND 50)
$$;

CREATE TABLE users (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email              text NOT NULL
                       CHECK (char_length(email) BETWEEN 3 AND 254 AND strpos(email, '@') > 1),
    password_hash      text NOT NULL,
    first_name         text NOT NULL CHECK (char_length(first_name) BETWEEN 1 AND 100),
    last_name          text NOT NULL CHECK (char_length(last_name) BETWEEN 1 AND 100),
    role               text NOT NULL CHECK (role IN ('job_seeker', 'employer')),
    headline           text NOT NULL DEFAULT '' CHECK (char_length(headline) <= 200),
    bio                text NOT NULL DEFAULT '' CHECK (char_length(bio) <= 5000),
    location           text NOT NULL DEFAULT '' CHECK (char_length(location) <= 200),
    skills             text[] NOT NULL DEFAULT '{}' CHECK (skills_are_valid(skills)),
    available_for_hire boolean NOT NULL DEFAULT false,
    email_verified     boolean NOT NULL DEFAULT false,
    is_admin           boolean NOT NULL DEFAULT false,
    suspended_at       timestamptz NULL,
    -- Kept in the transaction that follows or unfollows, never counted per request.
    followers_count    integer NOT NULL DEFAULT 0 CHECK (followers_count >= 0),
    following_count    integer NOT NULL DEFAULT 0 CHECK (following_count >= 0),
    -- Refreshed at most once a day (with the token's last use); feeds fan out to active users.
    last_seen_at       timestamptz NOT NULL DEFAULT now(),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Emails are case-insensitive and unique; also the arbiter of `ON CONFLICT ((lower(email)))`.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
-- Name prefix search (`lower(first_name) LIKE 'ab%'`): text_pattern_ops makes LIKE prefixes
-- index-backed under any collation; the two arms combine as a BitmapOr.
CREATE INDEX users_first_name_prefix_idx ON users (lower(first_name) text_pattern_ops, id);
CREATE INDEX users_last_name_prefix_idx ON users (lower(last_name) text_pattern_ops, id);
-- "Available for hire" people, newest accounts first (keyset on id).
CREATE INDEX users_available_for_hire_idx ON users (id DESC) WHERE available_for_hire;
-- Admin dashboard: accounts created today.
CREATE INDEX users_created_at_idx ON users (created_at);

-- Bearer tokens, stored only as SHA-256. Expiry is `last_used_at` + 30 days, checked by the
-- lookup, so an expired row is harmless until something deletes it.
CREATE TABLE auth_tokens (
    token_hash   bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id      bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now()
);

-- Revoking every token of a user (logout elsewhere, password change, suspension).
CREATE INDEX auth_tokens_user_id_idx ON auth_tokens (user_id);

-- Single-use links sent by email (verification, password reset), also stored as SHA-256.
CREATE TABLE email_tokens (
    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX email_tokens_user_purpose_idx ON email_tokens (user_id, purpose);

-- ---- jobs and applications ------------------------------------------------------------------

CREATE TABLE jobs (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employer_id        bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    title              text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description        text NOT NULL CHECK (char_length(description) BETWEEN 1 AND 20000),
    -- '' = not given, so filters compare plain values and every column stays NOT NULL.
    category           text NOT NULL DEFAULT '' CHECK (char_length(category) <= 100),
    location           text NOT NULL DEFAULT '' CHECK (char_length(location) <= 200),
    employment_type    text NOT NULL CHECK (employment_type IN
                           ('full_time', 'part_time', 'contract', 'internship', 'temporary')),
    remote             boolean NOT NULL DEFAULT false,
    salary_min         integer NULL CHECK (salary_min >= 0),
    salary_max         integer NULL CHECK (salary_max >= 0),
    -- The stored status is what the owner set; an expired job reads as closed because every
    -- query also tests `expires_at > now()` (API.md: "not by a cron job").
    status             text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    expires_at         timestamptz NOT NULL DEFAULT now() + interval '30 days',
    applications_count integer NOT NULL DEFAULT 0 CHECK (applications_count >= 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- Full text for `GET /jobs?q=`: title ranks above description. Queries must use the same
    -- 'english' configuration, e.g. `search @@ websearch_to_tsquery('english', %(q)s)`.
    search             tsvector GENERATED ALWAYS AS (
                           setweight(to_tsvector('english', title), 'A')
                           || setweight(to_tsvector('english', description), 'B')) STORED,
    CONSTRAINT jobs_salary_range_check CHECK (salary_min <= salary_max)
);

-- Original indexes: status, (status, created_at), employer_id, category, location,
-- created_at. Each becomes the keyset shape of the list that filters on it.
CREATE INDEX jobs_status_created_idx ON jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_employer_created_idx ON jobs (employer_id, created_at DESC, id DESC);
CREATE INDEX jobs_category_created_idx ON jobs (category, created_at DESC, id DESC);
CREATE INDEX jobs_location_created_idx ON jobs (location, created_at DESC, id DESC);
-- Lists across every status (admin pages, dashboard counts).
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_search_idx ON jobs USING gin (search);

CREATE TABLE job_applications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       bigint NOT NULL REFERENCES jobs ON DELETE CASCADE,
    applicant_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    cover_letter text NOT NULL DEFAULT '' CHECK (char_length(cover_letter) <= 10000),
    resume_url   text NULL CHECK (char_length(resume_url) BETWEEN 1 AND 2000),
    status       text NOT NULL DEFAULT 'submitted' CHECK (status IN
                     ('submitted', 'reviewed', 'interview', 'offered', 'hired', 'rejected',
                      'withdrawn')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- One application per job and applicant, a withdrawn one included (409 on a second).
    CONSTRAINT job_applications_job_applicant_key UNIQUE (job_id, applicant_id)
);

-- The owner's list per job (with an optional status filter) and the applicant's own list.
CREATE INDEX job_applications_job_created_idx
    ON job_applications (job_id, created_at DESC, id DESC);
CREATE INDEX job_applications_job_status_created_idx
    ON job_applications (job_id, status, created_at DESC, id DESC);
CREATE INDEX job_applications_applicant_created_idx
    ON job_applications (applicant_id, created_at DESC, id DESC);

-- Every status change of an application, the first ('submitted') included.
CREATE TABLE application_status_history (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id bigint NOT NULL REFERENCES job_applications ON DELETE CASCADE,
    status         text NOT NULL CHECK (status IN
                       ('submitted', 'reviewed', 'interview', 'offered', 'hired', 'rejected',
                        'withdrawn')),
    -- Who made the change; kept (as NULL) if that account is ever erased.
    changed_by     bigint NULL REFERENCES users ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX application_status_history_application_idx
    ON application_status_history (application_id, created_at, id);

CREATE TABLE saved_jobs (
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    job_id     bigint NOT NULL REFERENCES jobs ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, job_id)
);

-- "Most recently saved first"; the keyset tie-breaker is job_id.
CREATE INDEX saved_jobs_user_created_idx ON saved_jobs (user_id, created_at DESC, job_id DESC);
-- Deleting a job cascades here (and `saved_by_me` is answered by the primary key).
CREATE INDEX saved_jobs_job_id_idx ON saved_jobs (job_id);

CREATE TABLE job_alerts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    q            text NULL CHECK (char_length(q) BETWEEN 1 AND 100),
    category     text NULL CHECK (char_length(category) BETWEEN 1 AND 100),
    location     text NULL CHECK (char_length(location) BETWEEN 1 AND 200),
    remote       boolean NULL,
    frequency    text NOT NULL CHECK (frequency IN ('daily', 'weekly')),
    last_sent_at timestamptz NULL,
    -- High-water mark: the newest job id already considered, so no job is sent twice. Not a
    -- foreign key: it is a position, and stays valid when that job is deleted.
    last_job_id  bigint NULL,
    next_run_at  timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT job_alerts_criteria_check
        CHECK (q IS NOT NULL OR category IS NOT NULL OR location IS NOT NULL
               OR remote IS NOT NULL)
);

-- A user's alerts (also the per-user count behind the limit of 20).
CREATE INDEX job_alerts_user_id_idx ON job_alerts (user_id, id);
-- The scheduler's "which alerts are due".
CREATE INDEX job_alerts_next_run_at_idx ON job_alerts (next_run_at);

-- ---- posts, likes, comments, the social graph ----------------------------------------------

CREATE TABLE posts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    body           text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 5000),
    post_type      text NOT NULL DEFAULT 'text' CHECK (post_type IN ('text', 'job')),
    -- Deleting a job deletes the post announcing it (API.md, POST /jobs).
    related_job_id bigint NULL REFERENCES jobs ON DELETE CASCADE,
    likes_count    integer NOT NULL DEFAULT 0 CHECK (likes_count >= 0),
    comments_count integer NOT NULL DEFAULT 0 CHECK (comments_count >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT posts_job_post_has_job_check
        CHECK (post_type <> 'job' OR related_job_id IS NOT NULL)
);

-- Original indexes: user_id, (user_id, created_at) -> one keyset index, which also rebuilds a
-- cold home feed (a merge of the followed authors' newest posts); created_at -> the admin
-- list; related_job_id -> partial, for the job's cascade. post_type is dropped: two values,
-- only ever read together with a selective filter.
CREATE INDEX posts_user_created_idx ON posts (user_id, created_at DESC, id DESC);
CREATE INDEX posts_created_idx ON posts (created_at DESC, id DESC);
CREATE INDEX posts_related_job_id_idx ON posts (related_job_id) WHERE related_job_id IS NOT NULL;

CREATE TABLE post_likes (
    post_id    bigint NOT NULL REFERENCES posts ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- One like per user and post; also answers `liked_by_me`.
    PRIMARY KEY (post_id, user_id)
);

CREATE TABLE post_comments (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id    bigint NOT NULL REFERENCES posts ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    body       text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 2000),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A post's comments, oldest first; also the post's cascade.
CREATE INDEX post_comments_post_created_idx ON post_comments (post_id, created_at, id);

CREATE TABLE follows (
    follower_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    followed_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followed_id),
    CONSTRAINT follows_not_self_check CHECK (follower_id <> followed_id)
);

-- Followers and following lists, newest follow first; the followers index also drives
-- feed fan-out ("who follows this author").
CREATE INDEX follows_followed_created_idx
    ON follows (followed_id, created_at DESC, follower_id DESC);
CREATE INDEX follows_follower_created_idx
    ON follows (follower_id, created_at DESC, followed_id DESC);

CREATE TABLE blocks (
    blocker_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    blocked_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CONSTRAINT blocks_not_self_check CHECK (blocker_id <> blocked_id)
);

-- `GET /me/blocks`, newest first; and "who blocks me", to hide their posts from my feed.
CREATE INDEX blocks_blocker_created_idx ON blocks (blocker_id, created_at DESC, blocked_id DESC);
CREATE INDEX blocks_blocked_id_idx ON blocks (blocked_id, blocker_id);

-- ---- messages -------------------------------------------------------------------------------

-- One conversation per pair of users: the pair is stored ordered (low < high), so (a, b) and
-- (b, a) are the same row and the unique constraint makes a duplicate impossible.
CREATE TABLE conversations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_low_id     bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    user_high_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    -- The newest message (foreign key added below, once messages exists).
    last_message_id bigint NULL,
    -- Time of the newest message (creation time until there is one): the list's order.
    updated_at      timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT conversations_pair_order_check CHECK (user_low_id < user_high_id),
    CONSTRAINT conversations_pair_key UNIQUE (user_low_id, user_high_id)
);

-- A user's conversations, most recent first, from either side of the pair.
CREATE INDEX conversations_low_updated_idx
    ON conversations (user_low_id, updated_at DESC, id DESC);
CREATE INDEX conversations_high_updated_idx
    ON conversations (user_high_id, updated_at DESC, id DESC);

CREATE TABLE messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES conversations ON DELETE CASCADE,
    sender_id       bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    receiver_id     bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    body            text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 5000),
    is_read         boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_not_self_check CHECK (sender_id <> receiver_id)
);

-- Original indexes: conversation_id -> the conversation's page, newest first; receiver_id,
-- is_read, (receiver_id, is_read) -> one partial index over unread rows only, which answers
-- the unread total, the per-conversation unread_count and "mark this conversation read";
-- created_at -> BRIN (rows arrive in time order; tiny, enough for "messages today").
-- sender_id is dropped: no query lists messages by sender (a conversation holds both sides),
-- and this is the busiest insert path.
CREATE INDEX messages_conversation_created_idx
    ON messages (conversation_id, created_at DESC, id DESC);
CREATE INDEX messages_unread_idx ON messages (receiver_id, conversation_id) WHERE NOT is_read;
CREATE INDEX messages_created_at_brin ON messages USING brin (created_at);

-- SET NULL, not CASCADE: removing a message must not remove its conversation.
ALTER TABLE conversations
    ADD CONSTRAINT conversations_last_message_id_fkey
    FOREIGN KEY (last_message_id) REFERENCES messages ON DELETE SET NULL;

-- ---- notifications and delivery -------------------------------------------------------------

CREATE TABLE notifications (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id           bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    -- API.md allows `actor: null`, so an erased actor leaves the notification in place.
    actor_id          bigint NULL REFERENCES users ON DELETE SET NULL,
    notification_type text NOT NULL CHECK (notification_type IN
                          ('follow', 'post_like', 'post_comment', 'application_received',
                           'application_status', 'job_closed', 'message')),
    -- The post, application, job or conversation it is about; its table depends on the type,
    -- so there is no foreign key (code that deletes those rows removes their notifications).
    related_id        bigint NULL,
    data              jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    is_read           boolean NOT NULL DEFAULT false,
    -- Names the event ("like:<post>:<user>") so the same event never notifies twice; NULL for
    -- events that may repeat. A plain (not partial) unique constraint, so it is the arbiter
    -- of `ON CONFLICT (user_id, dedup_key)` with or without `WHERE dedup_key IS NOT NULL`.
    dedup_key         text NULL CHECK (char_length(dedup_key) BETWEEN 1 AND 500),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_user_dedup_key UNIQUE (user_id, dedup_key)
);

-- Original indexes: user_id, created_at -> the keyset list; (user_id, notification_type),
-- notification_type -> the `type` filter's list (type is never queried without user_id);
-- is_read, (user_id, is_read) -> partial over unread rows, which answers the unread count
-- (index-only on its user_id prefix) and the `unread_only` list; actor_id, related_id ->
-- partial, for the actor's SET NULL and for removing a deleted object's notifications.
CREATE INDEX notifications_user_created_idx
    ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_user_type_created_idx
    ON notifications (user_id, notification_type, created_at DESC, id DESC);
CREATE INDEX notifications_user_unread_idx
    ON notifications (user_id, created_at DESC, id DESC) WHERE NOT is_read;
CREATE INDEX notifications_actor_id_idx ON notifications (actor_id) WHERE actor_id IS NOT NULL;
CREATE INDEX notifications_related_id_idx
    ON notifications (related_id, notification_type) WHERE related_id IS NOT NULL;

-- Opt-outs only: a missing row means email and push are both on for that type.
CREATE TABLE notification_preferences (
    user_id           bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    notification_type text NOT NULL CHECK (notification_type IN
                          ('follow', 'post_like', 'post_comment', 'application_received',
                           'application_status', 'job_closed', 'message')),
    email             boolean NOT NULL DEFAULT true,
    push              boolean NOT NULL DEFAULT true,
    PRIMARY KEY (user_id, notification_type)
);

-- A browser's push subscription. Upserted by endpoint: registering an endpoint another
-- account holds moves it to the new account (API.md, "Web push").
CREATE TABLE push_subscriptions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    endpoint   text NOT NULL CHECK (char_length(endpoint) BETWEEN 1 AND 2000),
    -- Base64url keys: p256dh is a 65-byte point (87 chars), auth a 16-byte secret (22 chars).
    p256dh     text NOT NULL CHECK (char_length(p256dh) BETWEEN 1 AND 200),
    auth       text NOT NULL CHECK (char_length(auth) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT push_subscriptions_endpoint_key UNIQUE (endpoint)
);

CREATE INDEX push_subscriptions_user_id_idx ON push_subscriptions (user_id);

-- One row per email, push or fan-out batch to deliver, written in the transaction that
-- causes it and claimed by the in-process workers (ARCHITECTURE.md, "Delivery rules").
CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('email', 'push', 'fanout')),
    -- Ids to re-read at delivery time, not rendered content.
    payload         jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    -- sending = claimed under a lease; skipped = no longer wanted when its turn came (read in
    -- the app meanwhile, channel turned off, subscription gone).
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'dead', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- The lease; the sweeper reclaims a 'sending' row once it passes (a killed process).
    locked_until    timestamptz NULL,
    -- Internal text, trimmed by the worker; deliberately no CHECK: a long error must never
    -- make recording the attempt fail and leave the row stuck in 'sending'.
    last_error      text NULL,
    -- Makes a retry recognisable (email Message-ID, push notification id / Topic).
    idempotency_key text NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 500),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz NULL,
    CONSTRAINT outbox_idempotency_key_key UNIQUE (idempotency_key),
    -- A 'sending' row without a lease could never be reclaimed.
    CONSTRAINT outbox_sending_has_lease_check
        CHECK (status <> 'sending' OR locked_until IS NOT NULL)
);

-- Due rows (the sweeper, the health check's oldest-due age), expired leases, and pruning of
-- finished rows after 30 days. Each covers only the rows its query can want.
CREATE INDEX outbox_pending_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_sending_lease_idx ON outbox (locked_until) WHERE status = 'sending';
CREATE INDEX outbox_finished_created_idx
    ON outbox (created_at) WHERE status IN ('sent', 'dead', 'skipped');
-- The admin deliveries page: dead rows, newest first.
CREATE INDEX outbox_dead_idx ON outbox (created_at DESC, id DESC) WHERE status = 'dead';

-- ---- moderation -----------------------------------------------------------------------------

CREATE TABLE reports (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reporter_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    target_type text NOT NULL CHECK (target_type IN ('user', 'post', 'comment', 'job')),
    -- Polymorphic (its table depends on target_type); the target may be removed while the
    -- report stays as the record of why.
    target_id   bigint NOT NULL,
    reason      text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 1000),
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz NULL,
    resolved_by bigint NULL REFERENCES users ON DELETE SET NULL,
    CONSTRAINT reports_resolved_at_check CHECK ((status = 'open') = (resolved_at IS NULL))
);

-- One open report per reporter and target; the arbiter of
-- `ON CONFLICT (reporter_id, target_type, target_id) WHERE status = 'open'`.
CREATE UNIQUE INDEX reports_open_reporter_target_key
    ON reports (reporter_id, target_type, target_id) WHERE status = 'open';
-- The admin review queue (oldest first), and "resolve every open report on this target".
CREATE INDEX reports_open_created_idx ON reports (created_at, id) WHERE status = 'open';
CREATE INDEX reports_open_target_idx ON reports (target_type, target_id) WHERE status = 'open';

-- Every admin action, shown in the admin pages.
CREATE TABLE admin_audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- SET NULL keeps the record if the admin's account is ever erased.
    admin_id    bigint NULL REFERENCES users ON DELETE SET NULL,
    action      text NOT NULL CHECK (char_length(action) BETWEEN 1 AND 100),
    target_type text NULL CHECK (char_length(target_type) BETWEEN 1 AND 50),
    target_id   bigint NULL,
    details     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX admin_audit_log_created_idx ON admin_audit_log (created_at DESC, id DESC);
