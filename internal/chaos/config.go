// Package chaos is the `stent chaos` command: it starts a few stent-node
// processes on one database, runs the ledger workload (internal/ledger) on
// them while killing (SIGKILL) and pausing (SIGSTOP/SIGCONT) random nodes
// on a seeded schedule, then checks the invariants of
// ../shared/RELIABILITY.md that the ledger can see and prints them with the
// figures of the run. docs/chaos.md describes the flags and the output.
//
// It is wired up by cmd/stent; its exported identifiers are not a stable
// API.
package chaos

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/stent-go/stent/internal/ledger"
)

// Exit codes of Main.
const (
	ExitOK     = 0 // every invariant held
	ExitBroken = 1 // an invariant broke, or the run failed
	ExitUsage  = 2 // bad flags
)

// limitedEvery makes every limitedEvery-th workflow a limited one when
// --limit is on: enough to contend for the permits without slowing the
// whole run to the limit's pace.
const limitedEvery = 10

// Config is a chaos run. Parse fills it from flags; tests build it.
type Config struct {
	// DB is a SQLite file path or a postgres:// DSN; empty means a new
	// SQLite file in the run's directory. On PostgreSQL the run uses a
	// fresh schema, chaos_<seed>.
	DB string
	// Nodes, Workflows and Steps size the run: Workflows ledger workflows
	// of Steps steps each, on Nodes node processes.
	Nodes, Workflows, Steps int
	// StepPause is how long each step works.
	StepPause time.Duration
	// KillEvery is the mean time between SIGKILLs of a random node (each
	// one at a uniform random time in [KillEvery/2, 3×KillEvery/2] after
	// the last); 0 means no kills.
	KillEvery time.Duration
	// PauseEvery is the same for SIGSTOPs, each lasting PauseFor; 0 means
	// no pauses.
	PauseEvery, PauseFor time.Duration
	// Lease is the nodes' lease duration.
	Lease time.Duration
	// Concurrency is the nodes' --concurrency (0: their default).
	Concurrency int
	// Seed seeds every random choice; it is printed first.
	Seed uint64
	// Timeout bounds the whole run.
	Timeout time.Duration
	// Signals is how many workflows wait for a signal that the run sends.
	Signals int
	// Limit is ledger.LimitedMax to make every tenth workflow run its steps
	// as ledger_limited_step, or 0 for none.
	Limit int
	// Keep keeps the run's directory (and PostgreSQL schema); they are
	// also kept when an invariant breaks.
	Keep bool
	// NoCluster starts the nodes without --gossip, --remote and --seeds.
	NoCluster bool
	// Verbose copies the nodes' logs to stderr too.
	Verbose bool
	// Schedule, when not 0, adds a schedule ticking this often (1s at
	// least) to the workload, and the check that each tick started once.
	Schedule time.Duration
	// NodeCommand is the command that runs a node, to which the node's
	// flags are appended; empty means this executable with "node".
	NodeCommand []string
}

// usage is the text before the flags in `stent chaos -h`.
const usage = `Usage: stent chaos [flags]

Starts --nodes stent-node processes on one database, runs --workflows ledger
workflows on them while killing and pausing random nodes, then checks the
invariants (exactly-once completion, steps not run again, signals delivered,
concurrency limits held, nodes healthy) and prints them with the figures of
the run. Exits 0 if every invariant held, 1 if one broke, 2 on bad flags.

Flags:
`

