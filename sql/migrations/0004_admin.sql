-- The admin console (/admin): staff sessions, and the indexes its lists page through.

-- A staff session: the cookie carries the token (signed with SECRET_KEY), only its hash is
-- kept. Deleting the row (sign-out) ends it at once; so does losing is_admin or being
-- suspended, which every request checks through the join.
CREATE TABLE admin_sessions (
    token_hash  bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id     bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX admin_sessions_user_idx ON admin_sessions (user_id);

-- The reports against one target, open or resolved, newest first (a user's page).
CREATE INDEX reports_target_created_idx
    ON reports (target_type, target_id, created_at DESC, id DESC);

-- Comments newest first (the admin's comments page), and one author's (their user page).
CREATE INDEX post_comments_created_idx ON post_comments (created_at DESC, id DESC);
CREATE INDEX post_comments_user_created_idx
    ON post_comments (user_id, created_at DESC, id DESC);

-- The deliveries page: pending rows newest first (dead rows have their own). Only 'pending':
-- an index over 'sending' rows would tempt the sweeper's claim of expired leases away from
-- outbox_sending_lease_idx into a sort.
CREATE INDEX outbox_pending_created_idx
    ON outbox (created_at DESC, id DESC) WHERE status = 'pending';

-- The audit log filtered by action, by admin, or by target, newest first.
CREATE INDEX admin_audit_log_action_created_idx
    ON admin_audit_log (action, created_at DESC, id DESC);
CREATE INDEX admin_audit_log_admin_created_idx
    ON admin_audit_log (admin_id, created_at DESC, id DESC);
CREATE INDEX admin_audit_log_target_created_idx
    ON admin_audit_log (target_type, target_id, created_at DESC, id DESC);

-- Live figures for the dashboard's last-hour charts: one sample per figure per minute,
-- written by whichever worker takes the minute first (the primary key makes it once).
CREATE TABLE admin_metric_samples (
    figure   text NOT NULL CHECK (char_length(figure) BETWEEN 1 AND 50),
    taken_at timestamptz NOT NULL,
    value    double precision NOT NULL,
    PRIMARY KEY (figure, taken_at)
);

-- The dashboard's applications today (the other tables have a created_at index already).
CREATE INDEX job_applications_created_idx ON job_applications (created_at);
