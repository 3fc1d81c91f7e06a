-- Job alerts: a high-water mark that only moves past committed work.
--
-- A job's id is taken when it is inserted, not when it commits, so an id mark ("jobs with
-- id > last_job_id") skips a job whose transaction commits after a run saw a higher id. The
-- mark is now a snapshot instead: each job records the transaction that inserted it, and
-- each run of an alert stores the snapshot it read the jobs in. The next run sends the jobs
-- whose transaction committed after that snapshot and before its own, and stores its own:
-- the windows of successive runs meet without overlap, so a job is sent once and never
-- skipped. sql/alerts.py has the queries and the argument in full.

-- Jobs from before this migration read as inserted by transaction 0, which every snapshot
-- sees as committed (they were: this ALTER waits for the inserts in flight). A constant
-- default adds the column without rewriting the table; new rows get their own transaction.
ALTER TABLE jobs ADD COLUMN created_xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE jobs ALTER COLUMN created_xid SET DEFAULT pg_current_xact_id();

-- Bounds a run's window: from the last snapshot's xmin to this snapshot's xmax.
CREATE INDEX jobs_created_xid_idx ON jobs (created_xid);

-- The snapshot of the alert's last run; NULL before its first run under this scheme. Until
-- then its last_job_id (the old id mark) still applies, so an alert that ran before this
-- migration does not send again what it sent; that first run clears it.
ALTER TABLE job_alerts ADD COLUMN job_snapshot pg_snapshot NULL;
