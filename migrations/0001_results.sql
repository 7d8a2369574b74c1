-- Content-addressed results of model calls: agent transcripts and judge votes.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.
CREATE TABLE results (
    kind       TEXT    NOT NULL,  -- 'transcript' | 'vote'
    key        TEXT    NOT NULL,  -- 64 lowercase hex: sha256 of everything that decides the result
    value      TEXT    NOT NULL,  -- JSON
    created_at BIGINT  NOT NULL,  -- unix seconds
    PRIMARY KEY (kind, key)
);
