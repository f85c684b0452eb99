package postgres

import (
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed queries.sql
var queriesSQL string

// The names of the queries in queries.sql.
const (
	qExecutionGet           = "ExecutionGet"
	qExecutionInsert        = "ExecutionInsert"
	qExecutionFindConflict  = "ExecutionFindConflict"
	qExecutionList          = "ExecutionList"
	qLeaseAcquire           = "LeaseAcquire"
	qLeaseClaimDue          = "LeaseClaimDue"
	qLeaseRenew             = "LeaseRenew"
	qLeaseRelease           = "LeaseRelease"
	qExecutionNextRunAt     = "ExecutionNextRunAt"
	qJournalLoadBegin       = "JournalLoadBegin"
	qSnapshotGet            = "SnapshotGet"
	qJournalList            = "JournalList"
	qJournalLoadEnd         = "JournalLoadEnd"
	qDeadLetterList         = "DeadLetterList"
	qDeadLetterGet          = "DeadLetterGet"
	qDeadLetterDelete       = "DeadLetterDelete"
	qDeadLetterTake         = "DeadLetterTake"
	qExecutionReplay        = "ExecutionReplay"
	qExecutionReplayCleanup = "ExecutionReplayCleanup"
	qJournalReopen          = "JournalReopen"
	qCommitFence            = "CommitFence"
	qCommitFenceUpdate      = "CommitFenceUpdate"
	qCommitCreate           = "CommitCreate"
	qCommitJournalDelete    = "CommitJournalDelete"
	qCommitJournal          = "CommitJournal"
	qCommitJournalOne       = "CommitJournalOne"
	qExecutionExisting      = "ExecutionExisting"
	qCommitSnapshot         = "CommitSnapshot"
	qCommitDeadLetter       = "CommitDeadLetter"
	qCommitResult           = "CommitResult"
	qCommitConsume          = "CommitConsume"
	qCommitResultConsume    = "CommitResultConsume"
	qExecutionLock          = "ExecutionLock"
	qSignalSend             = "SignalSend"
	qSignalNext             = "SignalNext"
	qExecutionCancelTree    = "ExecutionCancelTree"
	qExecutionCancelReq     = "ExecutionCancelRequested"
	qExecutionLostLeases    = "ExecutionLostLeases"
	qPermitLock             = "PermitLock"
	qPermitPurge            = "PermitPurge"
	qPermitAcquire          = "PermitAcquire"
	qPermitRelease          = "PermitRelease"
	qPermitRenew            = "PermitRenew"
	qPermitCount            = "PermitCount"
)

var queryNames = []string{
	qExecutionGet, qExecutionInsert, qExecutionFindConflict, qExecutionList,
	qLeaseAcquire, qLeaseClaimDue, qLeaseRenew, qLeaseRelease, qExecutionNextRunAt,
	qJournalLoadBegin, qSnapshotGet, qJournalList, qJournalLoadEnd,
	qDeadLetterList, qDeadLetterGet, qDeadLetterDelete, qDeadLetterTake,
	qExecutionReplay, qExecutionReplayCleanup, qJournalReopen,
	qCommitFence, qCommitFenceUpdate, qCommitCreate, qCommitJournalDelete,
	qCommitJournal, qCommitJournalOne, qCommitSnapshot, qCommitDeadLetter, qCommitResult,
	qExecutionExisting, qCommitConsume, qCommitResultConsume,
	qExecutionLock, qSignalSend, qSignalNext, qExecutionCancelTree, qExecutionCancelReq, qExecutionLostLeases,
	qPermitLock, qPermitPurge, qPermitAcquire, qPermitRelease, qPermitRenew, qPermitCount,
}

// executionColumns is the column list scanExecution reads, in its order.
const executionColumns = "id, function, queue, status, input, output, error, parent_id, parent_pos, " +
	"root_id, idempotency_key, attempts, priority, version, owner, lease_epoch, lease_expires_at, " +
	"run_at, deadline, created_at, updated_at, cancel_requested, trace_context"

// tables are the tables the queries name, qualified with the schema on load.
// Longer names first: a replacer tries them in this order at each position.
var tables = []string{"stent_execution_tag", "stent_execution", "stent_journal", "stent_snapshot", "stent_dead_letter", "stent_migration",
	"stent_signal", "stent_permit", "stent_node", "stent_state", "stent_cache_hit", "stent_counter_op", "stent_counter",
	"stent_stats_finished", "stent_stats_delta"}

// queries maps a query's name to its SQL, with the schema applied.
type queries map[string]string

// loadQueries parses queries.sql and qualifies its table names with schema.
func loadQueries(schema string) (queries, error) {
	pairs := []string{
		"{{execution_columns}}", executionColumns,
		"{{execution_columns_e}}", "e." + strings.ReplaceAll(executionColumns, ", ", ", e."),
	}
	for _, t := range tables {
		pairs = append(pairs, t, pgx.Identifier{schema, t}.Sanitize())
	}
	r := strings.NewReplacer(pairs...)

	q := queries{}
	var name string
	var body strings.Builder
	flush := func() {
		if name != "" {
			q[name] = strings.TrimSuffix(strings.TrimSpace(r.Replace(body.String())), ";")
		}
		body.Reset()
	}
	for line := range strings.Lines(queriesSQL) {
		trimmed := strings.TrimSpace(line)
		if n, ok := strings.CutPrefix(trimmed, "-- name: "); ok {
			flush()
			name = strings.TrimSpace(n)
			continue
		}
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		body.WriteString(line)
	}
	flush()
	for _, n := range queryNames {
		if q[n] == "" {
			return nil, fmt.Errorf("loading queries: %s missing from queries.sql", n)
		}
	}
	return q, nil
}

var placeholder = regexp.MustCompile(`\$([0-9]+)`)

// renumber shifts the placeholders of a query fragment by offset, so that
// fragments numbered from $1 can be joined into one statement. It returns
// the fragment and its highest placeholder.
func renumber(fragment string, offset int) (string, int) {
	highest := 0
	out := placeholder.ReplaceAllStringFunc(fragment, func(m string) string {
		n, err := strconv.Atoi(m[1:])
		if err != nil { // more digits than an int holds: leave it for the server to refuse
			return m
		}
		highest = max(highest, n)
		return "$" + strconv.Itoa(n+offset)
	})
	return out, highest
}
