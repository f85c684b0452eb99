-- Queries of the SQLite backend, named <Entity><Verb> as in the Postgres
-- backend. Parameters are ?NNN. Times are unix milliseconds, UTC.
-- Every query that returns executions selects the same columns in the same
-- order (see scanExecution).

-- name: MigrationCreateTable
CREATE TABLE IF NOT EXISTS stent_migration (
    version    INTEGER NOT NULL PRIMARY KEY,
    applied_at INTEGER NOT NULL
) STRICT;

-- name: MigrationVersion
SELECT COALESCE(MAX(version), 0) FROM stent_migration;

-- name: MigrationInsert
INSERT INTO stent_migration (version, applied_at) VALUES (?1, ?2);

-- name: ExecutionInsert
-- An empty root_id (?10) becomes the parent's root, or the execution's own ID.
-- A conflict on the ID or on the idempotency key inserts nothing (no change);
-- the caller then looks the existing row up. The caller knows the row it
-- inserted from its parameters: nothing is returned, as reading a row back
-- costs about as much as writing it.
INSERT INTO stent_execution (
    id, function, queue, status, input, output, error, parent_id, parent_pos, root_id,
    idempotency_key, attempts, priority, version, owner, lease_epoch, lease_expires_at,
    run_at, deadline, created_at, updated_at, trace_context)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
        COALESCE(NULLIF(?10, ''), (SELECT p.root_id FROM stent_execution p WHERE p.id = ?8), ?1),
        ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)
ON CONFLICT DO NOTHING;

-- name: ExecutionInsertChild
-- A replayed start of a child finds its row and leaves it as it is.
INSERT INTO stent_execution (
    id, function, queue, status, input, output, error, parent_id, parent_pos, root_id,
    idempotency_key, attempts, priority, version, owner, lease_epoch, lease_expires_at,
    run_at, deadline, created_at, updated_at, trace_context)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
        COALESCE(NULLIF(?10, ''), (SELECT p.root_id FROM stent_execution p WHERE p.id = ?8), ?1),
        ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)
ON CONFLICT (id) DO NOTHING;

-- name: ExecutionGet
SELECT id, function, queue, status, input, output, error, parent_id, parent_pos, root_id,
       idempotency_key, attempts, priority, version, owner, lease_epoch, lease_expires_at,
       run_at, deadline, created_at, updated_at, cancel_requested, trace_context
FROM stent_execution WHERE id = ?1;

-- name: ExecutionGetByKey
SELECT id, function, queue, status, input, output, error, parent_id, parent_pos, root_id,
       idempotency_key, attempts, priority, version, owner, lease_epoch, lease_expires_at,
       run_at, deadline, created_at, updated_at, cancel_requested, trace_context
FROM stent_execution WHERE idempotency_key = ?1;

-- name: ExecutionEpoch
SELECT lease_epoch FROM stent_execution WHERE id = ?1;

-- name: ExecutionUpdate
-- ?2 status or NULL to keep; ?3 set output; ?5 set error; ?7 attempts or 0 to
-- keep; ?8 set run_at; ?10 release; ?11 now. A cancel requested while the
-- execution was passivating (status waiting) makes it due now: it is
-- claimed again at once, and its next activation ends it canceled.
UPDATE stent_execution SET
    status           = COALESCE(?2, status),
    output           = CASE WHEN ?3 THEN ?4 ELSE output END,
    error            = CASE WHEN ?5 THEN ?6 ELSE error END,
    attempts         = CASE WHEN ?7 > 0 THEN ?7 ELSE attempts END,
    run_at           = CASE WHEN ?2 = 'waiting' AND cancel_requested = 1 THEN ?11
                            WHEN ?8 THEN ?9 ELSE run_at END,
    owner            = CASE WHEN ?10 THEN NULL ELSE owner END,
    lease_expires_at = CASE WHEN ?10 THEN ?11 ELSE lease_expires_at END,
    updated_at       = ?11
WHERE id = ?1;

-- name: ExecutionReplay
UPDATE stent_execution SET
    status = 'pending', attempts = 0, error = NULL, output = NULL,
    owner = NULL, lease_expires_at = ?2, run_at = NULL, updated_at = ?2
WHERE id = ?1
RETURNING id, function, queue, status, input, output, error, parent_id, parent_pos, root_id,
          idempotency_key, attempts, priority, version, owner, lease_epoch, lease_expires_at,
          run_at, deadline, created_at, updated_at, cancel_requested, trace_context;

-- name: ExecutionNextRunAt
SELECT MIN(run_at) FROM stent_execution
WHERE status IN ('pending', 'waiting') AND run_at IS NOT NULL
  AND (owner IS NULL OR owner = '' OR lease_expires_at < ?1)
  AND (?2 IS NULL OR queue IN (SELECT value FROM json_each(?2)))
  AND NOT EXISTS (SELECT 1 FROM stent_execution_tag t WHERE t.execution_id = stent_execution.id
                  AND (?3 IS NULL OR t.tag NOT IN (SELECT value FROM json_each(?3))));

