-- Stent schema, version 1. Init runs this with search_path set to the
-- backend's schema, inside a transaction holding the migration lock.

CREATE TABLE stent_execution (
    id               text        PRIMARY KEY,
    function         text        NOT NULL,
    queue            text        NOT NULL DEFAULT '',
    status           text        NOT NULL CHECK (status IN ('pending', 'running', 'waiting', 'completed', 'failed', 'canceled', 'timed_out')),
    input            bytea,
    output           bytea,
    error            jsonb,
    parent_id        text        NOT NULL DEFAULT '',
    parent_pos       integer     NOT NULL DEFAULT 0,
    root_id          text        NOT NULL,
    idempotency_key  text,
    attempts         integer     NOT NULL DEFAULT 0,
    priority         integer     NOT NULL DEFAULT 0,
    version          text        NOT NULL DEFAULT '',
    owner            text        NOT NULL DEFAULT '',
    lease_epoch      bigint      NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    run_at           timestamptz,
    deadline         timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- An idempotency key is unique across all executions; "" is stored as NULL.
CREATE UNIQUE INDEX stent_execution_idempotency_key_idx ON stent_execution (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- ClaimDue and NextRunAt scan the executions that can still run.
CREATE INDEX stent_execution_claim_idx ON stent_execution (status, run_at)
    WHERE status IN ('pending', 'running', 'waiting');
CREATE INDEX stent_execution_queue_idx ON stent_execution (queue, priority DESC, created_at, id)
    WHERE status IN ('pending', 'running', 'waiting');

-- RenewLeases and ReleaseLeases find an owner's leases.
CREATE INDEX stent_execution_owner_idx ON stent_execution (owner) WHERE owner <> '';

-- Children of an execution, and listing newest first.
CREATE INDEX stent_execution_parent_idx ON stent_execution (parent_id) WHERE parent_id <> '';
CREATE INDEX stent_execution_created_idx ON stent_execution (created_at DESC, id DESC);

CREATE TABLE stent_journal (
    execution_id text        NOT NULL,
    position     integer     NOT NULL,
    kind         text        NOT NULL,
    name         text        NOT NULL DEFAULT '',
    child_id     text        NOT NULL DEFAULT '',
    fire_at      timestamptz,
    done         boolean     NOT NULL DEFAULT false,
    output       bytea,
    error        jsonb,
    PRIMARY KEY (execution_id, position)
);

CREATE TABLE stent_snapshot (
    execution_id text    PRIMARY KEY,
    position     integer NOT NULL,
    data         bytea   NOT NULL
);

CREATE TABLE stent_dead_letter (
    id           text        PRIMARY KEY,
    execution_id text        NOT NULL,
    function     text        NOT NULL,
    input        bytea,
    error        jsonb,
    attempts     integer     NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX stent_dead_letter_created_idx ON stent_dead_letter (created_at, id);
CREATE INDEX stent_dead_letter_execution_idx ON stent_dead_letter (execution_id);
