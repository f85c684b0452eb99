-- Queries of the PostgreSQL backend. Each starts at a "-- name: X" line and
-- runs to the next one. Table names are qualified with the backend's schema
-- when the backend opens, and {{execution_columns}} expands to the column list
-- that scanExecution reads. Parameters are positional; the Commit* fragments
-- number theirs from $1 and are renumbered when a Commit's statement is built.

-- name: ExecutionGet
SELECT {{execution_columns}} FROM stent_execution WHERE id = $1;

-- name: ExecutionInsert
-- A root execution, inserted unless its ID or idempotency key is taken; the
-- second branch returns the row that took it (the key's first).
-- A lease TTL ($21, microseconds) makes the lease expire that long after the
-- server's clock when the row is inserted (clock_timestamp(): after any wait
-- for a lock, unlike now(), the transaction's start).
WITH ins AS (
    INSERT INTO stent_execution (id, function, queue, status, input, parent_id, parent_pos, root_id,
        idempotency_key, attempts, priority, version, owner, lease_epoch, lease_expires_at, run_at, deadline,
        output, error, created_at, trace_context)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
        CASE WHEN $21::bigint IS NULL THEN $15::timestamptz
             ELSE clock_timestamp() + $21::bigint * interval '1 microsecond' END,
        $16, $17, $18, $19::jsonb, coalesce($20, now()), $22::text)
    ON CONFLICT DO NOTHING
    RETURNING {{execution_columns}}
)
SELECT true, * FROM ins
UNION ALL
(SELECT false, {{execution_columns}} FROM stent_execution
 WHERE NOT EXISTS (SELECT 1 FROM ins) AND (id = $1 OR idempotency_key = $9)
 ORDER BY idempotency_key IS NOT DISTINCT FROM $9 DESC
 LIMIT 1);

-- name: ExecutionFindConflict
SELECT {{execution_columns}} FROM stent_execution
WHERE id = $1 OR idempotency_key = $2
ORDER BY idempotency_key IS NOT DISTINCT FROM $2 DESC
LIMIT 1;

-- name: ExecutionList
-- ListExecutions appends a condition per filter set, then the order and
-- the limit: a plan fitted to the filters (a later page starts in the index
-- at its cursor instead of scanning the pages before it).
SELECT {{execution_columns}} FROM stent_execution WHERE true;

-- name: LeaseAcquire
-- Takes the lease when it is free, expired or already this owner's. The
-- second branch tells a held lease (a row) from a missing execution (none).
WITH acq AS (
    UPDATE stent_execution
    SET owner = $2, lease_epoch = lease_epoch + 1,
        lease_expires_at = now() + $3::bigint * interval '1 microsecond',
        status = 'running', run_at = NULL, updated_at = now()
    WHERE id = $1
      AND status IN ('pending', 'running', 'waiting')
      AND (owner = '' OR owner = $2 OR lease_expires_at IS NULL OR lease_expires_at <= now())
    RETURNING {{execution_columns}}
)
SELECT true, * FROM acq
UNION ALL
SELECT false, {{execution_columns}} FROM stent_execution
WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM acq);

