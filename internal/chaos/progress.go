package chaos

import (
	"fmt"
	"time"

	"github.com/stent-go/stent/actors"
)

// progressEvery is how often a run prints its progress line.
const progressEvery = 5 * time.Second

// progress prints, every progressEvery, how many of the n workflows have
// ended and the faults so far.
func (r *run) progress(now time.Time, ended, n int) {
	if r.lastProgress.IsZero() {
		r.lastProgress = now
		return
	}
	if now.Sub(r.lastProgress) < progressEvery {
		return
	}
	r.lastProgress = now
	fmt.Fprintf(r.out, "progress: %d of %d workflows ended; %d kills, %d pauses, %d restarts, %d takeovers\n",
		ended, n, len(r.kills), r.pauses, r.restarts, r.takeovers())
}

// takeovers counts the takeovers of lost members the node logs report so
// far: every survivor logs each one, so reports of one member within a
// lease of each other count once. Without a cluster, executions move by
// lease expiry, which no node logs: the count is 0 and the final table's
// takeover times tell.
func (r *run) takeovers() int {
	var seen []struct {
		member string
		at     time.Time
	}
	window := r.cfg.Lease
	for _, nd := range r.nodes {
		err := eachLogLine(nd.logPath, func(l logLine) {
			if !l.json || l.Msg != actors.LogTakeover {
				return
			}
			for _, s := range seen {
				if s.member == l.Member && l.Time.Sub(s.at).Abs() < window {
					return
				}
			}
			seen = append(seen, struct {
				member string
				at     time.Time
			}{l.Member, l.Time})
		})
		if err != nil {
			continue // a log not written yet
		}
	}
	return len(seen)
}
