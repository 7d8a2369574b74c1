-- The GitHub App's state. Portable SQL: the same file runs on SQLite and PostgreSQL.

-- Every verified delivery, stored before GitHub gets its 2xx. The delivery id is the
-- idempotency key: a repeated id is acknowledged and not processed again.
CREATE TABLE deliveries (
    delivery_id TEXT   NOT NULL PRIMARY KEY,
    event       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    received_at BIGINT NOT NULL,  -- unix milliseconds
    payload     TEXT   NOT NULL
);

-- The durable work queue. A worker claims a job by taking its lease; a job whose lease ran out
-- (its worker died) is claimed again. Failed attempts wait with backoff.
CREATE TABLE jobs (
    id          TEXT   NOT NULL PRIMARY KEY,
    kind        TEXT   NOT NULL,  -- 'delivery' | 'gate'
    payload     TEXT   NOT NULL,  -- JSON
    state       TEXT   NOT NULL,  -- 'queued' | 'running' | 'done' | 'failed'
    attempts    BIGINT NOT NULL DEFAULT 0,
    run_after   BIGINT NOT NULL,  -- unix milliseconds
    lease_owner TEXT,
    lease_until BIGINT,
    last_error  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, run_after);

-- What evalgate knows of an open pull request.
CREATE TABLE pull_requests (
    repo            TEXT   NOT NULL,
    number          BIGINT NOT NULL,
    installation_id BIGINT NOT NULL,
    head_sha        TEXT   NOT NULL,
    base_sha        TEXT   NOT NULL,
    is_fork         BIGINT NOT NULL DEFAULT 0,
    -- The pre-registered thresholds in force: frozen when the first evaluation started.
    thresholds      TEXT,
    -- The sticky comment, once posted.
    comment_id      BIGINT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (repo, number)
);
CREATE INDEX pull_requests_head ON pull_requests (repo, head_sha);

-- Check runs evalgate created, so a retry or a restart updates them instead of posting twice.
CREATE TABLE check_runs (
    repo         TEXT   NOT NULL,
    head_sha     TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    check_run_id BIGINT NOT NULL,
    PRIMARY KEY (repo, head_sha, name)
);

-- One evaluation of one bundle at one head of a pull request.
CREATE TABLE gate_runs (
    id          TEXT   NOT NULL PRIMARY KEY,
    repo        TEXT   NOT NULL,
    pr_number   BIGINT NOT NULL,
    head_sha    TEXT   NOT NULL,
    base_sha    TEXT   NOT NULL,
    bundle      TEXT   NOT NULL,  -- the bundle's name
    manifest    TEXT   NOT NULL,  -- repository path of its bundle.yaml at head
    base_manifest TEXT,           -- at base; NULL for a bundle the pull request adds
    state       TEXT   NOT NULL,  -- 'awaiting_approval' | 'queued' | 'in_progress' | 'completed' | 'cancelled'
    conclusion  TEXT,
    title       TEXT,
    report      TEXT,             -- the JSON report, once completed
    summary     TEXT,             -- the rendered check-run summary
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (repo, pr_number, head_sha, bundle)
);
CREATE INDEX gate_runs_pr ON gate_runs (repo, pr_number);
