package stentcli

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// onTTY runs the stent binary with args on a pseudo-terminal (util-linux
// script), with env added, and returns what it printed; it skips the test
// where script is missing.
func onTTY(t *testing.T, env []string, args ...string) string {
	t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script (util-linux) is not installed: no pseudo-terminal to test on")
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	cmd := exec.Command(script, "-qec", stentBin+" "+strings.Join(quoted, " "), "/dev/null")
	cmd.Env = append(withoutStentEnv(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// TestTerminalOutput checks, on a pseudo-terminal, that watch redraws in
// place and that colour is used, except with NO_COLOR.
func TestTerminalOutput(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stent.db")
	ok(t, db{"--db", path}, "migrate")
	ok(t, db{"--db", path}, "start", "nowhere", "1")
	out := onTTY(t, nil, "watch", "--db", path, "--count", "2", "--every", "100ms")
	require.Equal(t, 2, strings.Count(out, ansiHomeClear), "each refresh redraws the screen")
	require.Contains(t, out, ansiYellow+"pending"+ansiReset, "colour on a terminal")
	out = onTTY(t, []string{"NO_COLOR=1"}, "list", "--db", path)
	require.Contains(t, out, "pending")
	require.NotContains(t, out, "\x1b[", "NO_COLOR: no colour")
	out = onTTY(t, []string{"COLUMNS=60"}, "list", "--db", path)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		require.LessOrEqual(t, len([]rune(stripANSI(strings.TrimRight(l, "\r")))), 60, "%q fits 60 columns", l)
	}
}

// stripANSI removes colour sequences.
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
