package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stent-go/stent/internal/ledger"
)

// node is one node process slot: a name and ports kept across restarts,
// and the process currently running under them.
type node struct {
	name                  string
	admin, gossip, remote string // 127.0.0.1:port
	logPath               string

	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{} // closed once the current process has been waited for
	waitErr error         // the current process's exit, once exited is closed
	killed  bool          // we killed or stopped the current process on purpose
	paused  bool          // stopped by SIGSTOP
	down    bool          // killed and not yet restarted
}

// pid is the current process's ID.
func (n *node) pid() int { return n.cmd.Process.Pid }

// freeAddrs returns n distinct 127.0.0.1 addresses with ports that were
// free just now. It holds each port until it has picked them all: a port
// closed at once may be the next one the kernel hands out (a node's admin
// and gossip ports were once the same).
func freeAddrs(n int) (addrs []string, err error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			err = errors.Join(err, ln.Close())
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// nodeEnv is this process's environment without STENT_* variables, which
// would change the nodes' defaults.
func nodeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STENT_") {
			env = append(env, kv)
		}
	}
	return env
}

// start starts a process for n with command (the node command and its
// flags), appending its stderr and stdout to n's log (and copying them to
// verbose when it is not nil).
func (n *node) start(command []string, verbose io.Writer) error {
	f, err := os.OpenFile(n.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("opening the log of %s: %w", n.name, err)
	}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = nodeEnv()
	cmd.SysProcAttr = sysProcAttr()
	var out io.Writer = f
	if verbose != nil {
		out = io.MultiWriter(f, verbose)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return errors.Join(fmt.Errorf("starting %s: %w", n.name, err), f.Close())
	}
	n.cmd, n.logFile = cmd, f
	n.exited = make(chan struct{})
	n.killed, n.paused, n.down = false, false, false
	exited := n.exited
	go func() {
		err := cmd.Wait()
		n.waitErr = errors.Join(err, f.Close())
		close(exited)
	}()
	return nil
}

// hasExited reports whether the current process has ended.
func (n *node) hasExited() bool {
	select {
	case <-n.exited:
		return true
	default:
		return false
	}
}

// signal sends sig to the current process.
func (n *node) signal(sig syscall.Signal) error {
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("sending %s to %s (pid %d): %w", sig, n.name, n.pid(), err)
	}
	return nil
}

// kill SIGKILLs the current process and waits for it.
func (n *node) kill() error {
	n.killed = true
	if err := n.signal(syscall.SIGKILL); err != nil && !n.hasExited() {
		return err
	}
	<-n.exited
	n.paused = false
	return nil
}

// stop SIGTERMs the current process (continuing it first if it is
// stopped) and waits up to grace for it to exit, then kills it. It returns
// the process's exit error (nil for exit status 0).
func (n *node) stop(grace time.Duration) error {
	if n.hasExited() {
		return n.waitErr
	}
	n.killed = true
	err := n.signal(syscall.SIGTERM)
	if n.paused {
		err = errors.Join(err, n.signal(syscall.SIGCONT))
		n.paused = false
	}
	if err != nil {
		return err
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-n.exited:
		return n.waitErr
	case <-t.C:
		return errors.Join(fmt.Errorf("%s did not exit within %s of SIGTERM", n.name, grace), n.kill())
	}
}

// get returns the status code of GET path on n's admin server.
func (n *node) get(ctx context.Context, path string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.admin+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, resp.Body.Close()
}

// waitReady polls n's /readyz until it answers 200, the process exits or
// timeout passes.
func (n *node) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		code, err := n.get(ctx, "/readyz")
		if err == nil && code == http.StatusOK {
			return nil
		}
		if n.hasExited() {
			return fmt.Errorf("%s exited before it was ready (%v); its log %s ends with:\n%s", n.name, n.waitErr, n.logPath, tail(n.logPath, 5))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s (last: %d, %v); log in %s", n.name, timeout, code, err, n.logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of the file at path (or a note that it
// cannot be read).
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// fenceLogs are the node log messages of an activation that lost its lease
// to a takeover (its execution_id attribute names it).
var fenceLogs = []string{
	staleWriteLog,
	"lease lost to another node; stopping the activation",
	"lease taken again with a newer epoch; stopping the old activation",
}

// readFences adds to fenced the fence events in the node log at path: the
// node, the workflow (a step's execution ID is its workflow's, a dot and a
// position), and the time.
func readFences(path string, fenced map[ledger.Fence][]time.Time) error {
	return eachLogLine(path, func(l logLine) {
		if !l.json || l.ExecutionID == "" || !slices.Contains(fenceLogs, l.Msg) {
			return
		}
		wf, _, _ := strings.Cut(l.ExecutionID, ".")
		k := ledger.Fence{Node: l.Node, Workflow: wf}
		fenced[k] = append(fenced[k], l.Time)
	})
}

// countLines returns how many lines of the file at path contain s.
func countLines(path, s string) (int, error) {
	n := 0
	err := eachLogLine(path, func(l logLine) {
		if strings.Contains(l.raw, s) {
			n++
		}
	})
	return n, err
}

// logLine is a line of a node log: its text, and the fields the checks
// read when it is a JSON record (json).
type logLine struct {
	Time        time.Time `json:"time"`
	Msg         string    `json:"msg"`
	Node        string    `json:"node"`
	Component   string    `json:"component"`
	ExecutionID string    `json:"execution_id"`
	Member      string    `json:"member"`
	raw         string
	json        bool
}

// eachLogLine calls fn with every line of the log at path.
func eachLogLine(path string, fn func(logLine)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var l logLine
		l.json = json.Unmarshal(sc.Bytes(), &l) == nil
		l.raw = sc.Text()
		fn(l)
	}
	return sc.Err()
}

// nodeArgs are the flags of node n for a run with cfg on database db
// (schema on PostgreSQL), with peers the other nodes.
func nodeArgs(cfg Config, db, schema string, n *node, peers []*node) []string {
	args := []string{
		"--db", db, "--node", n.name, "--admin", n.admin, "--log-level", "info",
		"--lease", cfg.Lease.String(), "--concurrency", strconv.Itoa(cfg.Concurrency),
	}
	if schema != "" {
		args = append(args, "--schema", schema)
	}
	if !cfg.NoCluster {
		var seeds []string
		for _, p := range peers {
			if p != n {
				seeds = append(seeds, p.gossip)
			}
		}
		args = append(args, "--gossip", n.gossip, "--remote", n.remote)
		if len(seeds) > 0 {
			args = append(args, "--seeds", strings.Join(seeds, ","))
		}
	}
	return args
}