-- name: LeaseAcquire
UPDATE stent_execution SET
    owner = ?2, lease_epoch = lease_epoch + 1, lease_expires_at = ?3,
    status = 'running', run_at = NULL, updated_at = ?4
WHERE id = ?1 AND status IN ('pending', 'running', 'waiting')
  AND (owner IS NULL OR owner = '' OR owner = ?2 OR lease_expires_at < ?4)
RETURNING id, function, queue, status, input, output, error, parent_id, parent_pos, root_id,
          idempotency_key, attempts, priority, version, owner, lease_epoch, lease_expires_at,
          run_at, deadline, created_at, updated_at, cancel_requested, trace_context;

-- name: LeaseClaim
-- ?4 and ?6 are JSON arrays of queue and function names, or NULL for every
-- one; ?7 a JSON array of the node's tags, or NULL for none: an execution
-- with a tag not among them is left to other nodes. ?8 is now by the clock of
-- due times (WithClock), ?3 by the host's (leases).
-- The plain status IN (...) lets the planner use the partial index of live
-- rows (it cannot infer it from the OR below); the + before function keeps
-- it off stent_execution_function, which holds every finished execution.
UPDATE stent_execution SET
    owner = ?1, lease_epoch = lease_epoch + 1, lease_expires_at = ?2,
    status = 'running', run_at = NULL, updated_at = ?3
WHERE id IN (
    SELECT id FROM stent_execution
    WHERE status IN ('pending', 'running', 'waiting')
      AND ((status IN ('pending', 'running') AND (run_at IS NULL OR run_at <= ?8))
           OR (status = 'waiting' AND run_at <= ?8))
      AND (owner IS NULL OR owner = '' OR lease_expires_at < ?3)
      AND (?4 IS NULL OR queue IN (SELECT value FROM json_each(?4)))
      AND (?6 IS NULL OR +function IN (SELECT value FROM json_each(?6)))
      AND NOT EXISTS (SELECT 1 FROM stent_execution_tag t WHERE t.execution_id = stent_execution.id
                      AND (?7 IS NULL OR t.tag NOT IN (SELECT value FROM json_each(?7))))
    ORDER BY priority DESC, created_at, id
    LIMIT ?5)
RETURNING id, function, queue, status, input, output, error, parent_id, parent_pos, root_id,
          idempotency_key, attempts, priority, version, owner, lease_epoch, lease_expires_at,
          run_at, deadline, created_at, updated_at, cancel_requested, trace_context;

-- name: LeaseRenew
-- Terminal executions hold no lease worth renewing.
UPDATE stent_execution SET lease_expires_at = ?2
WHERE owner = ?1 AND status IN ('pending', 'running', 'waiting')
  AND id IN (SELECT value FROM json_each(?3));

-- name: LeaseRelease
-- A terminal row keeps its updated_at: it is when the execution ended.
UPDATE stent_execution SET owner = NULL, lease_expires_at = ?2,
    updated_at = CASE WHEN status IN ('pending', 'running', 'waiting') THEN ?2 ELSE updated_at END
WHERE owner = ?1;

-- name: JournalUpsert
-- ?10 is now; ?11 and ?12 the start and end the writer gives (NULL: now).
-- The entry's start is set when inserted, its end once done; a later write
-- keeps both, and keeps input (?13) and attempts (?14) when it has none.
INSERT INTO stent_journal (execution_id, position, kind, name, child_id, fire_at, done, output, error,
                           started_at, ended_at, input, attempts)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, COALESCE(?11, ?10), CASE WHEN ?7 THEN COALESCE(?12, ?10) END, ?13, ?14)
ON CONFLICT (execution_id, position) DO UPDATE SET
    kind = excluded.kind, name = excluded.name, child_id = excluded.child_id,
    fire_at = excluded.fire_at, done = excluded.done, output = excluded.output,
    error = excluded.error,
    ended_at = CASE WHEN excluded.done THEN COALESCE(stent_journal.ended_at, excluded.ended_at) END,
    input = COALESCE(excluded.input, stent_journal.input),
    attempts = COALESCE(excluded.attempts, stent_journal.attempts);

-- name: JournalUpsertFenced
-- JournalUpsert, only while execution ?1 is at lease epoch ?15: the fence
-- and the write of a commit that holds one journal entry in one statement.
-- It changes no row when the execution is missing or at another epoch.
INSERT INTO stent_journal (execution_id, position, kind, name, child_id, fire_at, done, output, error,
                           started_at, ended_at, input, attempts)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, COALESCE(?11, ?10), CASE WHEN ?7 THEN COALESCE(?12, ?10) END, ?13, ?14
