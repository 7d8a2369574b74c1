-- Jobs of one subject run one at a time. Portable SQL: the same file runs on SQLite and
-- PostgreSQL.
--
-- A job may carry a serialisation key (a pull request's `owner/name#number`): a claim skips a
-- ready job while another job of its key is running, and the index below makes "at most one
-- running job per key" the database's rule, so two replicas claiming at once cannot both win.
-- From this migration on `attempts` counts the attempts started (the claim adds one), so an
-- attempt whose worker crashed counts too. A row already queued holds its failed attempts, to
-- which its next claim adds one: the same count.
ALTER TABLE jobs ADD COLUMN serial_key TEXT;
CREATE UNIQUE INDEX jobs_one_running_per_key ON jobs (serial_key) WHERE state = 'running' AND serial_key IS NOT NULL;