-- name: LeaseClaimDue
-- $5 is the functions the node has (NULL for every one); $6 the node's
-- tags (NULL for none): an execution with a tag not among them is left to
-- other nodes. SKIP LOCKED lets concurrent claimers pass over each other's
-- candidates instead of waiting on them or taking the same ones.
WITH due AS (
    SELECT id FROM stent_execution
    WHERE status IN ('pending', 'running', 'waiting')
      AND ($2::text[] IS NULL OR queue = ANY ($2))
      AND ($5::text[] IS NULL OR function = ANY ($5))
      AND (run_at <= now() OR (run_at IS NULL AND status IN ('pending', 'running')))
      AND (owner = '' OR lease_expires_at IS NULL OR lease_expires_at <= now())
      AND NOT EXISTS (SELECT 1 FROM stent_execution_tag t WHERE t.execution_id = stent_execution.id
                      AND NOT (t.tag = ANY (COALESCE($6::text[], '{}'))))
    ORDER BY priority DESC, created_at, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
UPDATE stent_execution e
SET owner = $1, lease_epoch = e.lease_epoch + 1,
    lease_expires_at = now() + $3::bigint * interval '1 microsecond',
    status = 'running', run_at = NULL, updated_at = now()
FROM due
WHERE e.id = due.id
RETURNING {{execution_columns_e}};

-- name: LeaseRenew
-- Terminal executions keep their owner until released but are not leases
-- worth renewing. A row locked by a Commit being written (the owner's own,
-- on another connection, in its own order) is skipped rather than waited
-- for: waiting would deadlock with it now and then, and a deadlock costs
-- deadlock_timeout (1s), a third of a short lease. The next renewal, a
-- third of the lease later, extends it.
WITH renew AS (
    SELECT id FROM stent_execution
    WHERE owner = $1 AND status IN ('pending', 'running', 'waiting') AND id = ANY ($3::text[])
    ORDER BY id
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE stent_execution e
SET lease_expires_at = now() + $2::bigint * interval '1 microsecond'
FROM renew
WHERE e.id = renew.id;

-- name: LeaseRelease
-- Rows are locked in ID order, as LeaseRenew takes them, so two releases
-- or a release and a renewal never deadlock.
WITH released AS (
    SELECT id FROM stent_execution WHERE owner = $1 ORDER BY id FOR NO KEY UPDATE
)
UPDATE stent_execution e
SET owner = '', lease_expires_at = now(),
    -- a terminal row keeps its updated_at: it is when the execution ended
    updated_at = CASE WHEN e.status IN ('pending', 'running', 'waiting') THEN now() ELSE e.updated_at END
FROM released
WHERE e.id = released.id;

-- name: ExecutionNextRunAt
SELECT min(run_at) FROM stent_execution
WHERE status IN ('pending', 'waiting')
  AND run_at IS NOT NULL
  AND ($1::text[] IS NULL OR queue = ANY ($1))
  AND (owner = '' OR lease_expires_at IS NULL OR lease_expires_at <= now())
  AND NOT EXISTS (SELECT 1 FROM stent_execution_tag t WHERE t.execution_id = stent_execution.id
                  AND NOT (t.tag = ANY (COALESCE($2::text[], '{}'))));

-- name: JournalLoadBegin
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;

-- name: SnapshotGet
SELECT position, data FROM stent_snapshot WHERE execution_id = $1;

-- name: JournalList
SELECT position, kind, name, child_id, fire_at, done, output, error
FROM stent_journal
WHERE execution_id = $1
  AND position > coalesce((SELECT position FROM stent_snapshot WHERE execution_id = $1), -2147483648)
ORDER BY position;

-- name: JournalLoadEnd
COMMIT;

-- name: DeadLetterList
SELECT id, execution_id, function, input, error, attempts, created_at
FROM stent_dead_letter
ORDER BY created_at, id
LIMIT $1;

-- name: DeadLetterGet
SELECT id, execution_id, function, input, error, attempts, created_at
FROM stent_dead_letter
WHERE id = $1;

-- name: DeadLetterDelete
DELETE FROM stent_dead_letter WHERE id = $1;

-- name: DeadLetterTake
DELETE FROM stent_dead_letter WHERE id = $1 RETURNING execution_id;

-- name: ExecutionReplay
-- Makes a failed execution run again: fresh attempts, no outcome, no lease.
-- The epoch is kept, so the next acquisition moves past it.
UPDATE stent_execution
SET status = 'pending', attempts = 0, error = NULL, output = NULL,
    owner = '', lease_expires_at = now(), run_at = NULL, updated_at = now()
WHERE id = $1
RETURNING {{execution_columns}};

-- name: ExecutionReplayCleanup
-- The snapshot and failed outcomes of a replayed execution go; the dead
-- letters of a parent replayed along with its child go too.
WITH s AS (
    DELETE FROM stent_snapshot WHERE execution_id = $1
), j AS (
    DELETE FROM stent_journal WHERE execution_id = $1 AND done AND error IS NOT NULL
)
DELETE FROM stent_dead_letter WHERE execution_id = $1;

-- name: JournalReopen
-- Turns a parent's recorded failure of a child back into an intent.
UPDATE stent_journal
SET done = false, output = NULL, error = NULL, ended_at = NULL, attempts = NULL
WHERE execution_id = $1 AND position = $2 AND done AND error IS NOT NULL;

-- name: CommitFence
-- Locks the execution's row if the epoch is current, so that no lease can
-- be taken until the Commit is written. Every other fragment of a Commit is
-- gated on this CTE returning a row. A row lock costs less than the UPDATE
-- of CommitFenceUpdate, which a Commit without an Update does not need.
-- $3 and $4 are Commit.ConsumeSignal and ConsumePos: with $3 not '', the
-- fence also requires that signal to be unconsumed and the execution's (or
-- consumed at $4 already: the same Commit applied again).
fence AS (
    SELECT id FROM stent_execution
    WHERE id = $1 AND lease_epoch = $2
      AND ($3::text = '' OR EXISTS (
          SELECT 1 FROM stent_signal s
          WHERE s.id = $3::text AND s.execution_id = $1
            AND (s.consumed_pos IS NULL OR s.consumed_pos = $4::int)))
    FOR NO KEY UPDATE
)

-- name: CommitFenceUpdate
-- $14 is Update.WaitSignal: with status waiting, an unconsumed signal of
-- that name (other than the one this Commit consumes) makes run_at now. So
-- does a cancel requested while the execution was passivating: it is
-- claimed again at once, and its next activation ends it canceled.
fence AS (
    UPDATE stent_execution SET
        status = coalesce($5::text, status),
        output = CASE WHEN $5::text = 'completed' THEN $6::bytea ELSE output END,
        error = CASE WHEN $7::jsonb IS NOT NULL THEN $7::jsonb WHEN $8::bool THEN NULL ELSE error END,
        attempts = CASE WHEN $9::int > 0 THEN $9::int ELSE attempts END,
        run_at = CASE
            WHEN $5::text = 'waiting' AND cancel_requested THEN now()
            WHEN $5::text = 'waiting' AND $14::text <> '' AND EXISTS (
                SELECT 1 FROM stent_signal s
                WHERE s.execution_id = $1 AND s.name = $14::text AND s.consumed_pos IS NULL
                  AND s.id <> $3::text)
                THEN now()
            WHEN NOT $10::bool THEN run_at
            WHEN $11::bool THEN NULL
            ELSE now() + $12::bigint * interval '1 microsecond' END,
        owner = CASE WHEN $13::bool THEN '' ELSE owner END,
        lease_expires_at = CASE WHEN $13::bool THEN now() ELSE lease_expires_at END,
        updated_at = now()
    WHERE id = $1 AND lease_epoch = $2
      AND ($3::text = '' OR EXISTS (
          SELECT 1 FROM stent_signal s
          WHERE s.id = $3::text AND s.execution_id = $1
            AND (s.consumed_pos IS NULL OR s.consumed_pos = $4::int)))
    RETURNING id
)

-- name: CommitCreate
-- Children started by the Commit; an ID or key taken already is a replayed
-- start and keeps its row. A lease TTL (microseconds) counts from the
-- server's clock at the insert, as in ExecutionInsert.
created AS (
    INSERT INTO stent_execution (id, function, queue, status, input, parent_id, parent_pos, root_id,
        idempotency_key, attempts, priority, version, run_at, deadline, output, error, created_at,
        owner, lease_epoch, lease_expires_at, trace_context)
    SELECT u.id, u.function, u.queue, u.status, u.input, u.parent_id, u.parent_pos, u.root_id,
        u.idempotency_key, u.attempts, u.priority, u.version, u.run_at, u.deadline, u.output,
        u.error::jsonb, coalesce(u.created_at, now()), u.owner, u.lease_epoch,
        CASE WHEN u.lease_ttl IS NULL THEN u.lease_expires_at
             ELSE clock_timestamp() + u.lease_ttl * interval '1 microsecond' END,
        u.trace_context
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[],
        $7::int[], $8::text[], $9::text[], $10::int[], $11::int[], $12::text[], $13::timestamptz[],
        $14::timestamptz[], $15::bytea[], $16::text[], $17::timestamptz[], $18::text[], $19::bigint[],
        $20::timestamptz[], $21::bigint[], $22::text[])
        AS u (id, function, queue, status, input, parent_id, parent_pos, root_id, idempotency_key,
            attempts, priority, version, run_at, deadline, output, error, created_at,
            owner, lease_epoch, lease_expires_at, lease_ttl, trace_context)
    WHERE EXISTS (SELECT 1 FROM fence)
    ON CONFLICT DO NOTHING
)

