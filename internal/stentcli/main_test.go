package stentcli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
)

// binDir holds the binaries TestMain builds: stent, stent-node and the
// example user node binary examples/custom_node.
var (
	binDir   string
	stentBin string
	nodeBin  string
	userBin  string
)

func TestMain(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "stentcli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	stentBin = filepath.Join(binDir, "stent")
	nodeBin = filepath.Join(binDir, "stent-node")
	userBin = filepath.Join(binDir, "custom_node")
	for _, b := range [][2]string{{stentBin, "github.com/stent-go/stent/cmd/stent"},
		{nodeBin, "github.com/stent-go/stent/cmd/stent-node"}, {userBin, "github.com/stent-go/stent/examples/custom_node"}} {
		build := exec.Command("go", "build", "-o", b[0], b[1])
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", b[1], err)
			_ = os.RemoveAll(binDir)
			os.Exit(2)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(binDir)
	os.Exit(code)
}

// result is one run of the stent binary.
type result struct {
	stdout, stderr string
	code           int
}

// db is the database flags of a test: --db and, on PostgreSQL, --schema.
type db []string

// stent runs the stent binary with args (after the database flags d, when
// d is not nil), with no STENT_* variables but env.
func stent(t *testing.T, d db, env []string, args ...string) result {
	t.Helper()
	full := append(append([]string{}, args...), d...)
	cmd := exec.Command(stentBin, full...)
	cmd.Env = append(withoutStentEnv(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return r
}

// ok runs stent and requires exit code 0.
func ok(t *testing.T, d db, args ...string) string {
	t.Helper()
	r := stent(t, d, nil, args...)
	require.Equal(t, 0, r.code, "stent %q: %s%s", args, r.stdout, r.stderr)
	return r.stdout
}

// okJSON runs stent with --json, requires exit 0, and decodes the output
// into v (which must work: every --json output parses).
func okJSON(t *testing.T, d db, v any, args ...string) {
	t.Helper()
	out := ok(t, d, append(args, "--json")...)
	require.NoError(t, json.Unmarshal([]byte(out), v), "stent %q --json printed: %s", args, out)
}

// fails runs stent and requires exit code code and stderr containing
// every one of want.
func fails(t *testing.T, d db, code int, want []string, args ...string) {
	t.Helper()
	r := stent(t, d, nil, args...)
	require.Equal(t, code, r.code, "stent %q: %s%s", args, r.stdout, r.stderr)
	for _, w := range want {
		require.Contains(t, r.stderr, w, "stent %q", args)
	}
}

// withoutStentEnv is the environment without STENT_* variables (and with
// no colour), so that the tests' flags alone choose the database.
func withoutStentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STENT_") && !strings.HasPrefix(kv, "COLUMNS=") {
			env = append(env, kv)
		}
	}
	return env
}

// postgresDSN is STENT_TEST_POSTGRES, or skips the test (fails it under CI).
func postgresDSN(t *testing.T) string {
	t.Helper()
	return testutil.PostgresDSN(t)
}

// newSchema returns a fresh PostgreSQL schema name, dropped when the test
// ends.
func newSchema(t *testing.T, dsn string) string {
	t.Helper()
	return testutil.PostgresSchema(t, dsn, "clitest")
}
