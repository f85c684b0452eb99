-- Stent schema, version 10: the finished-count triggers without IN lists.

-- SQLite evaluates "x IN (a, b, c)" of more than two constants through a
-- temporary b-tree that it builds each time the statement runs, and a
-- trigger's program runs once per row: version 6's triggers built up to
-- four of them for every execution inserted or updated, about a third of
-- the cost of a workflow's completion. The same conditions as comparisons.

DROP TRIGGER stent_stats_finished_insert;
DROP TRIGGER stent_stats_finished_update;
DROP TRIGGER stent_stats_finished_delete;

CREATE TRIGGER stent_stats_finished_insert AFTER INSERT ON stent_execution
WHEN NEW.status = 'completed' OR NEW.status = 'failed' OR NEW.status = 'canceled' OR NEW.status = 'timed_out'
BEGIN
    INSERT INTO stent_stats_finished (function, queue, status, count) VALUES (NEW.function, NEW.queue, NEW.status, 1)
    ON CONFLICT (function, queue, status) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER stent_stats_finished_update AFTER UPDATE OF status, function, queue ON stent_execution
WHEN (OLD.status <> NEW.status OR OLD.function <> NEW.function OR OLD.queue <> NEW.queue)
 AND (OLD.status = 'completed' OR OLD.status = 'failed' OR OLD.status = 'canceled' OR OLD.status = 'timed_out'
      OR NEW.status = 'completed' OR NEW.status = 'failed' OR NEW.status = 'canceled' OR NEW.status = 'timed_out')
BEGIN
    UPDATE stent_stats_finished SET count = count - 1
    WHERE (OLD.status = 'completed' OR OLD.status = 'failed' OR OLD.status = 'canceled' OR OLD.status = 'timed_out')
      AND function = OLD.function AND queue = OLD.queue AND status = OLD.status;
    INSERT INTO stent_stats_finished (function, queue, status, count)
    SELECT NEW.function, NEW.queue, NEW.status, 1
    WHERE NEW.status = 'completed' OR NEW.status = 'failed' OR NEW.status = 'canceled' OR NEW.status = 'timed_out'
    ON CONFLICT (function, queue, status) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER stent_stats_finished_delete AFTER DELETE ON stent_execution
WHEN OLD.status = 'completed' OR OLD.status = 'failed' OR OLD.status = 'canceled' OR OLD.status = 'timed_out'
BEGIN
    UPDATE stent_stats_finished SET count = count - 1
    WHERE function = OLD.function AND queue = OLD.queue AND status = OLD.status;
END;
