-- Pin tracking. Portable SQL: the same file runs on SQLite and PostgreSQL.

-- Repositories the App is installed on (from installation events and pull requests seen).
CREATE TABLE repositories (
    repo            TEXT   NOT NULL PRIMARY KEY,
    installation_id BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- The daily record: each pin of each bundle, the newest snapshot of its family, the lag.
CREATE TABLE pin_records (
    repo            TEXT   NOT NULL,
    bundle          TEXT   NOT NULL,
    role            TEXT   NOT NULL,  -- 'model' | 'judge'
    provider        TEXT   NOT NULL,
    pinned          TEXT   NOT NULL,
    newest          TEXT,
    lag_days        BIGINT,           -- NULL: unknown (the server reports no release times)
    retires_in_days BIGINT,
    checked_at      BIGINT NOT NULL,
    PRIMARY KEY (repo, bundle, role)
);

-- The bump pull request of each bundle, and the commit evalgate last put on its branch: a
-- branch whose head is another commit was pushed to by a person and is left alone.
CREATE TABLE pin_bumps (
    repo       TEXT   NOT NULL,
    bundle     TEXT   NOT NULL,
    branch     TEXT   NOT NULL,
    pr_number  BIGINT NOT NULL,
    proposed   TEXT   NOT NULL,  -- JSON: [{"role", "from", "to"}, …]
    commit_sha TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repo, bundle)
);

-- Snapshots not to propose again: their bump PR was closed without merging.
CREATE TABLE pin_skips (
    repo     TEXT   NOT NULL,
    bundle   TEXT   NOT NULL,
    snapshot TEXT   NOT NULL,
    at_ms    BIGINT NOT NULL,
    PRIMARY KEY (repo, bundle, snapshot)
);

-- One row per scheduled slot that fired: the primary key lets exactly one replica queue it.
CREATE TABLE schedule_slots (
    name    TEXT   NOT NULL,
    slot_ms BIGINT NOT NULL,
    PRIMARY KEY (name, slot_ms)
);
