package persistencetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
)

// testOperations covers persistence.Operations and the list filters and
// claim filter that operating a deployment needs.
func (s *suite) testOperations(t *testing.T) {
	t.Parallel()
	t.Run("ListFiltersAndPages", s.testListPages)
	t.Run("ClaimDueFunctions", s.testClaimDueFunctions)
	t.Run("Stats", s.testStats)
	t.Run("QueueDepth", s.testQueueDepth)
	t.Run("Cleanup", s.testCleanup)
	t.Run("DeadLettersOf", s.testDeadLettersOf)
	t.Run("JournalEntries", s.testJournalEntries)
	t.Run("JournalCallRecord", s.testJournalCallRecord)
	t.Run("Nodes", s.testNodes)
	t.Run("CacheHitsByFunction", s.testCacheHitsByFunction)
}

// testCacheHitsByFunction: the marked executions are counted by their
// function; an unmarked or unmarked-again execution is not.
func (s *suite) testCacheHitsByFunction(t *testing.T) {
	b, ctx := s.setup(t)
	hits, err := b.CacheHitsByFunction(ctx)
	require.NoError(t, err)
	require.Empty(t, hits, "no hits yet")

	createN(t, ctx, b, "h", 5, func(i int, e *persistence.Execution) {
		if i >= 3 {
			e.Function = "other"
		}
	})
	for _, id := range []string{"h-001", "h-002", "h-003", "h-004"} {
		require.NoError(t, b.CacheMarkHit(ctx, id, "h-000"))
	}
	require.NoError(t, b.CacheMarkHit(ctx, "h-004", ""), "h-004 ran after all")
	hits, err = b.CacheHitsByFunction(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{testFunction: 2, "other": 1}, hits)
}

func (s *suite) testListPages(t *testing.T) {
	b, ctx := s.setup(t)
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	createN(t, ctx, b, "p", 7, func(i int, e *persistence.Execution) {
		e.CreatedAt = base.Add(time.Duration(i) * time.Minute)
		if i%2 == 1 {
			e.Queue = "odd"
		}
		if i == 4 {
			e.IdempotencyKey = "order-4"
		}
	})
	// Two rows created at the same instant are told apart by ID.
	create(t, ctx, b, &persistence.Execution{ID: "p-006b", Function: testFunction, Queue: testQueue, CreatedAt: base.Add(6 * time.Minute)})

	all, err := b.ListExecutions(ctx, persistence.ListFilter{})
	require.NoError(t, err)
	require.Equal(t, []string{"p-006b", "p-006", "p-005", "p-004", "p-003", "p-002", "p-001", "p-000"}, ids(all))

	var paged []string
	f := persistence.ListFilter{Limit: 3}
	for range 10 {
		page, err := b.ListExecutions(ctx, f)
		require.NoError(t, err)
		paged = append(paged, ids(page)...)
		if len(page) < 3 {
			break
		}
		last := page[len(page)-1]
		f.BeforeCreatedAt, f.BeforeID = last.CreatedAt, last.ID
	}
	require.Equal(t, ids(all), paged, "pages cover the list once, in order")

	odd, err := b.ListExecutions(ctx, persistence.ListFilter{Queue: "odd"})
	require.NoError(t, err)
	require.Equal(t, []string{"p-005", "p-003", "p-001"}, ids(odd))

	ranged, err := b.ListExecutions(ctx, persistence.ListFilter{Since: base.Add(2 * time.Minute), Until: base.Add(5 * time.Minute)})
	require.NoError(t, err)
	require.Equal(t, []string{"p-004", "p-003", "p-002"}, ids(ranged), "Since is inclusive, Until exclusive")

	keyed, err := b.ListExecutions(ctx, persistence.ListFilter{IdempotencyKey: "order-4"})
	require.NoError(t, err)
	require.Equal(t, []string{"p-004"}, ids(keyed), "the execution started with that key")
}

func (s *suite) testClaimDueFunctions(t *testing.T) {
	b, ctx := s.setup(t)
	createN(t, ctx, b, "f", 4, func(i int, e *persistence.Execution) { e.Function = fmt.Sprintf("fn%d", i%2) })

	got, err := b.ClaimDue(ctx, owner, nil, []string{}, time.Minute, 10)
	require.NoError(t, err)
	require.Empty(t, got, "a node without functions claims nothing")

	got, err = b.ClaimDue(ctx, owner, nil, []string{"fn1", "other"}, time.Minute, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"f-001", "f-003"}, ids(got), "only the functions named")

	got, err = b.ClaimDue(ctx, otherOwner, []string{testQueue}, []string{"fn0"}, time.Minute, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"f-000", "f-002"}, ids(got))
}

