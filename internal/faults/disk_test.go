package faults

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence/sqlite"
)

// envDiskDir names, in the helper process, the directory where a small
// tmpfs is mounted in its private mount namespace.
const envDiskDir = "STENT_FAULTS_DISK_DIR"

// TestSQLiteFullDisk runs the workload on a SQLite file in a 4 MiB tmpfs,
// fills the tmpfs, and frees it again. The tmpfs is mounted in a private
// mount namespace (unshare -m) of a child process, this test binary again,
// so nothing outside it sees the mount; where that is not allowed the test
// is skipped, saying so.
func TestSQLiteFullDisk(t *testing.T) {
	if dir := os.Getenv(envDiskDir); dir != "" {
		fullDisk(t, dir)
		return
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare is not installed: the full-disk test needs a private mount namespace for its tmpfs")
	}
	dir := t.TempDir()
	script := `mount -t tmpfs -o size=4m stent-faults "$1" || exit 77; shift; exec "$@"`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", dir,
		os.Args[0], "-test.run=^TestSQLiteFullDisk$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envDiskDir+"="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 77 || err != nil && strings.Contains(string(out), "unshare failed") {
		t.Skipf("this machine does not allow a tmpfs in a private mount namespace (unshare -m, mount): %s", out)
	}
	if err != nil {
		t.Fatalf("the full-disk run failed: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "full disk:") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

// fullDisk is the test inside the namespace: dir is the tmpfs.
func fullDisk(t *testing.T, dir string) {
	path := filepath.Join(dir, "stent.db")
	b, err := sqlite.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	w := newWorkload(t, b)
	w.steps = 10
	require.Zero(t, w.start(20, 500*time.Millisecond))

	// Fill the disk, then try to start more: a start refused is not
	// acknowledged; one accepted must complete like the others.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	require.NoError(t, err)
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			break
		}
	}
	fault := time.Now()
	refused := w.start(5, 500*time.Millisecond)
	time.Sleep(2 * time.Second)
	require.NoError(t, filler.Close())
	require.NoError(t, os.Remove(filepath.Join(dir, "filler")))
	freed := time.Now()

	inFlight, others := w.verdictWindow(fault, freed, 3*time.Minute)
	recovered := time.Since(freed)
	var ok string
	require.NoError(t, b.Close())
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.QueryRowContext(context.Background(), "PRAGMA integrity_check").Scan(&ok))
	require.Equal(t, "ok", ok, "the database is intact")
	t.Logf("full disk: %d workflows acknowledged and completed, %d starts refused while full, %d steps in flight ran again, %d others; all done %s after space was freed; integrity ok",
		len(w.handles), refused, inFlight, others, recovered.Round(time.Millisecond))
}
