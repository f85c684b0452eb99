-- Stent schema, version 2: signals, cancellation and concurrency permits.

-- RequestCancel marks every execution of a canceled tree; the owner of one
-- it could not end at once finds the mark (CancelRequested) and ends it.
ALTER TABLE stent_execution ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;

-- Signals sent to executions, kept until consumed. seq is the rowid, with
-- AUTOINCREMENT so that it never goes back, even after deletes: it orders
-- the signals of one execution in the order SendSignal committed them.
-- consumed_pos is the journal position that consumed the signal, NULL while
-- it waits.
CREATE TABLE stent_signal (
    seq          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    execution_id TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    payload      BLOB,
    created_at   INTEGER NOT NULL,
    consumed_pos INTEGER
) STRICT;

-- NextSignal, Update.WaitSignal, and counting an execution's pending
-- signals (SendSignal's limit): only unconsumed signals are indexed.
CREATE INDEX stent_signal_pending ON stent_signal (execution_id, name, seq)
    WHERE consumed_pos IS NULL;

-- Concurrency permits: one row per (key, holder), leased to a node (owner)
-- until expires_at. A permit counts while it has not expired.
CREATE TABLE stent_permit (
    key        TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key, holder)
) STRICT, WITHOUT ROWID;

-- RenewPermits finds an owner's permits; AcquirePermit and CountPermits
-- count the unexpired permits of a key.
CREATE INDEX stent_permit_owner ON stent_permit (owner);
CREATE INDEX stent_permit_key_expires_at ON stent_permit (key, expires_at);