-- name: CommitJournalDelete
journal_deleted AS (
    DELETE FROM stent_journal
    WHERE execution_id = $1 AND position = ANY ($2::int[]) AND EXISTS (SELECT 1 FROM fence)
)

-- name: CommitJournal
-- started_at and ended_at are the times given ($10, $11), or now() when
-- NULL: the start when inserted, the end once done; a later write keeps
-- both, and keeps input ($12) and attempts ($13) when it has none.
journal AS (
    INSERT INTO stent_journal (execution_id, position, kind, name, child_id, fire_at, done, output, error,
                               started_at, ended_at, input, attempts)
    SELECT u.execution_id, u.position, u.kind, u.name, u.child_id, u.fire_at, u.done, u.output, u.error::jsonb,
        coalesce(u.started_at, now()), CASE WHEN u.done THEN coalesce(u.ended_at, now()) END, u.input, u.attempts
    FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
        $7::bool[], $8::bytea[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::bytea[], $13::int[])
        AS u (execution_id, position, kind, name, child_id, fire_at, done, output, error,
            started_at, ended_at, input, attempts)
    WHERE EXISTS (SELECT 1 FROM fence)
    ON CONFLICT (execution_id, position) DO UPDATE SET
        kind = excluded.kind, name = excluded.name, child_id = excluded.child_id,
        fire_at = excluded.fire_at, done = excluded.done, output = excluded.output, error = excluded.error,
        ended_at = CASE WHEN excluded.done THEN coalesce(stent_journal.ended_at, excluded.ended_at) END,
        input = coalesce(excluded.input, stent_journal.input),
        attempts = coalesce(excluded.attempts, stent_journal.attempts)
)

