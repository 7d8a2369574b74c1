-- What GitHub must show for the checks that are not one gate run's — `evalgate/pre-registration`,
-- `evalgate/golden-set` and the aggregate `evalgate` — kept with a version as gate runs are, and
-- brought to GitHub by the same publisher (retried with backoff, claimed with a lease). `body`
-- is the typed check-run body as JSON; a write that changes it bumps `version`.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.
CREATE TABLE check_states (
    repo              TEXT   NOT NULL,
    head_sha          TEXT   NOT NULL,
    name              TEXT   NOT NULL,
    installation_id   BIGINT NOT NULL,
    body              TEXT   NOT NULL,
    version           BIGINT NOT NULL DEFAULT 1,
    published_version BIGINT NOT NULL DEFAULT 0,
    publish_owner     TEXT,
    publish_lease     BIGINT NOT NULL DEFAULT 0,
    publish_after     BIGINT NOT NULL DEFAULT 0,
    publish_attempts  BIGINT NOT NULL DEFAULT 0,
    publish_error     TEXT,
    -- The body GitHub was last brought to: a publication of the same body again writes nothing.
    published_body    TEXT,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (repo, head_sha, name)
);
-- The publisher's claim looks only at what GitHub does not show yet: a partial index keeps that
-- a look at a handful of rows however many checks are kept (both databases take the form).
CREATE INDEX check_states_pending ON check_states (updated_at) WHERE version > published_version;
CREATE INDEX gate_runs_pending ON gate_runs (updated_at) WHERE decision_version > published_version;

-- What a head was last read as, for each subject that has it as its head: a pull request
-- (`subject` is its number) or a merge-queue group (`subject` 0). Two pull requests can share a
-- head, and GitHub shows one `evalgate` check per commit, so that check sums up every open
-- subject of the head: each against its own base. `touched` is NULL while the head is being read
-- against `base_sha` (a first read, or a base that moved): the check is then pending, never an
-- earlier read's success. `state` is 'open', 'closed' (the pull request closed, the group
-- destroyed: left out while another subject of the head is open) or 'failed' (the read gave up:
-- the check fails, never passes).
CREATE TABLE head_syncs (
    repo       TEXT   NOT NULL,
    head_sha   TEXT   NOT NULL,
    subject    BIGINT NOT NULL,
    base_sha   TEXT   NOT NULL,
    touched    BIGINT,
    state      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repo, head_sha, subject)
);
CREATE INDEX head_syncs_subject ON head_syncs (repo, subject);

-- Merge-queue groups: the group's head is compared with its base (what the base branch becomes
-- against what it is). Their gate runs carry pr_number 0 (GitHub numbers pull requests from 1).
CREATE TABLE merge_groups (
    repo            TEXT   NOT NULL,
    head_sha        TEXT   NOT NULL,
    base_sha        TEXT   NOT NULL,
    head_ref        TEXT   NOT NULL,
    installation_id BIGINT NOT NULL,
    state           TEXT   NOT NULL,  -- 'open' | 'destroyed'
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (repo, head_sha)
);