// Parse reads the flags of `stent chaos`. It returns flag.ErrHelp for -h.
func Parse(args []string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet("stent chaos", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, usage)
		fs.PrintDefaults()
	}
	var c Config
	fs.StringVar(&c.DB, "db", "", "SQLite file path or postgres:// DSN (default: a new SQLite file in the run's directory); on PostgreSQL the run uses and drops a schema chaos_<seed>")
	fs.IntVar(&c.Nodes, "nodes", 3, "node processes")
	fs.IntVar(&c.Workflows, "workflows", 1000, "workflows to run")
	fs.IntVar(&c.Steps, "steps", 5, "steps per workflow")
	fs.DurationVar(&c.StepPause, "step-pause", time.Second, "how long each step works; with --concurrency it sets how long the run lasts, and so how many faults it sees")
	fs.DurationVar(&c.KillEvery, "kill-every", 10*time.Second, "SIGKILL a random node about this often (±50%), restarting it; 0: never")
	fs.DurationVar(&c.PauseEvery, "pause-every", 0, "SIGSTOP a random node about this often (±50%) for --pause-for; 0: never")
	fs.DurationVar(&c.PauseFor, "pause-for", 0, "how long a pause lasts (default 2×--lease)")
	fs.DurationVar(&c.Lease, "lease", 3*time.Second, "the nodes' lease duration")
	fs.IntVar(&c.Concurrency, "concurrency", 40, "the nodes' --concurrency: executions each claims at once (0: their default, 1000)")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed (default: from the time); printed first, so that a run can be repeated")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Minute, "deadline of the whole run")
	signals := fs.String("signals", "0.1", "workflows that wait for a signal the run sends: a fraction (< 1) or a count")
	fs.IntVar(&c.Limit, "limit", ledger.LimitedMax, "concurrency limit of the limited step run by every tenth workflow: "+strconv.Itoa(ledger.LimitedMax)+" (ledger.LimitedMax, fixed) or 0 for none")
	fs.BoolVar(&c.Keep, "keep", false, "keep the run's directory, logs and PostgreSQL schema (kept anyway when an invariant breaks)")
	fs.BoolVar(&c.NoCluster, "no-cluster", false, "start the nodes without --gossip, --remote and --seeds (sharing work through the database only)")
	fs.BoolVar(&c.Verbose, "v", false, "copy the nodes' logs to stderr")
	fs.DurationVar(&c.Schedule, "schedule", 0, "add a schedule ticking this often (1s at least) to the workload, and check that each tick started once; 0: none")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	n, err := parseSignals(*signals, c.Workflows)
	if err != nil {
		return Config{}, err
	}
	c.Signals = n
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	return c, c.validate()
}

// parseSignals reads --signals: a fraction of workflows below 1, a count
// otherwise.
func parseSignals(s string, workflows int) (int, error) {
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0):
		return 0, fmt.Errorf("invalid --signals %q: want a fraction below 1 or a count", s)
	case v < 1:
		return int(math.Round(v * float64(workflows))), nil
	case v != math.Trunc(v):
		return 0, fmt.Errorf("invalid --signals %q: a count of 1 or more must be whole", s)
	case int(v) > workflows:
		return 0, fmt.Errorf("invalid --signals %q: more than --workflows %d", s, workflows)
	}
	return int(v), nil
}

// validate checks c, filling PauseFor's default.
func (c *Config) validate() error {
	var errs []string
	if c.Nodes < 1 {
		errs = append(errs, "--nodes must be at least 1")
	}
	if c.Workflows < 1 {
		errs = append(errs, "--workflows must be at least 1")
	}
	if c.Steps < 1 {
		errs = append(errs, "--steps must be at least 1")
	}
	if c.StepPause < 0 || c.KillEvery < 0 || c.PauseEvery < 0 || c.PauseFor < 0 {
		errs = append(errs, "durations must not be negative")
	}
	if c.Lease < 100*time.Millisecond {
		errs = append(errs, "--lease must be at least 100ms")
	}
	if c.Timeout <= 0 {
		errs = append(errs, "--timeout must be positive")
	}
	if c.Concurrency < 0 {
		errs = append(errs, "--concurrency must not be negative")
	}
	if c.Signals < 0 || c.Signals > c.Workflows {
		errs = append(errs, "--signals must be between 0 and --workflows")
	}
	if c.Limit != 0 && c.Limit != ledger.LimitedMax {
		errs = append(errs, fmt.Sprintf("--limit must be 0 or %d: the limit of ledger_limited_step is fixed when it is declared (ledger.LimitedMax)", ledger.LimitedMax))
	}
	if c.Schedule != 0 && (c.Schedule < time.Second || c.Schedule%time.Second != 0) {
		errs = append(errs, "--schedule must be 0 or whole seconds, 1s at least")
	}
	if c.PauseFor == 0 {
		c.PauseFor = 2 * c.Lease
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
