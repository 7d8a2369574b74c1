-- The audit trail: append-only, one hash chain per repository. Each entry carries the sha256 of
-- the previous entry of its repository; no code path updates or deletes a row.
CREATE TABLE audit_entries (
    repo        TEXT   NOT NULL,
    seq         BIGINT NOT NULL,  -- 1, 2, 3 … within the repository
    at_ms       BIGINT NOT NULL,  -- unix milliseconds
    kind        TEXT   NOT NULL,  -- see app/src/audit/entry.rs `Kind`
    actor       TEXT   NOT NULL,  -- a GitHub login, or `evalgate`
    pr_number   BIGINT,
    data        TEXT   NOT NULL,  -- JSON object
    prev_sha256 TEXT   NOT NULL,  -- 64 zeros for a repository's first entry
    sha256      TEXT   NOT NULL,  -- sha256 of the entry's canonical form
    PRIMARY KEY (repo, seq)
);
CREATE INDEX audit_entries_time ON audit_entries (repo, at_ms);
