-- Stent schema, version 5: cached results (WithCache), progress
-- (counters and state) and execution tags (WithTags).

-- A completed result kept for reuse until expires_at (unix milliseconds).
-- key is the hash of the function, its version and its input.
CREATE TABLE stent_cache (
    key          TEXT    NOT NULL PRIMARY KEY,
    function     TEXT    NOT NULL,
    execution_id TEXT    NOT NULL,
    output       BLOB,
    expires_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- CachePut purges a few expired entries each time.
CREATE INDEX stent_cache_expires_at ON stent_cache (expires_at);

-- Executions whose result came from the cache, and where from.
CREATE TABLE stent_cache_hit (
    execution_id TEXT NOT NULL PRIMARY KEY,
    source_id    TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Counters of an execution tree (a root and its descendants share them).
CREATE TABLE stent_counter (
    root_id    TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    value      REAL    NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (root_id, name)
) STRICT, WITHOUT ROWID;

-- The additions applied to counters, by key, so that a replayed Add is not
-- applied twice.
CREATE TABLE stent_counter_op (
    op_key  TEXT NOT NULL PRIMARY KEY,
    root_id TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Key/value state of an execution (SetState); value is a JSON document.
CREATE TABLE stent_state (
    execution_id TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    value        BLOB,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (execution_id, key)
) STRICT, WITHOUT ROWID;

-- The tags an execution needs (WithTags): it is claimed only by a node that
-- has every one of them. Written before the execution's row, so a claim
-- never sees the row without its tags. Untagged executions have no rows.
CREATE TABLE stent_execution_tag (
    execution_id TEXT NOT NULL,
    tag          TEXT NOT NULL,
    PRIMARY KEY (execution_id, tag)
) STRICT, WITHOUT ROWID;
