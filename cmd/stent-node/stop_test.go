package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

// freePort returns a loopback port that was free just now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestCleanStopOfEveryNode runs a cluster of three real stent-node
// processes, stops one with SIGTERM, then the other two at once, and
// requires each to exit 0 and to log no warning or error from the moment it
// begins to stop.
func TestCleanStopOfEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "stent-node")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	db := filepath.Join(dir, "stent.db")

	type proc struct {
		name string
		cmd  *exec.Cmd
		log  *lockedBuffer
		done chan error
	}
	var procs []*proc
	seed := ""
	for i := range 3 {
		p := &proc{name: fmt.Sprintf("n%d", i+1), log: new(lockedBuffer), done: make(chan error, 1)}
		gossip := freePort(t)
		args := []string{"--db", db, "--node", p.name, "--gossip", gossip, "--admin", ""}
		if seed != "" {
			args = append(args, "--seeds", seed)
		} else {
			seed = gossip
		}
		p.cmd = exec.Command(bin, args...)
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		require.NoError(t, p.cmd.Start())
		go func() { p.done <- p.cmd.Wait() }()
		t.Cleanup(func() {
			if p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
			}
		})
		procs = append(procs, p)
		// Each node joins the ones before it.
		testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			select {
			case err := <-p.done:
				return fmt.Errorf("%s exited: %v\n%s", p.name, err, p.log)
			default:
			}
			if !strings.Contains(p.log.String(), `"node ready"`) {
				return fmt.Errorf("%s not ready", p.name)
			}
			return nil
		})
	}
	// Every node sees the other two (a node learns of a later one through
	// gossip: a member that leaves tells only those it knows).
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		for _, p := range procs {
			if n := strings.Count(p.log.String(), `"cluster member joined"`); n < 2 {
				return fmt.Errorf("%s saw %d members join", p.name, n)
			}
		}
		return nil
	})

	stop := func(ps ...*proc) {
		for _, p := range ps {
			require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		}
		for _, p := range ps {
			select {
			case err := <-p.done:
				require.NoError(t, err, "%s exits 0 on SIGTERM\n%s", p.name, p.log)
			case <-time.After(30 * time.Second):
				t.Fatalf("%s did not stop\n%s", p.name, p.log)
			}
		}
	}
	stop(procs[1])
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(procs[0].log.String(), `"cluster member left"`) {
			return fmt.Errorf("n1 has not seen n2 leave")
		}
		return nil
	})
	stop(procs[0], procs[2])

	for _, p := range procs {
		stopping := false
		sc := bufio.NewScanner(strings.NewReader(p.log.String()))
		for sc.Scan() {
			var rec struct{ Level, Msg string }
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				continue
			}
			if rec.Msg == "node stopping" {
				stopping = true
			}
			if stopping && (rec.Level == "WARN" || rec.Level == "ERROR") {
				t.Errorf("%s logged while stopping: %s", p.name, sc.Text())
			}
		}
		require.True(t, stopping, "%s logged its stop", p.name)
		require.NotContains(t, p.log.String(), `"cluster member failed"`, p.name)
	}
}

// lockedBuffer is a bytes.Buffer that the process's output goroutine
// writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
