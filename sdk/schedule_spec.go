package sdk

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/stent-go/stent/persistence"
)

// specParser reads schedule specs: five cron fields, or six with seconds
// first, the descriptors (@hourly, @daily, @every 5m, ...), and a CRON_TZ=
// or TZ= prefix naming the time zone.
var specParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month |
	cron.Dow | cron.Descriptor)

// Every returns the spec of a schedule that ticks every d ("@every 5m0s").
// An interval is whole seconds (at least one), and its ticks fall on a
// fixed grid: every d from the schedule's start time (WithStartAt), or from
// the Unix epoch without one; @every 5m ticks at :00, :05, :10 and so on.
func Every(d time.Duration) string { return "@every " + d.String() }

// spec is a parsed schedule spec with its bounds.
type spec struct {
	sched      cron.Schedule
	start, end time.Time
}

// parseSpec parses s in the time zone tz ("" is UTC unless s names one).
// The error carries the parser's own message.
func parseSpec(s, tz string) (cron.Schedule, error) {
	src := strings.TrimSpace(s)
	if src == "" {
		return nil, fmt.Errorf("empty spec: give a cron expression (\"0 2 * * *\") or an interval (%q)", Every(5*time.Minute))
	}
	hasTZ := strings.HasPrefix(src, "CRON_TZ=") || strings.HasPrefix(src, "TZ=")
	if tz != "" {
		if hasTZ {
			return nil, fmt.Errorf("spec %q names a time zone and the time zone option %q is set too: keep one", s, tz)
		}
		if _, err := time.LoadLocation(tz); err != nil {
			return nil, fmt.Errorf("time zone %q: %w", tz, err)
		}
		src = "CRON_TZ=" + tz + " " + src
	}
	sched, err := specParser.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("spec %q does not parse: %w", s, err)
	}
	return sched, nil
}

func newSpec(s *persistence.Schedule) (*spec, error) {
	sched, err := parseSpec(s.Spec, s.TimeZone)
	if err != nil {
		return nil, err
	}
	return &spec{sched: sched, start: s.StartAt, end: s.EndAt}, nil
}

// after returns the first tick strictly after t, within the bounds, in
// UTC to the millisecond; the zero time when there is none (past the end).
// An interval ticks on a fixed grid: every Delay from the start time, or
// from the Unix epoch without one, so that its ticks are the same times
// whatever happened (a pause, a restart, a backfill).
func (p *spec) after(t time.Time) time.Time {
	var n time.Time
	if every, ok := p.sched.(cron.ConstantDelaySchedule); ok && every.Delay > 0 {
		origin := p.start
		if origin.IsZero() {
			origin = time.Unix(0, 0)
		}
		n = origin
		if !t.Before(origin) {
			n = origin.Add((t.Sub(origin)/every.Delay + 1) * every.Delay)
		}
	} else {
		if !p.start.IsZero() && t.Before(p.start) {
			t = p.start.Add(-time.Nanosecond) // a tick at the start itself counts
		}
		n = p.sched.Next(t)
	}
	if n.IsZero() || (!p.end.IsZero() && n.After(p.end)) {
		return time.Time{}
	}
	return n.UTC().Truncate(time.Millisecond)
}

// skipBefore walks the ticks from t (a tick) that come before limit: it
// returns the last of them, how many there are, and the first tick at or
// after limit (zero past the end). An interval is walked by arithmetic; a
// cron expression tick by tick, counting up to maxSkipCount, past which it
// jumps to limit (capped is then set, and last is limit).
func (p *spec) skipBefore(t, limit time.Time) (last time.Time, n int, next time.Time, capped bool) {
	if every, ok := p.sched.(cron.ConstantDelaySchedule); ok && every.Delay > 0 {
		k := int64((limit.Sub(t) + every.Delay - 1) / every.Delay) // ticks t + i×Delay below limit
		last, next = t.Add(time.Duration(k-1)*every.Delay), t.Add(time.Duration(k)*every.Delay)
		if !p.end.IsZero() && next.After(p.end) {
			next = time.Time{}
		}
		if !p.end.IsZero() && last.After(p.end) {
			k = int64(p.end.Sub(t)/every.Delay) + 1
			last = t.Add(time.Duration(k-1) * every.Delay)
		}
		return last, int(k), next, false
	}
	last = t
	for !t.IsZero() && t.Before(limit) {
		if n == maxSkipCount {
			return limit, n, p.after(limit.Add(-time.Millisecond)), true
		}
		last, n = t, n+1
		t = p.after(t)
	}
	return last, n, t, false
}

// jitterOf is the delay of a tick's execution: a hash of the schedule and
// the tick below max, the same every time it is computed, so a fire that is
// retried starts the execution at the same time.
func jitterOf(s *persistence.Schedule, tick time.Time) time.Duration {
	if s.Jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", s.ID, tick.UnixMilli())
	return time.Duration(h.Sum64() % uint64(s.Jitter))
}

// tickKey is the idempotency key of the execution of a schedule's tick:
// two nodes (or a backfill and the schedule) that start the same tick get
// the same execution. The schedule's ID keeps a schedule made again under
// the same name apart from the old one.
func tickKey(s *persistence.Schedule, kind persistence.TickKind, tick time.Time) string {
	if kind == persistence.TickBackfill {
		kind = persistence.TickScheduled // a backfilled tick is the scheduled one
	}
	return "stent-schedule:" + s.Name + ":" + s.ID + ":" + string(kind) + ":" + tick.UTC().Format(time.RFC3339Nano)
}