func (s *suite) testStats(t *testing.T) {
	b, ctx := s.setup(t)
	old := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	createN(t, ctx, b, "done", 3, func(i int, e *persistence.Execution) {
		e.Status = persistence.StatusCompleted
		e.CreatedAt = old.Add(time.Duration(i) * time.Second)
	})
	create(t, ctx, b, &persistence.Execution{ID: "failed", Function: "other", Queue: "q2", Status: persistence.StatusFailed})
	createN(t, ctx, b, "due", 2, func(i int, e *persistence.Execution) { e.CreatedAt = old.Add(time.Duration(i) * time.Minute) })
	create(t, ctx, b, &persistence.Execution{ID: "later", Function: testFunction, Queue: testQueue,
		RunAt: time.Now().Add(time.Hour), CreatedAt: old.Add(-time.Minute)})
	create(t, ctx, b, &persistence.Execution{ID: "waits", Function: testFunction, Queue: testQueue, Status: persistence.StatusWaiting})

	st, err := b.Stats(ctx)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), st.At, clockSlack)
	byKey := map[string]persistence.StatsGroup{}
	for _, g := range st.Groups {
		byKey[g.Function+"/"+g.Queue+"/"+string(g.Status)] = g
	}
	require.Len(t, byKey, 4, "%+v", st.Groups)
	done := byKey[testFunction+"/"+testQueue+"/completed"]
	require.Equal(t, 3, done.Count)
	require.Equal(t, 1, byKey["other/q2/failed"].Count)
	pending := byKey[testFunction+"/"+testQueue+"/pending"]
	require.Equal(t, 3, pending.Count)
	require.Equal(t, 2, pending.Due, "the one scheduled later is not due")
	require.WithinDuration(t, old, pending.OldestDue, time.Millisecond)
	require.WithinDuration(t, old.Add(-time.Minute), pending.OldestCreatedAt, time.Millisecond)
	require.Equal(t, 1, byKey[testFunction+"/"+testQueue+"/waiting"].Count)

	// Counts follow executions that finish, and that are deleted.
	finish(t, ctx, b, "due-000")
	n, err := b.Cleanup(ctx, time.Now().Add(clockSlack), 100)
	require.NoError(t, err)
	require.Equal(t, 5, n)
	st, err = b.Stats(ctx)
	require.NoError(t, err)
	for _, g := range st.Groups {
		require.False(t, g.Status.Terminal(), "no finished execution is left: %+v", g)
		require.Positive(t, g.Count)
	}
	finish(t, ctx, b, "due-001")
	st, err = b.Stats(ctx)
	require.NoError(t, err)
	found := false
	for _, g := range st.Groups {
		if g.Status == persistence.StatusCompleted {
			require.Equal(t, 1, g.Count)
			found = true
		}
	}
	require.True(t, found)
}

func (s *suite) testQueueDepth(t *testing.T) {
	b, ctx := s.setup(t)
	createN(t, ctx, b, "d", 3, nil)
	create(t, ctx, b, &persistence.Execution{ID: "later", Function: testFunction, Queue: testQueue, RunAt: time.Now().Add(time.Hour)})
	create(t, ctx, b, &persistence.Execution{ID: "elsewhere", Function: testFunction, Queue: "q2"})
	create(t, ctx, b, &persistence.Execution{ID: "done", Function: testFunction, Queue: testQueue, Status: persistence.StatusCompleted})
	n, err := b.QueueDepth(ctx, testQueue)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	lease(t, ctx, b, "d-000")
	n, err = b.QueueDepth(ctx, testQueue)
	require.NoError(t, err)
	require.Equal(t, 2, n, "a leased execution is not waiting")
	n, err = b.QueueDepth(ctx, "nobody")
	require.NoError(t, err)
	require.Zero(t, n)
}