WHERE EXISTS (SELECT 1 FROM stent_execution WHERE id = ?1 AND lease_epoch = ?15)
ON CONFLICT (execution_id, position) DO UPDATE SET
    kind = excluded.kind, name = excluded.name, child_id = excluded.child_id,
    fire_at = excluded.fire_at, done = excluded.done, output = excluded.output,
    error = excluded.error,
    ended_at = CASE WHEN excluded.done THEN COALESCE(stent_journal.ended_at, excluded.ended_at) END,
    input = COALESCE(excluded.input, stent_journal.input),
    attempts = COALESCE(excluded.attempts, stent_journal.attempts);

-- name: JournalDelete
DELETE FROM stent_journal WHERE execution_id = ?1 AND position = ?2;

-- name: JournalDeleteFailed
DELETE FROM stent_journal WHERE execution_id = ?1 AND done = 1 AND error IS NOT NULL;

-- name: JournalReopen
-- A failure recorded at a position goes back to an intent.
UPDATE stent_journal SET done = 0, output = NULL, error = NULL, ended_at = NULL, attempts = NULL
WHERE execution_id = ?1 AND position = ?2 AND error IS NOT NULL;

-- name: JournalLoad
-- The snapshot (kind 0) and the entries after it (kind 1), read in one
-- statement so that both come from the same database snapshot.
SELECT 0, position, NULL, NULL, NULL, NULL, 0, data, NULL
FROM stent_snapshot WHERE execution_id = ?1
UNION ALL
SELECT 1, position, kind, name, child_id, fire_at, done, output, error
FROM stent_journal
WHERE execution_id = ?1
  AND position > COALESCE((SELECT position FROM stent_snapshot WHERE execution_id = ?1), -9223372036854775808)
ORDER BY 1, 2;

-- name: SnapshotUpsert
INSERT INTO stent_snapshot (execution_id, position, data, updated_at) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (execution_id) DO UPDATE SET
    position = excluded.position, data = excluded.data, updated_at = excluded.updated_at;

-- name: SnapshotDelete
DELETE FROM stent_snapshot WHERE execution_id = ?1;

