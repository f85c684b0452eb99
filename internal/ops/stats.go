package ops

import (
	"time"

	"github.com/stent-go/stent/sdk"
)

// Stats are the execution counts.
type Stats struct {
	At        time.Time       `json:"at"`
	Total     int             `json:"total"`
	ByStatus  map[string]int  `json:"by_status"`
	Functions []FunctionCount `json:"functions"`
	Queues    []Queue         `json:"queues"`
	Unserved  []Unserved      `json:"unserved"`
}

// FunctionCount counts the executions of one function.
type FunctionCount struct {
	Function string         `json:"function"`
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"by_status"`
}

// Queue is one queue: its depth (pending executions that may run now) and
// the executions not finished on it.
type Queue struct {
	Queue         string     `json:"queue"`
	Depth         int        `json:"depth"`
	Pending       int        `json:"pending"`
	Running       int        `json:"running"`
	Waiting       int        `json:"waiting"`
	OldestPending *time.Time `json:"oldest_pending,omitempty"`
}

// Unserved is pending work no live node can run.
type Unserved struct {
	Function      string     `json:"function"`
	Queue         string     `json:"queue"`
	Pending       int        `json:"pending"`
	OldestPending *time.Time `json:"oldest_pending,omitempty"`
}

// byStatus is m with string keys.
func byStatus(m map[sdk.Status]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}

// ToStats is s as a document.
func ToStats(s sdk.Stats) *Stats {
	out := &Stats{At: s.At, Total: s.Total, ByStatus: byStatus(s.ByStatus), Functions: []FunctionCount{},
		Queues: []Queue{}, Unserved: []Unserved{}}
	for _, f := range s.Functions {
		out.Functions = append(out.Functions, FunctionCount{Function: f.Function, Total: f.Total, ByStatus: byStatus(f.ByStatus)})
	}
	for _, q := range s.Queues {
		out.Queues = append(out.Queues, Queue{Queue: q.Queue, Depth: q.Depth, Pending: q.Pending, Running: q.Running,
			Waiting: q.Waiting, OldestPending: TimePtr(q.OldestPending)})
	}
	for _, u := range s.Unserved {
		out.Unserved = append(out.Unserved, Unserved{Function: u.Function, Queue: u.Queue, Pending: u.Pending,
			OldestPending: TimePtr(u.OldestPending)})
	}
	return out
}