-- name: CommitJournalOne
-- CommitJournal for a single entry, which most Commits hold: plain
-- parameters cost less than arrays.
journal AS (
    INSERT INTO stent_journal (execution_id, position, kind, name, child_id, fire_at, done, output, error,
                               started_at, ended_at, input, attempts)
    SELECT $1, $2, $3, $4, $5, $6::timestamptz, $7, $8::bytea, $9::jsonb,
        coalesce($10::timestamptz, now()), CASE WHEN $7 THEN coalesce($11::timestamptz, now()) END,
        $12::bytea, $13::int
    WHERE EXISTS (SELECT 1 FROM fence)
    ON CONFLICT (execution_id, position) DO UPDATE SET
        kind = excluded.kind, name = excluded.name, child_id = excluded.child_id,
        fire_at = excluded.fire_at, done = excluded.done, output = excluded.output, error = excluded.error,
        ended_at = CASE WHEN excluded.done THEN coalesce(stent_journal.ended_at, excluded.ended_at) END,
        input = coalesce(excluded.input, stent_journal.input),
        attempts = coalesce(excluded.attempts, stent_journal.attempts)
)

-- name: CommitSnapshot
snapshot AS (
    INSERT INTO stent_snapshot (execution_id, position, data)
    SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM fence)
    ON CONFLICT (execution_id) DO UPDATE SET position = excluded.position, data = excluded.data
)

-- name: CommitDeadLetter
dead_letter AS (
    INSERT INTO stent_dead_letter (id, execution_id, function, input, error, attempts)
    SELECT $1, $2, $3, $4, $5::jsonb, $6 WHERE EXISTS (SELECT 1 FROM fence)
    ON CONFLICT (id) DO NOTHING
)

-- name: CommitConsume
consumed AS (
    UPDATE stent_signal SET consumed_pos = $2
    WHERE id = $1 AND EXISTS (SELECT 1 FROM fence)
)

-- name: CommitResult
-- Whether the fence held.
SELECT EXISTS (SELECT 1 FROM fence), false;

-- name: CommitResultConsume
-- Whether the fence held, and whether the epoch held, which tells a
-- refused signal from a stale epoch.
SELECT EXISTS (SELECT 1 FROM fence),
       EXISTS (SELECT 1 FROM stent_execution WHERE id = $1 AND lease_epoch = $2);

-- name: ExecutionExisting
-- Which of the executions whose fence failed exist (stale) or not.
SELECT id FROM stent_execution WHERE id = ANY ($1::text[]);

-- name: ExecutionLock
-- Taken first by the writes that must see every signal committed before
-- them: the statements after it in the transaction take a fresh snapshot.
SELECT status FROM stent_execution WHERE id = $1 FOR NO KEY UPDATE;

