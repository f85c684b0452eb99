-- Stent schema, version 6: finished counts for Stats.

-- Counting the finished executions through an index took 0.4 s at
-- 1,000,000 of them; the counts are kept instead.
DROP INDEX IF EXISTS stent_execution_stats;

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
