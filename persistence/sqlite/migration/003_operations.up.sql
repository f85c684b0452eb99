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
-- List by queue, newest first.
CREATE INDEX stent_execution_queue_created ON stent_execution (queue, created_at);
-- Cleanup: the signals of an execution, consumed or not.
CREATE INDEX stent_signal_execution ON stent_signal (execution_id);

-- Stats: the counts of finished executions by function, queue and status,
-- kept by triggers, so that Stats reads a few rows instead of counting a
-- table that grows without bound. An execution enters it when it finishes
-- (once), leaves it when it is replayed or deleted. Live executions are few
-- and counted from their rows.
CREATE TABLE stent_stats_finished (
    function TEXT    NOT NULL,
    queue    TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (function, queue, status)
) STRICT, WITHOUT ROWID;

INSERT INTO stent_stats_finished (function, queue, status, count)
SELECT function, queue, status, count(*) FROM stent_execution
WHERE status IN ('completed', 'failed', 'canceled', 'timed_out')
GROUP BY function, queue, status;

CREATE TRIGGER stent_stats_finished_insert AFTER INSERT ON stent_execution
WHEN NEW.status IN ('completed', 'failed', 'canceled', 'timed_out')
BEGIN
    INSERT INTO stent_stats_finished (function, queue, status, count) VALUES (NEW.function, NEW.queue, NEW.status, 1)
    ON CONFLICT (function, queue, status) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER stent_stats_finished_update AFTER UPDATE OF status, function, queue ON stent_execution
WHEN (OLD.status IN ('completed', 'failed', 'canceled', 'timed_out')
      OR NEW.status IN ('completed', 'failed', 'canceled', 'timed_out'))
 AND (OLD.status <> NEW.status OR OLD.function <> NEW.function OR OLD.queue <> NEW.queue)
BEGIN
    UPDATE stent_stats_finished SET count = count - 1
    WHERE OLD.status IN ('completed', 'failed', 'canceled', 'timed_out')
      AND function = OLD.function AND queue = OLD.queue AND status = OLD.status;
    INSERT INTO stent_stats_finished (function, queue, status, count)
    SELECT NEW.function, NEW.queue, NEW.status, 1
    WHERE NEW.status IN ('completed', 'failed', 'canceled', 'timed_out')
    ON CONFLICT (function, queue, status) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER stent_stats_finished_delete AFTER DELETE ON stent_execution
WHEN OLD.status IN ('completed', 'failed', 'canceled', 'timed_out')
BEGIN
    UPDATE stent_stats_finished SET count = count - 1
    WHERE function = OLD.function AND queue = OLD.queue AND status = OLD.status;
END;