-- name: DeadLetterInsert
-- A commit applied twice (a retry after an unknown outcome) finds its row.
INSERT INTO stent_dead_letter (id, execution_id, function, input, error, attempts, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (id) DO NOTHING;

-- name: DeadLetterGet
SELECT id, execution_id, function, input, error, attempts, created_at
FROM stent_dead_letter WHERE id = ?1;

-- name: DeadLetterList
SELECT id, execution_id, function, input, error, attempts, created_at
FROM stent_dead_letter ORDER BY created_at, id LIMIT ?1;

-- name: DeadLetterDelete
DELETE FROM stent_dead_letter WHERE id = ?1;

-- name: DeadLetterDeleteByExecution
DELETE FROM stent_dead_letter WHERE execution_id = ?1;

-- name: SignalGet
SELECT id, execution_id, name, payload, seq, created_at, consumed_pos
FROM stent_signal WHERE id = ?1;

-- name: SignalInsert
INSERT INTO stent_signal (id, execution_id, name, payload, created_at)
VALUES (?1, ?2, ?3, ?4, ?5)
RETURNING seq;

-- name: SignalCountPending
SELECT count(*) FROM stent_signal WHERE execution_id = ?1 AND consumed_pos IS NULL;

-- name: SignalNext
-- The oldest unconsumed signal of a name.
SELECT id, execution_id, name, payload, seq, created_at, consumed_pos
FROM stent_signal
WHERE execution_id = ?1 AND name = ?2 AND consumed_pos IS NULL
ORDER BY seq
LIMIT 1;

-- name: SignalPending
-- Whether an unconsumed signal of a name waits (Update.WaitSignal).
SELECT EXISTS (
    SELECT 1 FROM stent_signal WHERE execution_id = ?1 AND name = ?2 AND consumed_pos IS NULL);

-- name: SignalConsume
-- Consuming a signal at the position that consumed it already is the same
-- commit applied again, and changes nothing.
UPDATE stent_signal SET consumed_pos = ?3
WHERE id = ?1 AND execution_id = ?2 AND (consumed_pos IS NULL OR consumed_pos = ?3);

-- name: ExecutionWake
-- A signal for a waiting execution makes it due now.
UPDATE stent_execution SET run_at = ?2, updated_at = ?2
WHERE id = ?1 AND status = 'waiting'
RETURNING id, function, queue, status, input, output, error, parent_id, parent_pos, root_id,
          idempotency_key, attempts, priority, version, owner, lease_epoch, lease_expires_at,
          run_at, deadline, created_at, updated_at, cancel_requested, trace_context;

-- name: ExecutionCancelTree
-- Marks execution ?1 and every live execution below it (by parent_id; UNION
-- stops at a cycle) as cancel requested. Those without an owner or with an
-- expired lease (?2 is now) end canceled at once, with error ?3 completed
-- by the execution's identity, and lose their lease.
UPDATE stent_execution SET
    cancel_requested = 1,
    status = CASE WHEN owner IS NULL OR owner = '' OR lease_expires_at IS NULL OR lease_expires_at < ?2
                  THEN 'canceled' ELSE status END,
    error = CASE WHEN owner IS NULL OR owner = '' OR lease_expires_at IS NULL OR lease_expires_at < ?2
                 THEN json_set(?3, '$.function', function, '$.execution_id', id, '$.attempts', attempts)
                 ELSE error END,
    run_at = CASE WHEN owner IS NULL OR owner = '' OR lease_expires_at IS NULL OR lease_expires_at < ?2
                  THEN NULL ELSE run_at END,
    lease_expires_at = CASE WHEN owner IS NULL OR owner = '' OR lease_expires_at IS NULL OR lease_expires_at < ?2
                            THEN ?2 ELSE lease_expires_at END,
    owner = CASE WHEN owner IS NULL OR owner = '' OR lease_expires_at IS NULL OR lease_expires_at < ?2
                 THEN NULL ELSE owner END,
    updated_at = ?2
WHERE status IN ('pending', 'running', 'waiting')
  AND id IN (
    WITH RECURSIVE tree(id) AS (
        SELECT id FROM stent_execution WHERE id = ?1
        UNION
        SELECT e.id FROM stent_execution e JOIN tree t ON e.parent_id = t.id)
    SELECT id FROM tree)
RETURNING id, function, queue, status, input, output, error, parent_id, parent_pos, root_id,
          idempotency_key, attempts, priority, version, owner, lease_epoch, lease_expires_at,
          run_at, deadline, created_at, updated_at, cancel_requested, trace_context;

-- name: JournalDeliverOutcome
-- A child's outcome in its parent's journal: the call's intent, if there,
-- becomes done with the outcome.
-- ?6 is now.
INSERT INTO stent_journal (execution_id, position, kind, name, child_id, fire_at, done, output, error,
                           started_at, ended_at)
VALUES (?1, ?2, 'call', ?3, ?4, NULL, 1, NULL, ?5, ?6, ?6)
ON CONFLICT (execution_id, position) DO UPDATE SET
    done = 1, output = NULL, error = excluded.error, ended_at = excluded.ended_at;

-- name: ExecutionLostLeases
-- ?1 is a JSON array of [execution ID, epoch held] pairs, ?2 the owner
-- that runs them.
SELECT e.id FROM stent_execution e
JOIN json_each(?1) AS l ON e.id = json_extract(l.value, '$[0]')
WHERE e.lease_epoch <> json_extract(l.value, '$[1]')
   OR (e.status IN ('pending', 'running', 'waiting') AND (e.owner IS NULL OR e.owner <> ?2))
ORDER BY e.id;

-- name: ExecutionCancelRequested
-- ?1 is a JSON array of execution IDs.
SELECT id FROM stent_execution
WHERE id IN (SELECT value FROM json_each(?1))
  AND cancel_requested = 1 AND status IN ('pending', 'running', 'waiting')
ORDER BY id;

-- name: PermitExtend
-- A holder's unexpired permit is extended when its owner (?3) asks again.
-- Held by another owner, it is not: the holder may still run there (an
-- activation fenced but not yet stopped), and one permit must not cover
-- two runs.
UPDATE stent_permit SET expires_at = ?4
WHERE key = ?1 AND holder = ?2 AND owner = ?3 AND expires_at > ?5;

-- name: PermitPurge
DELETE FROM stent_permit WHERE key = ?1 AND expires_at <= ?2;

-- name: PermitCount
SELECT count(*) FROM stent_permit WHERE key = ?1 AND expires_at > ?2;

-- name: PermitInsert
-- Run after PermitPurge: a row of the holder left is another owner's
-- unexpired permit, and the insert does nothing.
INSERT INTO stent_permit (key, holder, owner, expires_at) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (key, holder) DO NOTHING;

-- name: PermitDelete
DELETE FROM stent_permit WHERE key = ?1 AND holder = ?2 AND owner = ?3;

-- name: PermitRenew
-- Only unexpired permits: an expired one may have been given to another
-- holder already.
-- ?4 is a JSON array of the holders to renew.
UPDATE stent_permit SET expires_at = ?2
WHERE owner = ?1 AND expires_at > ?3 AND holder IN (SELECT value FROM json_each(?4));