-- name: SignalSend
-- Run after ExecutionLock. Records the signal unless the execution is
-- missing or terminal, the ID is taken, or $5 (> 0) signals are pending;
-- makes a waiting execution due now. It returns the outcome and the
-- execution as it stands; no row when the execution does not exist.
WITH ex AS (
    SELECT status FROM stent_execution WHERE id = $2
), dup AS (
    SELECT execution_id, seq, created_at FROM stent_signal WHERE id = $1
), pending AS (
    SELECT count(*) AS n FROM stent_signal WHERE execution_id = $2 AND consumed_pos IS NULL
), ins AS (
    INSERT INTO stent_signal (id, execution_id, name, payload)
    SELECT $1, $2, $3, $4::bytea
    WHERE EXISTS (SELECT 1 FROM ex WHERE status IN ('pending', 'running', 'waiting'))
      AND NOT EXISTS (SELECT 1 FROM dup)
      AND ($5::int <= 0 OR (SELECT n FROM pending) < $5::int)
    ON CONFLICT (id) DO NOTHING
    RETURNING seq, created_at
), woke AS (
    UPDATE stent_execution SET run_at = now(), updated_at = now()
    WHERE id = $2 AND status = 'waiting' AND EXISTS (SELECT 1 FROM ins)
    RETURNING {{execution_columns}}
), cur AS (
    SELECT {{execution_columns}} FROM woke
    UNION ALL
    SELECT {{execution_columns}} FROM stent_execution WHERE id = $2 AND NOT EXISTS (SELECT 1 FROM woke)
)
SELECT (SELECT seq FROM ins), (SELECT created_at FROM ins),
       (SELECT execution_id FROM dup), (SELECT seq FROM dup), (SELECT created_at FROM dup),
       (SELECT n FROM pending), cur.*
FROM cur;

-- name: SignalNext
SELECT id, execution_id, name, payload, seq, created_at, consumed_pos
FROM stent_signal
WHERE execution_id = $1 AND name = $2 AND consumed_pos IS NULL
ORDER BY seq
LIMIT 1;

-- name: ExecutionCancelTree
-- Run after ExecutionLock of $1. Marks $1, when live, and every live
-- execution below it (by parent_id; UNION stops at a cycle) as cancel
-- requested. Those without an owner or with an expired lease end canceled
-- at once with error $2 completed by their identity, lose their lease, and
-- have that outcome upserted into their parent's journal.
WITH RECURSIVE tree AS (
    SELECT id FROM stent_execution WHERE id = $1 AND status IN ('pending', 'running', 'waiting')
    UNION
    SELECT e.id FROM stent_execution e JOIN tree t ON e.parent_id = t.id
), canceled AS (
    UPDATE stent_execution e SET
        cancel_requested = true,
        status = CASE WHEN e.owner = '' OR e.lease_expires_at IS NULL OR e.lease_expires_at <= now()
                      THEN 'canceled' ELSE e.status END,
        error = CASE WHEN e.owner = '' OR e.lease_expires_at IS NULL OR e.lease_expires_at <= now()
                     THEN $2::jsonb || jsonb_build_object('function', e.function, 'execution_id', e.id,
                                                          'attempts', e.attempts)
                     ELSE e.error END,
        run_at = CASE WHEN e.owner = '' OR e.lease_expires_at IS NULL OR e.lease_expires_at <= now()
                      THEN NULL ELSE e.run_at END,
        lease_expires_at = CASE WHEN e.owner = '' OR e.lease_expires_at IS NULL OR e.lease_expires_at <= now()
                                THEN now() ELSE e.lease_expires_at END,
        owner = CASE WHEN e.owner = '' OR e.lease_expires_at IS NULL OR e.lease_expires_at <= now()
                     THEN '' ELSE e.owner END,
        updated_at = now()
    FROM tree
    WHERE e.id = tree.id AND e.status IN ('pending', 'running', 'waiting')
    RETURNING {{execution_columns_e}}
), delivered AS (
    INSERT INTO stent_journal (execution_id, position, kind, name, child_id, done, error, started_at, ended_at)
    SELECT parent_id, parent_pos, 'call', function, id, true, error, now(), now() FROM canceled
    WHERE status = 'canceled' AND parent_id <> ''
    ON CONFLICT (execution_id, position) DO UPDATE SET
        done = true, output = NULL, error = excluded.error, ended_at = now()
)
SELECT {{execution_columns}} FROM canceled;

-- name: ExecutionLostLeases
-- $1 and $2 are the executions and the epochs held, $3 the owner.
SELECT e.id FROM stent_execution e
JOIN unnest($1::text[], $2::bigint[]) AS l (id, epoch) ON e.id = l.id
WHERE e.lease_epoch <> l.epoch
   OR (e.status IN ('pending', 'running', 'waiting') AND e.owner IS DISTINCT FROM $3)
