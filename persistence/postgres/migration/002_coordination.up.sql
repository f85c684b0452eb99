-- Stent schema, version 2: signals, cancellation and concurrency permits.
-- Init runs this with search_path set to the backend's schema, inside a
-- transaction holding the migration lock.

-- RequestCancel marks every execution of a canceled tree; the owner of one
-- it could not end at once finds the mark (CancelRequested) and ends it.
-- A constant default: existing rows are not rewritten.
ALTER TABLE stent_execution ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;

-- Signals sent to executions, kept until consumed. seq orders the signals
-- of one execution in the order SendSignal committed them: SendSignal locks
-- the execution's row before it draws seq. consumed_pos is the journal
-- position that consumed the signal, NULL while it waits.
CREATE TABLE stent_signal (
    id           text        PRIMARY KEY,
    execution_id text        NOT NULL,
    name         text        NOT NULL,
    payload      bytea,
    seq          bigint      NOT NULL GENERATED ALWAYS AS IDENTITY,
    created_at   timestamptz NOT NULL DEFAULT now(),
    consumed_pos integer
);

-- NextSignal, Update.WaitSignal, and counting an execution's pending
-- signals (SendSignal's limit): only unconsumed signals are indexed.
CREATE INDEX stent_signal_pending_idx ON stent_signal (execution_id, name, seq)
    WHERE consumed_pos IS NULL;

-- Concurrency permits: one row per (key, holder), leased to a node (owner)
-- until expires_at. A permit counts while it has not expired.
CREATE TABLE stent_permit (
    key        text        NOT NULL,
    holder     text        NOT NULL,
    owner      text        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (key, holder)
);

-- RenewPermits finds an owner's permits; AcquirePermit and CountPermits
-- count the unexpired permits of a key.
CREATE INDEX stent_permit_owner_idx ON stent_permit (owner);
CREATE INDEX stent_permit_key_idx ON stent_permit (key, expires_at);
