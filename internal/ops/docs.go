package ops

import (
	"encoding/json"
	"time"

	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/codec"
	"github.com/stent-go/stent/sdk"
)

// Execution is an execution as the CLI's --json output and the console's
// API give it.
type Execution struct {
	ID              string          `json:"id"`
	Function        string          `json:"function"`
	Queue           string          `json:"queue"`
	Status          sdk.Status      `json:"status"`
	ParentID        string          `json:"parent_id,omitempty"`
	RootID          string          `json:"root_id,omitempty"`
	IdempotencyKey  string          `json:"idempotency_key,omitempty"`
	Attempts        int             `json:"attempts"`
	Priority        int             `json:"priority"`
	Version         string          `json:"version,omitempty"`
	Owner           string          `json:"owner,omitempty"`
	Input           json.RawMessage `json:"input"`
	Output          json.RawMessage `json:"output"`
	Error           *Error          `json:"error,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	EndedAt         *time.Time      `json:"ended_at,omitempty"`
	RunAt           *time.Time      `json:"run_at,omitempty"`
	Deadline        *time.Time      `json:"deadline,omitempty"`
	CancelRequested bool            `json:"cancel_requested,omitempty"`
	WaitingOn       string          `json:"waiting_on,omitempty"`
	// JournalOnly marks a step recorded only as its outcome in its
	// parent's journal: no journal or children of its own.
	JournalOnly bool `json:"journal_only,omitempty"`
	// CachedFrom, Counters and State are the execution's progress
	// (WithCache, Counter, SetState); show fills them, list does not.
	CachedFrom string                     `json:"cached_from,omitempty"`
	Counters   map[string]float64         `json:"counters,omitempty"`
	State      map[string]json.RawMessage `json:"state,omitempty"`
}

// Error is a recorded failure.
type Error struct {
	Message      string `json:"message"`
	Kind         string `json:"kind,omitempty"`
	NonRetryable bool   `json:"non_retryable,omitempty"`
	Stack        string `json:"stack,omitempty"`
}

// Entry is a journal entry of Show.
type Entry struct {
	Position  int             `json:"position"`
	Kind      string          `json:"kind"`
	Name      string          `json:"name,omitempty"`
	ChildID   string          `json:"child_id,omitempty"`
	FireAt    *time.Time      `json:"fire_at,omitempty"`
	Done      bool            `json:"done"`
	Output    json.RawMessage `json:"output,omitempty"`
	Error     *Error          `json:"error,omitempty"`
	StartedAt *time.Time      `json:"started_at,omitempty"`
	EndedAt   *time.Time      `json:"ended_at,omitempty"`
	// Input and Attempts are a call's child's, when the entry records
	// them.
	Input    json.RawMessage `json:"input,omitempty"`
	Attempts int             `json:"attempts,omitempty"`
}

// TreeNode is a child in Show's tree.
type TreeNode struct {
	ID         string      `json:"id"`
	Function   string      `json:"function"`
	Status     sdk.Status  `json:"status"`
	Attempts   int         `json:"attempts"`
	CreatedAt  time.Time   `json:"created_at"`
	EndedAt    *time.Time  `json:"ended_at,omitempty"`
	DurationMS int64       `json:"duration_ms"`
	Children   []*TreeNode `json:"children,omitempty"`
}

// Show is one execution with its journal, children and dead letters.
type Show struct {
	Execution
	Journal     []Entry      `json:"journal"`
	Children    []*TreeNode  `json:"children"`
	DeadLetters []DeadLetter `json:"dead_letters"`
	// TraceID is the W3C trace ID of the execution's trace ("" when none
	// was recorded).
	TraceID string `json:"trace_id,omitempty"`
}

// List is one page of executions, newest first.
type List struct {
	Executions []Execution `json:"executions"`
	// NextCursor, when not "", is the cursor of the next page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// DeadLetter is a dead letter.
type DeadLetter struct {
	ID          string          `json:"id"`
	ExecutionID string          `json:"execution_id"`
	Function    string          `json:"function"`
	Input       json.RawMessage `json:"input"`
	Error       *Error          `json:"error,omitempty"`
	Attempts    int             `json:"attempts"`
	CreatedAt   time.Time       `json:"created_at"`
}

// DeadAction is one dead letter replayed or discarded.
type DeadAction struct {
	DeadLetter  string `json:"dead_letter"`
	ExecutionID string `json:"execution_id"`
	Function    string `json:"function"`
	Action      string `json:"action"`
}

// Member is a node of the registry.
type Member struct {
	ID          string            `json:"id"`
	Alive       bool              `json:"alive"`
	Addresses   map[string]string `json:"addresses"`
	Functions   []string          `json:"functions"`
	Queues      []string          `json:"queues"`
	Tags        []string          `json:"tags"`
	Owned       int               `json:"owned"`
	Version     string            `json:"version,omitempty"`
	StartedAt   time.Time         `json:"started_at"`
	HeartbeatAt time.Time         `json:"heartbeat_at"`
}

// Action is the answer to a signal or a cancel.
type Action struct {
	ExecutionID string `json:"execution_id"`
	Action      string `json:"action"`
	Signal      string `json:"signal,omitempty"`
}

// ErrorOfDetail is d as an Error (nil for nil).
func ErrorOfDetail(d *sdk.ErrorDetail) *Error {
	if d == nil {
		return nil
	}
	return &Error{Message: d.Message, Kind: d.Kind, NonRetryable: d.NonRetryable, Stack: d.Stack}
}

// ErrorOf is a stored failure as an Error (nil for nil).
func ErrorOf(e *persistence.ErrorInfo) *Error {
	if e == nil {
		return nil
	}
	return &Error{Message: e.Message, Kind: string(e.Kind), NonRetryable: e.NonRetryable, Stack: e.Stack}
}

// TimePtr is t, or nil for the zero time.
func TimePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// RawOrNull is raw JSON for an output document: null when empty or not
// JSON (the text then goes as a JSON string), and an encrypted payload
// without its key as the string saying so.
func RawOrNull(raw []byte) json.RawMessage {
	raw = codec.ForDisplay(nil, raw) // still encrypted: no key, or not its key
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	if !json.Valid(raw) {
		b, _ := json.Marshal(string(raw)) //nolint:errcheck // a string always encodes
		return b
	}
	return raw
}

// displayState is state with each value as RawOrNull shows it.
func displayState(state map[string]json.RawMessage) map[string]json.RawMessage {
	if len(state) == 0 {
		return nil
	}
	out := make(map[string]json.RawMessage, len(state))
	for k, v := range state {
		out[k] = RawOrNull(v)
	}
	return out
}

// ToExecution is e as an Execution.
func ToExecution(e sdk.ExecutionInfo) Execution {
	j := Execution{ID: e.ID, Function: e.Function, Queue: e.Queue, Status: e.Status, ParentID: e.ParentID,
		RootID: e.RootID, IdempotencyKey: e.IdempotencyKey, Attempts: e.Attempts, Priority: e.Priority,
		Version: e.Version, Owner: e.Owner, Input: RawOrNull(e.Input), Output: RawOrNull(e.Output),
		Error: ErrorOfDetail(e.Failure), CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, EndedAt: TimePtr(e.EndedAt),
		RunAt: TimePtr(e.RunAt), Deadline: TimePtr(e.Deadline), CancelRequested: e.CancelRequested, WaitingOn: e.WaitingOn,
		CachedFrom: e.CachedFrom, Counters: e.Counters, State: displayState(e.State), JournalOnly: e.JournalOnly}
	if j.Error == nil && e.Error != "" {
		j.Error = &Error{Message: e.Error}
	}
	return j
}

// ToDeadLetter is d as a DeadLetter.
func ToDeadLetter(d *persistence.DeadLetter) DeadLetter {
	return DeadLetter{ID: d.ID, ExecutionID: d.ExecutionID, Function: d.Function, Input: RawOrNull(d.Input),
		Error: ErrorOf(d.Error), Attempts: d.Attempts, CreatedAt: d.CreatedAt}
}

// ToMember is n as a Member, with empty lists and maps rather than null.
func ToMember(n sdk.Member) Member {
	m := Member{ID: n.ID, Alive: n.Alive, Addresses: n.Addresses, Functions: n.Functions, Queues: n.Queues,
		Tags: n.Tags, Owned: n.Owned, Version: n.Version, StartedAt: n.StartedAt, HeartbeatAt: n.HeartbeatAt}
	if m.Addresses == nil {
		m.Addresses = map[string]string{}
	}
	if m.Functions == nil {
		m.Functions = []string{}
	}
	if m.Queues == nil {
		m.Queues = []string{}
	}
	if m.Tags == nil {
		m.Tags = []string{}
	}
	return m
}

// RunTime is how long e has run: to its end once finished, to now
// otherwise; 0 when its times are not recorded.
func (e Execution) RunTime(now time.Time) time.Duration {
	switch {
	case e.CreatedAt.IsZero():
		return 0
	case e.EndedAt != nil:
		return e.EndedAt.Sub(e.CreatedAt)
	case e.Status.Terminal():
		return e.UpdatedAt.Sub(e.CreatedAt)
	}
	return now.Sub(e.CreatedAt)
}

// RoundDur rounds d to a readable precision: minutes past an hour, seconds
// past a minute, tenths past a second, milliseconds below.
func RoundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute)
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}

// Schedule is a schedule: an element of stent schedule list --json and of
// GET /api/schedules.
type Schedule struct {
	Name            string          `json:"name"`
	Function        string          `json:"function"`
	Queue           string          `json:"queue"`
	Priority        int             `json:"priority"`
	Input           json.RawMessage `json:"input"`
	Spec            string          `json:"spec"`
	TimeZone        string          `json:"time_zone,omitempty"`
	Jitter          string          `json:"jitter"`
	StartAt         *time.Time      `json:"start_at,omitempty"`
	EndAt           *time.Time      `json:"end_at,omitempty"`
	Overlap         string          `json:"overlap"`
	CatchupWindow   string          `json:"catchup_window"`
	CatchupLatest   bool            `json:"catchup_latest"`
	Paused          bool            `json:"paused"`
	Note            string          `json:"note,omitempty"`
	NextRunAt       *time.Time      `json:"next_run_at"`
	BufferedAt      *time.Time      `json:"buffered_at,omitempty"`
	LastExecutionID string          `json:"last_execution_id,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

// ToSchedule is s as a Schedule.
func ToSchedule(s sdk.ScheduleInfo) Schedule {
	return Schedule{Name: s.Name, Function: s.Function, Queue: s.Queue, Priority: s.Priority, Input: RawOrNull(s.Input),
		Spec: s.Spec, TimeZone: s.TimeZone, Jitter: s.Jitter.String(), StartAt: TimePtr(s.StartAt), EndAt: TimePtr(s.EndAt),
		Overlap: string(s.Overlap), CatchupWindow: s.CatchupWindow.String(), CatchupLatest: s.CatchupLatest,
		Paused: s.Paused, Note: s.Note, NextRunAt: TimePtr(s.NextRunAt), BufferedAt: TimePtr(s.BufferedAt),
		LastExecutionID: s.LastExecutionID, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}