ORDER BY e.id;

-- name: ExecutionCancelRequested
SELECT id FROM stent_execution
WHERE id = ANY ($1::text[]) AND cancel_requested AND status IN ('pending', 'running', 'waiting')
ORDER BY id;

-- name: PermitLock
-- Serialises the acquisitions of one key ($2) in one schema ($1) until the
-- transaction ends.
SELECT pg_advisory_xact_lock($1::int, hashtext($2::text));

-- name: PermitPurge
-- Run under PermitLock: expired permits of the key go, so that a renewal
-- racing this acquisition cannot bring one back once it is not counted.
DELETE FROM stent_permit WHERE key = $1 AND expires_at <= now();

-- name: PermitAcquire
-- Run under PermitLock, after PermitPurge. A holder's unexpired permit is
-- extended when its owner $3 asks again; else one is granted when fewer
-- than $4 exist. A holder's permit held by another owner is neither
-- extended nor taken over (the holder may still run there, fenced but not
-- yet stopped): the conflict inserts nothing.
WITH mine AS (
    UPDATE stent_permit SET expires_at = now() + $5::bigint * interval '1 microsecond'
    WHERE key = $1 AND holder = $2 AND owner = $3 AND expires_at > now()
    RETURNING 1
), granted AS (
    INSERT INTO stent_permit (key, holder, owner, expires_at)
    SELECT $1, $2, $3, now() + $5::bigint * interval '1 microsecond'
    WHERE NOT EXISTS (SELECT 1 FROM mine)
      AND (SELECT count(*) FROM stent_permit WHERE key = $1 AND expires_at > now()) < $4::int
    ON CONFLICT (key, holder) DO NOTHING
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM mine) OR EXISTS (SELECT 1 FROM granted);

-- name: PermitRelease
DELETE FROM stent_permit WHERE key = $1 AND holder = $2 AND owner = $3;

-- name: PermitRenew
-- Only unexpired permits: an expired one may have been given to another
-- holder already.
UPDATE stent_permit SET expires_at = now() + $2::bigint * interval '1 microsecond'
WHERE owner = $1 AND expires_at > now() AND holder = ANY ($3::text[]);

-- name: PermitCount
SELECT count(*) FROM stent_permit WHERE key = $1 AND expires_at > now();

-- Operations (persistence.Operations): counts, retention, the node
-- registry and the timed journal.

-- name: StatsTerminal
-- The finished counts: the folded counts and the deltas not folded yet.
SELECT status, function, queue, sum(n)::bigint, NULL::timestamptz FROM (
    SELECT status, function, queue, count AS n FROM stent_stats_finished
    UNION ALL
    SELECT status, function, queue, delta FROM stent_stats_delta
) c
GROUP BY status, function, queue
HAVING sum(n) > 0;

