package sqlite

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// makeReadOnly makes path unwritable for this process: mode 0444, or for
// root (whom modes do not stop) the immutable attribute. It skips the test
// where neither is possible.
func makeReadOnly(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		require.NoError(t, os.Chmod(path, 0o444))
		return
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("running as root and chattr +i is not available here (%v: %s): cannot make a read-only file", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", path).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v: %s", path, err, out)
		}
	})
}

// TestReadOnlyFileFailsAtOpenOrInit: a database file this process cannot
// write fails at Open or Init, saying so, not at the first write.
func TestReadOnlyFileFailsAtOpenOrInit(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stent.db")
	b, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, b.Init(t.Context()))
	require.NoError(t, b.Close())
	makeReadOnly(t, path)

	b, err = Open(path)
	if err == nil {
		err = b.Init(t.Context())
		require.NoError(t, b.Close())
	}
	require.Error(t, err, "a read-only database must fail at Open or Init")
	require.Contains(t, err.Error(), "read-only")
	require.Contains(t, err.Error(), path)
}
