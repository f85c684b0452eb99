-- Stent schema, version 1.
--
-- Times are INTEGER unix milliseconds, UTC; NULL is the zero time.
-- Errors are the JSON encoding of persistence.ErrorInfo; NULL is no error.
-- There are no foreign keys: nothing is ever deleted from stent_execution,
-- and a child's outcome delivered to a parent row that is missing must not
-- make the child's own commit fail.

-- One row per execution. run_at is the execution's durable timer: a delayed
-- start, a retry's backoff, the end of a passivated sleep. owner,
-- lease_epoch and lease_expires_at are its lease; lease_epoch fences every
-- write made on its behalf.
CREATE TABLE stent_execution (
    id               TEXT    NOT NULL PRIMARY KEY,
    function         TEXT    NOT NULL,
    queue            TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL,
    input            BLOB,
    output           BLOB,
    error            TEXT,
    parent_id        TEXT,
    parent_pos       INTEGER NOT NULL DEFAULT 0,
    root_id          TEXT    NOT NULL,
    idempotency_key  TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    priority         INTEGER NOT NULL DEFAULT 0,
    version          TEXT    NOT NULL DEFAULT '',
    owner            TEXT,
    lease_epoch      INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    run_at           INTEGER,
    deadline         INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX stent_execution_idempotency_key ON stent_execution (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Claiming and NextRunAt: due rows by status and timer. Only live rows are
-- indexed, so the index stays small and finished steps never touch it.
CREATE INDEX stent_execution_status_run_at ON stent_execution (status, run_at)
    WHERE status IN ('pending', 'running', 'waiting');
-- RenewLeases and ReleaseLeases.
CREATE INDEX stent_execution_owner ON stent_execution (owner) WHERE owner IS NOT NULL;
CREATE INDEX stent_execution_parent_id ON stent_execution (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX stent_execution_function ON stent_execution (function, created_at);
-- ListExecutions, newest first.
CREATE INDEX stent_execution_created_at ON stent_execution (created_at);

-- The journal: one row per durable operation of an execution, by position.
CREATE TABLE stent_journal (
    execution_id TEXT    NOT NULL,
    position     INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    name         TEXT    NOT NULL DEFAULT '',
    child_id     TEXT    NOT NULL DEFAULT '',
    fire_at      INTEGER,
    done         INTEGER NOT NULL DEFAULT 0,
    output       BLOB,
    error        TEXT,
    PRIMARY KEY (execution_id, position)
) STRICT, WITHOUT ROWID;

-- The latest snapshot of an execution's journal.
CREATE TABLE stent_snapshot (
    execution_id TEXT    NOT NULL PRIMARY KEY,
    position     INTEGER NOT NULL,
    data         BLOB,
    updated_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Executions that failed for good.
CREATE TABLE stent_dead_letter (
    id           TEXT    NOT NULL PRIMARY KEY,
    execution_id TEXT    NOT NULL,
    function     TEXT    NOT NULL,
    input        BLOB,
    error        TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX stent_dead_letter_created_at ON stent_dead_letter (created_at, id);
CREATE INDEX stent_dead_letter_execution_id ON stent_dead_letter (execution_id);
