-- Bundle identity by manifest path, and one gate run per (base commit, head commit) pair.
-- Portable SQL: the same file runs on SQLite and PostgreSQL (SQLite cannot change a table's
-- UNIQUE constraint, so the table is rebuilt).
CREATE TABLE gate_runs_v2 (
    id              TEXT   NOT NULL PRIMARY KEY,
    repo            TEXT   NOT NULL,
    pr_number       BIGINT NOT NULL,
    head_sha        TEXT   NOT NULL,
    base_sha        TEXT   NOT NULL,  -- the merge base of the head and the PR's base branch
    bundle          TEXT   NOT NULL,  -- the bundle's name (the check run is `evalgate/<name>`)
    manifest        TEXT   NOT NULL,  -- the bundle's identity: its bundle.yaml at head (at base when removed)
    base_manifest   TEXT,             -- its bundle.yaml at base; NULL for a bundle the PR adds
    kind            TEXT   NOT NULL,  -- 'paired' | 'added' | 'removed' | 'duplicate'
    state           TEXT   NOT NULL,
    conclusion      TEXT,
    title           TEXT,
    report          TEXT,
    summary         TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    override_by     TEXT,
    override_reason TEXT,
    UNIQUE (repo, pr_number, head_sha, base_sha, manifest)
);
INSERT INTO gate_runs_v2 (id, repo, pr_number, head_sha, base_sha, bundle, manifest, base_manifest, kind, state,
                          conclusion, title, report, summary, created_at, updated_at, override_by, override_reason)
SELECT id, repo, pr_number, head_sha, base_sha, bundle, manifest, base_manifest,
       CASE WHEN base_manifest IS NULL THEN 'added' ELSE 'paired' END, state,
       conclusion, title, report, summary, created_at, updated_at, override_by, override_reason
FROM gate_runs;
DROP TABLE gate_runs;
ALTER TABLE gate_runs_v2 RENAME TO gate_runs;
CREATE INDEX gate_runs_pr ON gate_runs (repo, pr_number);
