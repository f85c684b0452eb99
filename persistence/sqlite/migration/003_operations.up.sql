-- Stent schema, version 3: operating a deployment.

-- When each durable operation started (its intent was written) and ended
-- (its outcome was written), by the backend's clock; NULL before version 3.
ALTER TABLE stent_journal ADD COLUMN started_at INTEGER;
ALTER TABLE stent_journal ADD COLUMN ended_at INTEGER;

-- The registry of serving nodes: what each runs, and its heartbeat.
-- addresses is a JSON object by kind, functions and queues JSON arrays.
CREATE TABLE stent_node (
    id           TEXT    NOT NULL PRIMARY KEY,
    addresses    TEXT    NOT NULL DEFAULT '{}',
    functions    TEXT    NOT NULL DEFAULT '[]',
    queues       TEXT    NOT NULL DEFAULT '[]',
    version      TEXT    NOT NULL DEFAULT '',
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Cleanup: finished roots, oldest first. Rows enter it when they finish,
-- never on a step's write.
CREATE INDEX stent_execution_finished_root ON stent_execution (updated_at)
    WHERE parent_id IS NULL AND status IN ('completed', 'failed', 'canceled', 'timed_out');
-- Stats: counts by status, function and queue read from the index alone.
CREATE INDEX stent_execution_stats ON stent_execution (status, function, queue, created_at);
-- List by queue, newest first.
CREATE INDEX stent_execution_queue_created ON stent_execution (queue, created_at);
-- Cleanup: the signals of an execution, consumed or not.
CREATE INDEX stent_signal_execution ON stent_signal (execution_id);