// finish ends execution id (leased first) with status completed.
func finish(t *testing.T, ctx context.Context, b persistence.Backend, id string) {
	t.Helper()
	epoch := lease(t, ctx, b, id)
	apply(t, ctx, b, &persistence.Commit{ExecutionID: id, Epoch: epoch,
		Update: &persistence.Update{Status: persistence.StatusCompleted, Output: []byte(`1`), Release: true}})
}

func (s *suite) testCleanup(t *testing.T) {
	b, ctx := s.setup(t)
	// A finished tree with a journal, a snapshot, a consumed signal and a
	// dead letter; a finished root whose child still runs; a live root.
	create(t, ctx, b, newExec("root"))
	create(t, ctx, b, &persistence.Execution{ID: "root.1", Function: "child", Queue: testQueue, ParentID: "root", ParentPos: 1})
	create(t, ctx, b, &persistence.Execution{ID: "root.1.1", Function: "child", Queue: testQueue, ParentID: "root.1", ParentPos: 1})
	_, err := b.SendSignal(ctx, &persistence.Signal{ID: "sig", ExecutionID: "root", Name: "go"}, 0)
	require.NoError(t, err)
	epoch := lease(t, ctx, b, "root")
	apply(t, ctx, b, &persistence.Commit{ExecutionID: "root", Epoch: epoch,
		Journal:    []*persistence.JournalEntry{{Position: 1, Kind: persistence.EntryCall, Name: "child", ChildID: "root.1"}},
		Snapshot:   &persistence.Snapshot{ExecutionID: "root", Position: 1, Data: []byte("s")},
		DeadLetter: &persistence.DeadLetter{ID: "dl-root", ExecutionID: "root", Function: testFunction}})
	finish(t, ctx, b, "root.1.1")
	finish(t, ctx, b, "root.1")
	finish(t, ctx, b, "root")

	create(t, ctx, b, newExec("busy"))
	create(t, ctx, b, &persistence.Execution{ID: "busy.1", Function: "child", Queue: testQueue, ParentID: "busy", ParentPos: 1})
	finish(t, ctx, b, "busy")
	create(t, ctx, b, newExec("live"))

	n, err := b.Cleanup(ctx, time.Now().Add(-time.Hour), 10)
	require.NoError(t, err)
	require.Zero(t, n, "nothing finished an hour ago")

	n, err = b.Cleanup(ctx, time.Now().Add(clockSlack), 10)
	require.NoError(t, err)
	require.Equal(t, 3, n, "the whole finished tree, and only it")
	for _, id := range []string{"root", "root.1", "root.1.1"} {
		_, err := b.GetExecution(ctx, id)
		require.ErrorIs(t, err, persistence.ErrNotFound, id)
	}
	snap, entries := journal(t, ctx, b, "root")
	require.Nil(t, snap)
	require.Empty(t, entries)
	_, err = b.GetDeadLetter(ctx, "dl-root")
	require.ErrorIs(t, err, persistence.ErrNotFound)
	for _, id := range []string{"busy", "busy.1", "live"} {
		get(t, ctx, b, id)
	}

	n, err = b.Cleanup(ctx, time.Now().Add(clockSlack), 10)
	require.NoError(t, err)
	require.Zero(t, n, "a tree with a live child stays")
	finish(t, ctx, b, "busy.1")
	n, err = b.Cleanup(ctx, time.Now().Add(clockSlack), 10)
	require.NoError(t, err)
	require.Equal(t, 2, n)

	createN(t, ctx, b, "many", 5, func(_ int, e *persistence.Execution) { e.Status = persistence.StatusCanceled })
	n, err = b.Cleanup(ctx, time.Now().Add(clockSlack), 2)
	require.NoError(t, err)
	require.Equal(t, 2, n, "limit counts trees")
}

func (s *suite) testDeadLettersOf(t *testing.T) {
	b, ctx := s.setup(t)
	create(t, ctx, b, newExec("x"))
	epoch := lease(t, ctx, b, "x")
	apply(t, ctx, b, &persistence.Commit{ExecutionID: "x", Epoch: epoch,
		DeadLetter: &persistence.DeadLetter{ID: "dl-1", ExecutionID: "x", Function: testFunction, Attempts: 3}})
	ds, err := b.DeadLettersOf(ctx, "x")
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, "dl-1", ds[0].ID)
	require.Equal(t, 3, ds[0].Attempts)
	ds, err = b.DeadLettersOf(ctx, "nobody")
	require.NoError(t, err)
	require.Empty(t, ds)
}

