-- What reviewers decide on a pull request. Portable SQL: the same file runs on SQLite and PostgreSQL.

-- `/evalgate approve-golden` (kind 'golden'): an approval holds for the exact change it saw
-- (its fingerprint), so a later push that changes the golden set again needs a new one.
CREATE TABLE approvals (
    repo        TEXT   NOT NULL,
    pr_number   BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    fingerprint TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    at_ms       BIGINT NOT NULL,
    PRIMARY KEY (repo, pr_number, kind, fingerprint)
);

-- The golden-set change last shown on a head, so an approval can name what it approves.
CREATE TABLE golden_changes (
    repo        TEXT NOT NULL,
    head_sha    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    title       TEXT NOT NULL,
    summary     TEXT NOT NULL,
    PRIMARY KEY (repo, head_sha)
);

-- `/evalgate override <reason>`: who turned a gate green, and why.
ALTER TABLE gate_runs ADD COLUMN override_by TEXT;
ALTER TABLE gate_runs ADD COLUMN override_reason TEXT;

-- Thresholds of a body edited after the first evaluation, awaiting `/evalgate accept-thresholds`.
ALTER TABLE pull_requests ADD COLUMN pending_thresholds TEXT;
