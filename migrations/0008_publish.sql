-- What GitHub must show is kept with the decision: a decision bumps `decision_version`, and the
-- publisher brings the check run (and the sticky comment) in line until `published_version`
-- catches up, retried with backoff, claimed with a lease so one replica publishes at a time.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.
ALTER TABLE gate_runs ADD COLUMN decision_version  BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gate_runs ADD COLUMN published_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gate_runs ADD COLUMN publish_owner     TEXT;
ALTER TABLE gate_runs ADD COLUMN publish_lease     BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gate_runs ADD COLUMN publish_after     BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gate_runs ADD COLUMN publish_attempts  BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gate_runs ADD COLUMN publish_error     TEXT;
-- The run's own check run (two runs of one name at one head, e.g. before and after a new base,
-- each keep theirs).
ALTER TABLE gate_runs ADD COLUMN check_run_id      BIGINT;
-- Annotations of an invalid bundle (JSON list), posted with its conclusion.
ALTER TABLE gate_runs ADD COLUMN annotations       TEXT;
CREATE INDEX gate_runs_unpublished ON gate_runs (publish_after);
