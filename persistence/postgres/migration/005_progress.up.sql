-- Stent schema, version 5: cached results (WithCache), progress
-- (counters and state) and execution tags (WithTags). Init runs this with
-- search_path set to the backend's schema, inside a transaction holding the
-- migration lock.

-- A completed result kept for reuse until expires_at. key is the hash of
-- the function, its version and its input.
CREATE TABLE stent_cache (
    key          text        PRIMARY KEY,
    function     text        NOT NULL,
    execution_id text        NOT NULL,
    output       bytea,
    expires_at   timestamptz NOT NULL
);

-- CachePut purges a few expired entries each time.
CREATE INDEX stent_cache_expires_at_idx ON stent_cache (expires_at);

-- Executions whose result came from the cache, and where from.
CREATE TABLE stent_cache_hit (
    execution_id text PRIMARY KEY,
    source_id    text NOT NULL
);

-- Counters of an execution tree (a root and its descendants share them).
CREATE TABLE stent_counter (
    root_id    text             NOT NULL,
    name       text             NOT NULL,
    value      double precision NOT NULL DEFAULT 0,
    updated_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (root_id, name)
);

-- The additions applied to counters, by key, so that a replayed Add is not
-- applied twice.
CREATE TABLE stent_counter_op (
    op_key  text PRIMARY KEY,
    root_id text NOT NULL
);

-- Key/value state of an execution (SetState); value is a JSON document.
CREATE TABLE stent_state (
    execution_id text        NOT NULL,
    key          text        NOT NULL,
    value        bytea,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, key)
);

-- The tags an execution needs (WithTags): it is claimed only by a node that
-- has every one of them. Written before the execution's row, so a claim
-- never sees the row without its tags. Untagged executions have no rows.
CREATE TABLE stent_execution_tag (
    execution_id text NOT NULL,
    tag          text NOT NULL,
    PRIMARY KEY (execution_id, tag)
);
