package console

import (
	"time"

	"github.com/stent-go/stent/internal/ops"
)

// Timeline is an execution's durable operations on one time axis, for
// GET /api/executions/{id}/timeline and the detail page's drawing.
type Timeline struct {
	ExecutionID string `json:"execution_id"`
	// Start and End bound the axis: the execution's creation, and its end
	// (now while it runs).
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Running  bool      `json:"running"`
	Attempts int       `json:"attempts"`
	// Items are the journal's operations in position order.
	Items []TimelineItem `json:"items"`
}

// TimelineItem is one durable operation on the axis.
type TimelineItem struct {
	Position int    `json:"position"`
	Kind     string `json:"kind"`
	Name     string `json:"name,omitempty"`
	ChildID  string `json:"child_id,omitempty"`
	// State is completed, failed or waiting (not done yet).
	State string `json:"state"`
	// Start and End are when it started and ended; End is now for one
	// not done, and Planned is then the time it is due (a sleep's end, a
	// signal wait's timeout), when it has one.
	Start    time.Time  `json:"start"`
	End      time.Time  `json:"end"`
	Planned  *time.Time `json:"planned,omitempty"`
	Attempts int        `json:"attempts,omitempty"`
	// Left and Width place the item on the axis, in percent of its length.
	Left  float64 `json:"left"`
	Width float64 `json:"width"`
}

// timelineOf lays out s's journal on the axis from its creation to its
// end (or now).
func timelineOf(s *ops.Show, now time.Time) Timeline {
	t := Timeline{ExecutionID: s.ID, Start: s.CreatedAt, End: now, Running: !s.Status.Terminal(), Attempts: s.Attempts,
		Items: []TimelineItem{}}
	if s.EndedAt != nil {
		t.End = *s.EndedAt
	} else if s.Status.Terminal() {
		t.End = s.UpdatedAt
	}
	for _, e := range s.Journal {
		it := TimelineItem{Position: e.Position, Kind: e.Kind, Name: e.Name, ChildID: e.ChildID, Attempts: e.Attempts,
			State: "waiting", Start: t.Start, End: t.End}
		if e.StartedAt != nil {
			it.Start = *e.StartedAt
		}
		it.State = entryState(e, now)
		switch {
		case e.EndedAt != nil:
			it.End = *e.EndedAt
		case e.Kind == sdkSleep && e.FireAt != nil && it.State == "completed":
			it.End = *e.FireAt // a passivated sleep ends when its timer fires
		case !e.Done && e.FireAt != nil:
			it.Planned = e.FireAt
		}
		if it.End.Before(it.Start) {
			it.End = it.Start
		}
		if it.End.After(t.End) {
			t.End = it.End
		}
		t.Items = append(t.Items, it)
	}
	span := t.End.Sub(t.Start)
	for i := range t.Items {
		it := &t.Items[i]
		if span <= 0 {
			it.Left, it.Width = 0, 100
			continue
		}
		it.Left = pct(it.Start.Sub(t.Start), span)
		it.Width = max(pct(it.End.Sub(it.Start), span), 0.6) // a short step stays visible
		if it.Left+it.Width > 100 {
			it.Left = max(0, 100-it.Width)
		}
	}
	return t
}

// entryState is failed, completed or waiting: a sleep whose timer has
// fired counts as completed (a passivated sleep's entry is not rewritten
// when it wakes).
func entryState(e ops.Entry, now time.Time) string {
	switch {
	case e.Error != nil:
		return "failed"
	case e.Done, e.Kind == sdkSleep && e.FireAt != nil && !e.FireAt.After(now):
		return "completed"
	}
	return "waiting"
}

// sdkSleep is the kind of a sleep's journal entry.
const sdkSleep = "sleep"

// pct is d as a percent of span, rounded to 0.01.
func pct(d, span time.Duration) float64 {
	p := float64(d) / float64(span) * 100
	return float64(int(p*100+0.5)) / 100
}