-- name: StatsFold
-- Folds the deltas into the counts, when no other session is folding ($1
-- is the schema's advisory lock key). Deltas committed meanwhile are not
-- in this statement's snapshot and stay for the next fold.
WITH lock AS (
    SELECT pg_try_advisory_xact_lock($1) AS ok
), moved AS (
    DELETE FROM stent_stats_delta WHERE (SELECT ok FROM lock)
    RETURNING function, queue, status, delta
), folded AS (
    INSERT INTO stent_stats_finished AS f (function, queue, status, count)
    SELECT function, queue, status, sum(delta) FROM moved GROUP BY function, queue, status
    ON CONFLICT (function, queue, status) DO UPDATE SET count = f.count + excluded.count
)
SELECT count(*) FROM moved;

-- name: StatsVacuum
-- After a large fold: the deleted deltas would otherwise be scanned by
-- every Stats until autovacuum comes by.
VACUUM stent_stats_delta;

-- name: StatsLive
SELECT status, function, queue, count(*), min(created_at),
       count(*) FILTER (WHERE status = 'pending' AND (run_at IS NULL OR run_at <= now())),
       min(created_at) FILTER (WHERE status = 'pending' AND (run_at IS NULL OR run_at <= now())),
       now()
FROM stent_execution WHERE status IN ('pending', 'running', 'waiting')
GROUP BY status, function, queue;

-- name: QueueDepth
SELECT count(*) FROM stent_execution
WHERE status IN ('pending', 'running', 'waiting') AND queue = $1
  AND (run_at <= now() OR (run_at IS NULL AND status IN ('pending', 'running')))
  AND (owner = '' OR lease_expires_at IS NULL OR lease_expires_at <= now());

-- name: DeadLettersOf
SELECT id, execution_id, function, input, error, attempts, created_at
FROM stent_dead_letter WHERE execution_id = $1 ORDER BY created_at, id;

-- name: JournalEntries
SELECT position, kind, name, child_id, fire_at, done, output, error, started_at, ended_at, input, attempts
FROM stent_journal WHERE execution_id = $1 ORDER BY position;

-- name: CacheHitsByFunction
SELECT e.function, count(*) FROM stent_cache_hit h
JOIN stent_execution e ON e.id = h.execution_id
GROUP BY e.function;

-- name: Cleanup
-- Finished roots whose tree holds no live execution (live rows are few and
-- indexed by status, and name their root), locked so that two sweepers take
-- different ones; then their trees by parent_id, checked again for a live
-- execution (a row whose root_id is wrong), and every row of the trees.
WITH RECURSIVE roots AS (
    SELECT id FROM stent_execution
    WHERE parent_id = '' AND status IN ('completed', 'failed', 'canceled', 'timed_out') AND updated_at < $1
      AND id NOT IN (SELECT root_id FROM stent_execution WHERE status IN ('pending', 'running', 'waiting'))
    ORDER BY updated_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), walk AS (
    SELECT id AS root, id, status FROM stent_execution WHERE id IN (SELECT id FROM roots)
    UNION
    -- parent_id <> '' lets the planner use the partial stent_execution_parent_idx.
    SELECT w.root, e.id, e.status FROM stent_execution e JOIN walk w ON e.parent_id = w.id AND e.parent_id <> ''
), tree AS (
    SELECT id FROM walk
    WHERE root NOT IN (SELECT root FROM walk WHERE status IN ('pending', 'running', 'waiting'))
), j AS (
    DELETE FROM stent_journal WHERE execution_id IN (SELECT id FROM tree)
), s AS (
    DELETE FROM stent_snapshot WHERE execution_id IN (SELECT id FROM tree)
), sg AS (
    DELETE FROM stent_signal WHERE execution_id IN (SELECT id FROM tree)
), d AS (
    DELETE FROM stent_dead_letter WHERE execution_id IN (SELECT id FROM tree)
), st AS (
    DELETE FROM stent_state WHERE execution_id IN (SELECT id FROM tree)
), ch AS (
    DELETE FROM stent_cache_hit WHERE execution_id IN (SELECT id FROM tree)
), tg AS (
    DELETE FROM stent_execution_tag WHERE execution_id IN (SELECT id FROM tree)
), c AS (
    DELETE FROM stent_counter WHERE root_id IN (SELECT id FROM tree)
), co AS (
    DELETE FROM stent_counter_op WHERE root_id IN (SELECT id FROM tree)
)
DELETE FROM stent_execution WHERE id IN (SELECT id FROM tree);

-- name: NodeUpsert
-- $6 is the node's start, NULL for now; $7 its ttl in microseconds; $8
-- its tags, a JSON array. Nodes not heard from for an hour go.
WITH purge AS (
    DELETE FROM stent_node WHERE heartbeat_at < now() - interval '1 hour' AND id <> $1
)
INSERT INTO stent_node (id, addresses, functions, queues, version, started_at, heartbeat_at, expires_at, tags)
VALUES ($1, $2, $3, $4, $5, coalesce($6, now()), now(), now() + $7::bigint * interval '1 microsecond', $8::jsonb)
ON CONFLICT (id) DO UPDATE SET
    addresses = excluded.addresses, functions = excluded.functions, queues = excluded.queues, tags = excluded.tags,
    version = excluded.version, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at;

-- name: NodeDelete
DELETE FROM stent_node WHERE id = $1;

-- name: NodeList
SELECT n.id, n.addresses, n.functions, n.queues, n.version, n.started_at, n.heartbeat_at, n.expires_at,
       n.expires_at > now(),
       (SELECT count(*) FROM stent_execution e
        WHERE e.owner = n.id AND e.lease_expires_at > now() AND e.status IN ('pending', 'running', 'waiting')),
       n.tags
FROM stent_node n ORDER BY n.id;
