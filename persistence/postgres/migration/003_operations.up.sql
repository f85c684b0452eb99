-- Stent schema, version 3: operating a deployment. Init runs this with
-- search_path set to the backend's schema, inside a transaction holding the
-- migration lock.

-- When each durable operation started (its intent was written) and ended
-- (its outcome was written), by the server's clock; NULL before version 3.
ALTER TABLE stent_journal ADD COLUMN started_at timestamptz;
ALTER TABLE stent_journal ADD COLUMN ended_at timestamptz;

-- The registry of serving nodes: what each runs, and its heartbeat.
CREATE TABLE stent_node (
    id           text        PRIMARY KEY,
    addresses    jsonb       NOT NULL DEFAULT '{}',
    functions    text[]      NOT NULL DEFAULT '{}',
    queues       text[]      NOT NULL DEFAULT '{}',
    version      text        NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);

-- Cleanup: finished roots, oldest first. Rows enter it when they finish,
-- never on a step's write.
CREATE INDEX stent_execution_finished_root_idx ON stent_execution (updated_at)
    WHERE parent_id = '' AND status IN ('completed', 'failed', 'canceled', 'timed_out');
-- Stats: counts by status, function and queue read from the index alone.
CREATE INDEX stent_execution_stats_idx ON stent_execution (status, function, queue, created_at);
-- List by queue, newest first.
CREATE INDEX stent_execution_queue_created_idx ON stent_execution (queue, created_at DESC, id DESC);
-- Cleanup: the signals of an execution, consumed or not.
CREATE INDEX stent_signal_execution_idx ON stent_signal (execution_id);
