-- Stent schema, version 4: durable schedules.

-- One row per schedule: its definition and the state of its ticks. wake_at
-- is when a node must look at it next (its next tick, or sooner while a
-- tick is buffered); owner and lease_expires_at are a node's claim;
-- version goes up at every write and fences the claim's write.
CREATE TABLE stent_schedule (
    name              TEXT    NOT NULL PRIMARY KEY,
    id                TEXT    NOT NULL,
    function          TEXT    NOT NULL,
    queue             TEXT    NOT NULL DEFAULT '',
    input             BLOB,
    priority          INTEGER NOT NULL DEFAULT 0,
    spec              TEXT    NOT NULL,
    time_zone         TEXT    NOT NULL DEFAULT '',
    jitter_ms         INTEGER NOT NULL DEFAULT 0,
    start_at          INTEGER,
    end_at            INTEGER,
    overlap           TEXT    NOT NULL,
    catchup_window_ms INTEGER NOT NULL DEFAULT 0,
    catchup_latest    INTEGER NOT NULL DEFAULT 0,
    paused            INTEGER NOT NULL DEFAULT 0,
    note              TEXT    NOT NULL DEFAULT '',
    next_at           INTEGER,
    wake_at           INTEGER,
    buffered_at       INTEGER,
    last_execution_id TEXT    NOT NULL DEFAULT '',
    owner             TEXT    NOT NULL DEFAULT '',
    lease_expires_at  INTEGER,
    version           INTEGER NOT NULL DEFAULT 1,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- ClaimDueSchedules and NextScheduleAt: the live schedules by wake time.
CREATE INDEX stent_schedule_wake_at ON stent_schedule (wake_at) WHERE paused = 0;

-- What became of each tick: one row per schedule and tick time, so a tick
-- is started at most once; a row of skipped ticks may cover a range
-- (at .. last_at, count ticks).
CREATE TABLE stent_schedule_tick (
    schedule     TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    last_at      INTEGER NOT NULL,
    count        INTEGER NOT NULL DEFAULT 1,
    kind         TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    reason       TEXT    NOT NULL DEFAULT '',
    execution_id TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (schedule, at)
) STRICT, WITHOUT ROWID;
