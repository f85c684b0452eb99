package faults

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pgBin is where Debian's PostgreSQL 15 keeps initdb and pg_ctl.
const pgBin = "/usr/lib/postgresql/15/bin"

// pgServer is a throwaway PostgreSQL server: its own data directory, port
// and socket directory, run as the postgres user (initdb refuses root).
type pgServer struct {
	t    *testing.T
	dir  string
	port int
	DSN  string
}

// startPG initialises and starts a server of the test's own, stopped and
// removed when the test ends. It skips the test where that cannot be done
// (no PostgreSQL 15 binaries, no postgres user, not root), and fails it
// under CI.
func startPG(t *testing.T) *pgServer {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if _, err := os.Stat(filepath.Join(pgBin, "initdb")); err != nil {
		skip("no PostgreSQL 15 at %s (%v): the PostgreSQL fault tests need their own server", pgBin, err)
	}
	pg, err := user.Lookup("postgres")
	if err != nil || os.Geteuid() != 0 {
		skip("the PostgreSQL fault tests run their own server as the postgres user, which needs root and that user (%v)", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	dir, err := os.MkdirTemp("", "stent-faults-pg-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	s := &pgServer{t: t, dir: dir, port: freePort(t)}
	s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	t.Cleanup(func() {
		_ = s.ctl("stop", "-m", "immediate")
		_ = os.RemoveAll(dir)
	})
	if out, err := s.as(filepath.Join(pgBin, "initdb"), "-D", s.data(), "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	if err := s.ctl("start"); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *pgServer) data() string { return filepath.Join(s.dir, "data") }

func (s *pgServer) as(name string, args ...string) *exec.Cmd {
	return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
}

// ctl runs pg_ctl: start and restart wait until the server accepts
// connections.
func (s *pgServer) ctl(action string, args ...string) error {
	all := []string{action, "-D", s.data(), "-w", "-t", "60", "-l", filepath.Join(s.dir, "log")}
	if action == "start" || action == "restart" {
		all = append(all, "-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", s.port, s.dir))
	}
	out, err := s.as(filepath.Join(pgBin, "pg_ctl"), append(all, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v\n%s", action, err, out)
	}
	return nil
}

// Stop stops the server at once (connections dropped, as in a crash of its
// host) and Start brings it back.
func (s *pgServer) Stop()  { s.must(s.ctl("stop", "-m", "immediate")) }
func (s *pgServer) Start() { s.must(s.ctl("start")) }

// Restart restarts the server (fast shutdown: sessions are ended).
func (s *pgServer) Restart() { s.must(s.ctl("restart", "-m", "fast")) }

// Terminate ends every client connection, as pg_terminate_backend does
// when an operator or a proxy cuts them, and returns how many it ended.
func (s *pgServer) Terminate() int {
	out, err := s.as("psql", "-h", s.dir, "-p", strconv.Itoa(s.port), "-U", "postgres", "-Atc",
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()").Output()
	s.must(err)
	// Warnings (a backend that exited meanwhile) go to stderr.
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	s.must(err)
	return n
}

func (s *pgServer) must(err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
