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
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (repo, head_sha, name)
);
CREATE INDEX check_states_unpublished ON check_states (publish_after);

-- What a head (a pull request's, or a merge-queue group's) was last read as: against which
-- base, and how many bundles it touches. The `evalgate` check sums up the runs of exactly this
-- (head, base) pair, and says "no bundle touched" only once this row says so.
CREATE TABLE head_syncs (
    repo       TEXT   NOT NULL,
    head_sha   TEXT   NOT NULL,
    base_sha   TEXT   NOT NULL,
    touched    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repo, head_sha)
);

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
