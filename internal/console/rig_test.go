package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/console"
	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// The workload of the console's tests: a flow with two child steps and a
// durable sleep, an execution that waits for a signal, and a charge that
// fails for good (a dead letter) while its key is marked failing.
var (
	consoleStep = sdk.Durable("console_step", func(ctx context.Context, n int) (int, error) {
		if err := sdk.SetState(ctx, "doubled", n*2); err != nil {
			return 0, err
		}
		return n * 2, nil
	})
	consoleFlow = sdk.Durable("console_flow", func(ctx context.Context, n int) (int, error) {
		a, err := consoleStep.Call(ctx, n)
		if err != nil {
			return 0, err
		}
		if err := sdk.Sleep(ctx, time.Second); err != nil {
			return 0, err
		}
		b, err := consoleStep.Call(ctx, n+1)
		if err != nil {
			return 0, err
		}
		return a + b, nil
	})
	consoleWait = sdk.Durable("console_wait", func(ctx context.Context, order string) (string, error) {
		ok, err := sdk.WaitForSignal[bool](ctx, "approve")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s approved=%v", order, ok), nil
	})
	consoleCharge = sdk.Durable("console_charge", func(ctx context.Context, card string) (string, error) {
		if _, bad := failing.Load(card); bad {
			return "", sdk.NonRetryable(fmt.Errorf("card %s declined", card))
		}
		return "charged " + card, nil
	})
)

// consoleQuote keeps its results an hour: a second start with the same
// input is a cache hit.
var consoleQuote = sdk.Durable("console_quote", func(ctx context.Context, n int) (int, error) {
	return n + 1, nil
}, sdk.WithCache(time.Hour))

// failing holds the cards console_charge declines.
var failing sync.Map

// rig is a serving executor on a fresh database with the console in front
// of it, served by an httptest server.
type rig struct {
	ex      *sdk.Executor
	ctx     context.Context // dispatches to ex
	backend persistence.Backend
	srv     *httptest.Server
	token   string
	kind    string
}

// newRig starts a rig on kind ("sqlite": a file of its own; "postgres": a
// schema of its own on STENT_TEST_POSTGRES) with the admin token (""
// for none).
func newRig(t *testing.T, kind, token string) *rig {
	t.Helper()
	return newRigAt(t, kind, filepath.Join(t.TempDir(), "stent.db"), token)
}

// newRigAt is newRig with the SQLite file at path.
func newRigAt(t *testing.T, kind, path, token string) *rig {
	t.Helper()
	var b persistence.Backend
	var err error
	switch kind {
	case "sqlite":
		b, err = sqlite.Open(path)
	case "postgres":
		dsn := testutil.PostgresDSN(t)
		b, err = postgres.Open(context.Background(), dsn, postgres.WithSchema(testutil.PostgresSchema(t, dsn, "console")))
	default:
		t.Fatalf("unknown backend %q", kind)
	}
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := sdk.Bootstrap(ctx, b, sdk.Serve(), sdk.WithNodeID("console-test-"+kind),
		sdk.WithLogger(slog.New(slog.DiscardHandler)), sdk.WithPollInterval(50*time.Millisecond),
		sdk.WithLeaseDuration(3*time.Second), sdk.WithPassivateAfter(20*time.Millisecond),
		sdk.WithWorkerTags("gpu", "eu"))
	require.NoError(t, err)
	h, err := console.New(console.Config{Executor: ex, Token: token, TraceURL: "http://traces.example/trace/{trace_id}"})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, ex.Close())
	})
	return &rig{ex: ex, ctx: sdk.WithExecutor(context.Background(), ex), backend: b, srv: srv, token: token, kind: kind}
}

// waitStatus waits until execution id has one of statuses.
func (r *rig) waitStatus(t *testing.T, id string, statuses ...sdk.Status) {
	t.Helper()
	testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		info, err := r.ex.Execution(context.Background(), id)
		if err != nil {
			return err
		}
		for _, s := range statuses {
			if info.Status == s {
				return nil
			}
		}
		return fmt.Errorf("execution %s is %s, want %v", id, info.Status, statuses)
	})
}

// answer is one API answer.
type answer struct {
	status int
	body   []byte
}

// decode decodes the answer's body into v.
func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(a.body, v), string(a.body))
}

// errorText is the error message of an error answer.
func (a answer) errorText(t *testing.T) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	a.decode(t, &e)
	require.NotEmpty(t, e.Error, string(a.body))
	return e.Error
}

// call sends a request to the console; headers are name, value pairs.
func (r *rig) call(t *testing.T, method, path string, body any, headers ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, r.srv.URL+path, rd)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // read below
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, body: raw}
}

// write sends a write as the console's script does: the custom header,
// JSON, and the token when the rig has one.
func (r *rig) write(t *testing.T, path string, body any) answer {
	t.Helper()
	h := []string{"X-Stent-Console", "1", "Content-Type", "application/json"}
	if r.token != "" {
		h = append(h, "Authorization", "Bearer "+r.token)
	}
	return r.call(t, "POST", path, body, h...)
}

// read sends a GET with the token when the rig has one.
func (r *rig) read(t *testing.T, path string) answer {
	t.Helper()
	if r.token != "" {
		return r.call(t, "GET", path, nil, "Authorization", "Bearer "+r.token)
	}
	return r.call(t, "GET", path, nil)
}

// startWait starts a console_wait execution and waits until it waits.
func (r *rig) startWait(t *testing.T, order string) string {
	t.Helper()
	h, err := consoleWait.Start(r.ctx, order)
	require.NoError(t, err)
	r.waitStatus(t, h.ID(), sdk.StatusWaiting)
	return h.ID()
}

// deadLetter runs a console_charge that fails for good and returns its
// execution ID; the card stays failing until the test ends or heal.
func (r *rig) deadLetter(t *testing.T, card string) string {
	t.Helper()
	failing.Store(card, true)
	t.Cleanup(func() { failing.Delete(card) })
	h, err := consoleCharge.Start(r.ctx, card)
	require.NoError(t, err)
	_, err = h.Result(r.ctx)
	var ee *sdk.ExecutionError
	require.True(t, errors.As(err, &ee), "want the charge to fail: %v", err)
	return h.ID()
}