func (s *suite) testJournalEntries(t *testing.T) {
	b, ctx := s.setup(t)
	create(t, ctx, b, newExec("j"))
	epoch := lease(t, ctx, b, "j")
	before := time.Now()
	apply(t, ctx, b, &persistence.Commit{ExecutionID: "j", Epoch: epoch, Journal: []*persistence.JournalEntry{
		{Position: 0, Kind: persistence.EntryNow, Done: true, Output: []byte(`"t"`)},
		{Position: 1, Kind: persistence.EntrySignal, Name: "go"},
	}})
	apply(t, ctx, b, &persistence.Commit{ExecutionID: "j", Epoch: epoch,
		Snapshot: &persistence.Snapshot{ExecutionID: "j", Position: 0, Data: []byte("s")}})
	entries, err := b.JournalEntries(ctx, "j")
	require.NoError(t, err)
	require.Len(t, entries, 2, "entries a snapshot covers are listed too")
	require.True(t, entries[0].Done)
	require.WithinDuration(t, before, entries[0].StartedAt, clockSlack)
	require.Equal(t, entries[0].StartedAt, entries[0].EndedAt, "recorded done at once")
	require.False(t, entries[1].Done)
	require.False(t, entries[1].StartedAt.IsZero())
	require.True(t, entries[1].EndedAt.IsZero(), "an intent has not ended")

	apply(t, ctx, b, &persistence.Commit{ExecutionID: "j", Epoch: epoch, Journal: []*persistence.JournalEntry{
		{Position: 1, Kind: persistence.EntrySignal, Name: "go", Done: true, Output: []byte(`1`)},
	}})
	entries, err = b.JournalEntries(ctx, "j")
	require.NoError(t, err)
	require.Equal(t, entries[1].StartedAt.UTC(), entries[1].StartedAt)
	require.False(t, entries[1].EndedAt.IsZero())
	require.False(t, entries[1].EndedAt.Before(entries[1].StartedAt))
}

// testJournalCallRecord: a call's entry holds its child's record (input,
// times, attempts) as given, whether written in a commit of several entries,
// of one, or delivered by the child; a later write without them keeps them.
func (s *suite) testJournalCallRecord(t *testing.T) {
	b, ctx := s.setup(t)
	create(t, ctx, b, newExec("p"))
	epoch := lease(t, ctx, b, "p")
	started := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	ended := started.Add(1500 * time.Millisecond)

	// A step recorded only in its parent's journal, with the intent of a
	// call beside it: one commit of two entries.
	apply(t, ctx, b, &persistence.Commit{ExecutionID: "p", Epoch: epoch, Journal: []*persistence.JournalEntry{
		{Position: 0, Kind: persistence.EntryCall, Name: "step", ChildID: "p.0", Done: true, Output: []byte(`"out"`),
			Input: []byte(`{"in":0}`), StartedAt: started, EndedAt: ended, Attempts: 1},
		{Position: 1, Kind: persistence.EntryCall, Name: "child", ChildID: "p.1", Input: []byte(`{"in":1}`), StartedAt: started},
	}})
	// The call's outcome, without its input or start.
	apply(t, ctx, b, &persistence.Commit{ExecutionID: "p", Epoch: epoch, Journal: []*persistence.JournalEntry{
		{Position: 1, Kind: persistence.EntryCall, Name: "child", ChildID: "p.1", Done: true, Output: []byte(`1`),
			EndedAt: ended, Attempts: 3},
	}})
	// A child's outcome delivered by the child's own commit.
	create(t, ctx, b, &persistence.Execution{ID: "p.2", Function: "child", Queue: testQueue, ParentID: "p", ParentPos: 2, RootID: "p"})
	childEpoch := lease(t, ctx, b, "p.2")
	apply(t, ctx, b, &persistence.Commit{ExecutionID: "p.2", Epoch: childEpoch,
		Update: &persistence.Update{Status: persistence.StatusCompleted, Output: []byte(`2`), Attempts: 2},
		Deliver: &persistence.JournalEntry{ExecutionID: "p", Position: 2, Kind: persistence.EntryCall, Name: "child",
			ChildID: "p.2", Done: true, Output: []byte(`2`), Input: []byte(`{"in":2}`), StartedAt: started, EndedAt: ended, Attempts: 2}})
	// A call recorded without any of them: times from the backend's clock.
	before := time.Now()
	apply(t, ctx, b, &persistence.Commit{ExecutionID: "p", Epoch: epoch, Journal: []*persistence.JournalEntry{
		{Position: 3, Kind: persistence.EntryCall, Name: "step", ChildID: "p.3", Done: true, Output: []byte(`3`)},
	}})

	entries, err := b.JournalEntries(ctx, "p")
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 2, 3}, positions(entries))
	for i, want := range []struct {
		input    string
		attempts int
	}{{`{"in":0}`, 1}, {`{"in":1}`, 3}, {`{"in":2}`, 2}} {
		e := entries[i]
		require.True(t, e.Done, "entry %d", i)
		require.JSONEq(t, want.input, string(e.Input), "entry %d", i)
		require.Equal(t, want.attempts, e.Attempts, "entry %d", i)
		require.Equal(t, started, e.StartedAt, "entry %d: the start given", i)
		require.Equal(t, ended, e.EndedAt, "entry %d: the end given", i)
	}
	require.Nil(t, entries[3].Input, "no input recorded")
	require.Zero(t, entries[3].Attempts, "no attempts recorded")
	require.WithinDuration(t, before, entries[3].StartedAt, clockSlack)
	require.Equal(t, entries[3].StartedAt, entries[3].EndedAt)

	_, loaded := journal(t, ctx, b, "p")
	require.Len(t, loaded, 4)
	require.Equal(t, []byte(`"out"`), loaded[0].Output, "LoadJournal reads the outcome as before")
}

