-- Stent schema, version 4: durable schedules.

-- One row per schedule: its definition and the state of its ticks. wake_at
-- is when a node must look at it next (its next tick, or sooner while a
-- tick is buffered); owner and lease_expires_at are a node's claim;
-- version goes up at every write and fences the claim's write.
CREATE TABLE stent_schedule (
    name              text        NOT NULL PRIMARY KEY,
    id                text        NOT NULL,
    function          text        NOT NULL,
    queue             text        NOT NULL DEFAULT '',
    input             bytea,
    priority          integer     NOT NULL DEFAULT 0,
    spec              text        NOT NULL,
    time_zone         text        NOT NULL DEFAULT '',
    jitter_ms         bigint      NOT NULL DEFAULT 0,
    start_at          timestamptz,
    end_at            timestamptz,
    overlap           text        NOT NULL,
    catchup_window_ms bigint      NOT NULL DEFAULT 0,
    catchup_latest    boolean     NOT NULL DEFAULT false,
    paused            boolean     NOT NULL DEFAULT false,
    note              text        NOT NULL DEFAULT '',
    next_at           timestamptz,
    wake_at           timestamptz,
    buffered_at       timestamptz,
    last_execution_id text        NOT NULL DEFAULT '',
    owner             text        NOT NULL DEFAULT '',
    lease_expires_at  timestamptz,
    version           bigint      NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- ClaimDueSchedules and NextScheduleAt: the live schedules by wake time.
CREATE INDEX stent_schedule_wake_at ON stent_schedule (wake_at) WHERE NOT paused;

-- What became of each tick: one row per schedule and tick time, so a tick
-- is started at most once; a row of skipped ticks may cover a range
-- (at .. last_at, count ticks).
CREATE TABLE stent_schedule_tick (
    schedule     text        NOT NULL,
    at           timestamptz NOT NULL,
    last_at      timestamptz NOT NULL,
    count        integer     NOT NULL DEFAULT 1,
    kind         text        NOT NULL,
    status       text        NOT NULL,
    reason       text        NOT NULL DEFAULT '',
    execution_id text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, at)
);
