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
-- List by queue, newest first.
CREATE INDEX stent_execution_queue_created_idx ON stent_execution (queue, created_at DESC, id DESC);
-- Cleanup: the signals of an execution, consumed or not.
CREATE INDEX stent_signal_execution_idx ON stent_signal (execution_id);

-- Stats: the counts of finished executions by function, queue and status,
-- so that Stats reads a few rows instead of counting a table that grows
-- without bound. A trigger appends a delta (+1 when an execution finishes,
-- -1 when it is replayed or deleted) to stent_stats_delta: inserts only, so
-- concurrent commits never wait for each other on a counter row. Stats and
-- the nodes' heartbeats fold the deltas into stent_stats_finished, one at a
-- time (an advisory lock), and Stats reads the sum of both.
CREATE TABLE stent_stats_finished (
    function text   NOT NULL,
    queue    text   NOT NULL,
    status   text   NOT NULL,
    count    bigint NOT NULL,
    PRIMARY KEY (function, queue, status)
);

CREATE TABLE stent_stats_delta (
    function text    NOT NULL,
    queue    text    NOT NULL,
    status   text    NOT NULL,
    delta    integer NOT NULL
);

INSERT INTO stent_stats_finished (function, queue, status, count)
SELECT function, queue, status, count(*) FROM stent_execution
WHERE status IN ('completed', 'failed', 'canceled', 'timed_out')
GROUP BY function, queue, status;

-- SET search_path FROM CURRENT: the function's tables are the schema's
-- (Init runs this with search_path set to it), whatever the session's is.
CREATE FUNCTION stent_stats_track() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status IN ('completed', 'failed', 'canceled', 'timed_out') THEN
        INSERT INTO stent_stats_delta (function, queue, status, delta) VALUES (OLD.function, OLD.queue, OLD.status, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status IN ('completed', 'failed', 'canceled', 'timed_out') THEN
        INSERT INTO stent_stats_delta (function, queue, status, delta) VALUES (NEW.function, NEW.queue, NEW.status, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER stent_stats_insert AFTER INSERT ON stent_execution FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed', 'canceled', 'timed_out'))
    EXECUTE FUNCTION stent_stats_track();
CREATE TRIGGER stent_stats_update AFTER UPDATE OF status, function, queue ON stent_execution FOR EACH ROW
    WHEN ((OLD.status IN ('completed', 'failed', 'canceled', 'timed_out')
           OR NEW.status IN ('completed', 'failed', 'canceled', 'timed_out'))
          AND (OLD.status, OLD.function, OLD.queue) IS DISTINCT FROM (NEW.status, NEW.function, NEW.queue))
    EXECUTE FUNCTION stent_stats_track();
CREATE TRIGGER stent_stats_delete AFTER DELETE ON stent_execution FOR EACH ROW
    WHEN (OLD.status IN ('completed', 'failed', 'canceled', 'timed_out'))
    EXECUTE FUNCTION stent_stats_track();