func (s *suite) testNodes(t *testing.T) {
	b, ctx := s.setup(t)
	started := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	require.NoError(t, b.UpsertNode(ctx, &persistence.Node{ID: owner, Addresses: map[string]string{"gossip": "127.0.0.1:7946"},
		Functions: []string{"a", "b"}, Queues: []string{"q1"}, Tags: []string{"gpu", "eu"}, Version: "v1", StartedAt: started}, time.Minute))
	require.NoError(t, b.UpsertNode(ctx, &persistence.Node{ID: otherOwner, Functions: []string{"c"}}, shortTTL))
	create(t, ctx, b, newExec("leased"))
	lease(t, ctx, b, "leased")

	nodes, err := b.ListNodes(ctx)
	require.NoError(t, err)
	require.Len(t, nodes, 2)
	a := nodes[0]
	require.Equal(t, owner, a.ID)
	require.Equal(t, map[string]string{"gossip": "127.0.0.1:7946"}, a.Addresses)
	require.Equal(t, []string{"a", "b"}, a.Functions)
	require.Equal(t, []string{"q1"}, a.Queues)
	require.Equal(t, []string{"gpu", "eu"}, a.Tags, "the tags as given")
	require.Equal(t, "v1", a.Version)
	require.WithinDuration(t, started, a.StartedAt, time.Millisecond)
	require.WithinDuration(t, time.Now(), a.HeartbeatAt, clockSlack)
	require.True(t, a.Alive)
	require.Equal(t, 1, a.Owned)
	require.True(t, a.Serves("b", "q1"))
	require.False(t, a.Serves("b", "q2"))
	require.False(t, a.Serves("c", "q1"))
	require.Empty(t, nodes[1].Queues)
	require.Empty(t, nodes[1].Tags, "no tags")
	require.True(t, nodes[1].Serves("c", "any"), "no queues: every queue")

	require.Eventually(t, func() bool {
		nodes, err := b.ListNodes(ctx)
		return err == nil && len(nodes) == 2 && !nodes[1].Alive
	}, waitFor, 10*time.Millisecond, "a node past its ttl is shown dead")

	require.NoError(t, b.UpsertNode(ctx, &persistence.Node{ID: owner, Functions: []string{"a"}, Tags: []string{"gpu"}}, time.Minute))
	nodes, err = b.ListNodes(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"gpu"}, nodes[0].Tags, "a heartbeat rewrites the tags")

	require.NoError(t, b.DeleteNode(ctx, otherOwner))
	require.NoError(t, b.DeleteNode(ctx, "unknown"))
	nodes, err = b.ListNodes(ctx)
	require.NoError(t, err)
	require.Len(t, nodes, 1)
	require.Error(t, b.UpsertNode(ctx, &persistence.Node{}, time.Minute), "an ID is required")
}
