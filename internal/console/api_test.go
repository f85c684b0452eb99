package console_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/console"
	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/sdk"
)

func TestTokenGuardsWritesAndPayloads(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite", "s3cret")
	id := r.startWait(t, "ORD-1")

	// A write without the token, or with a wrong one: 401, nothing done.
	a := r.call(t, "POST", "/api/executions/"+id+"/cancel", map[string]any{}, "X-Stent-Console", "1", "Content-Type", "application/json")
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Contains(t, a.errorText(t), "needs the admin token")
	a = r.call(t, "POST", "/api/executions/"+id+"/cancel", map[string]any{}, "X-Stent-Console", "1",
		"Content-Type", "application/json", "Authorization", "Bearer wrong")
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Contains(t, a.errorText(t), "token is wrong")
	r.waitStatus(t, id, sdk.StatusWaiting)

	// A read without the token sees metadata only; with it, the payloads.
	var s ops.Show
	r.call(t, "GET", "/api/executions/"+id, nil).decode(t, &s)
	require.Equal(t, sdk.StatusWaiting, s.Status)
	require.JSONEq(t, `"`+console.Redacted+`"`, string(s.Input))
	a = r.call(t, "GET", "/api/executions/"+id, nil, "Authorization", "Bearer wrong")
	require.Equal(t, http.StatusUnauthorized, a.status)
	r.read(t, "/api/executions/"+id).decode(t, &s)
	require.JSONEq(t, `"ORD-1"`, string(s.Input))

	// With the token, a write still needs the header, JSON and its own origin.
	auth := []string{"Authorization", "Bearer s3cret"}
	a = r.call(t, "POST", "/api/executions/"+id+"/cancel", map[string]any{}, append(auth, "Content-Type", "application/json")...)
	require.Equal(t, http.StatusForbidden, a.status)
	require.Contains(t, a.errorText(t), console.HeaderCSRF)
	a = r.call(t, "POST", "/api/executions/"+id+"/cancel", map[string]any{}, append(auth, "X-Stent-Console", "1", "Content-Type", "text/plain")...)
	require.Equal(t, http.StatusUnsupportedMediaType, a.status)
	a = r.call(t, "POST", "/api/executions/"+id+"/cancel", map[string]any{}, append(auth, "X-Stent-Console", "1",
		"Content-Type", "application/json", "Origin", "http://evil.example")...)
	require.Equal(t, http.StatusForbidden, a.status)
	require.Contains(t, a.errorText(t), "evil.example")

	a = r.write(t, "/api/executions/"+id+"/cancel", map[string]any{})
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	r.waitStatus(t, id, sdk.StatusCanceled)
}

func TestNoTokenStillNeedsTheHeader(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite", "")
	id := r.startWait(t, "ORD-2")

	// A cross-site form posts without the header and as a form: refused.
	a := r.call(t, "POST", "/api/executions/"+id+"/signal", nil, "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, http.StatusForbidden, a.status)

	var s ops.Show
	r.read(t, "/api/executions/"+id).decode(t, &s)
	require.JSONEq(t, `"ORD-2"`, string(s.Input), "no token: payloads shown")

	a = r.write(t, "/api/executions/"+id+"/signal", map[string]any{"name": "approve", "payload": true})
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	r.waitStatus(t, id, sdk.StatusCompleted)
	r.read(t, "/api/executions/"+id).decode(t, &s)
	require.JSONEq(t, `"ORD-2 approved=true"`, string(s.Output))
}

func TestBadRequestsNameTheProblem(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite", "")
	done := r.startWait(t, "ORD-3")
	require.Equal(t, http.StatusOK, r.write(t, "/api/executions/"+done+"/cancel", nil).status)
	r.waitStatus(t, done, sdk.StatusCanceled)

	for _, c := range []struct {
		method, path string
		body         any
		status       int
		want         string
	}{
		{"GET", "/api/executions/nope", nil, 404, `no such execution "nope"`},
		{"GET", "/api/executions/nope/timeline", nil, 404, `no such execution "nope"`},
		{"GET", "/api/executions?status=done", nil, 400, `unknown status "done"`},
		{"GET", "/api/executions?colour=red", nil, 400, `unknown parameter "colour"`},
		{"GET", "/api/executions?limit=0", nil, 400, `limit "0" is out of range`},
		{"GET", "/api/executions?since=yesterday", nil, 400, `invalid since "yesterday"`},
		{"GET", "/api/executions?cursor=zzz", nil, 400, `cursor "zzz"`},
		{"GET", "/api/nothing", nil, 404, "no API endpoint GET /api/nothing"},
		{"POST", "/api/executions/nope/cancel", nil, 404, `no such execution "nope"`},
		{"POST", "/api/executions/" + done + "/cancel", nil, 409, "has already ended"},
		{"POST", "/api/executions/" + done + "/signal", map[string]any{"payload": 1}, 400, "needs the signal's name"},
		{"POST", "/api/executions/" + done + "/signal", map[string]any{"nam": "x"}, 400, `unknown field "nam"`},
		{"POST", "/api/executions", map[string]any{"input": 1}, 400, "needs a function"},
		{"POST", "/api/dead-letters/nope/replay", nil, 404, `no such dead letter or execution "nope"`},
		{"POST", "/api/dead-letters/" + done + "/replay", nil, 409, "is not a dead letter"},
		{"GET", "/api/dead-letters?limit=x", nil, 400, `limit "x" is out of range`},
	} {
		var a answer
		if c.method == "GET" {
			a = r.read(t, c.path)
		} else {
			a = r.write(t, c.path, c.body)
		}
		require.Equal(t, c.status, a.status, "%s %s: %s", c.method, c.path, a.body)
		require.Contains(t, a.errorText(t), c.want, "%s %s", c.method, c.path)
	}
	a := r.call(t, "POST", "/api/executions/"+done+"/signal", nil, "X-Stent-Console", "1", "Content-Type", "application/json")
	require.Equal(t, http.StatusBadRequest, a.status) // no body: no name
}

func TestAPIReadsAndActions(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite", "")
	h, err := consoleFlow.Start(r.ctx, 3)
	require.NoError(t, err)
	out, err := h.Result(r.ctx)
	require.NoError(t, err)
	require.Equal(t, 14, out)
	dead := r.deadLetter(t, "4242")

	var list ops.List
	r.read(t, "/api/executions?function=console_flow").decode(t, &list)
	require.Len(t, list.Executions, 1)
	require.Equal(t, h.ID(), list.Executions[0].ID)
	r.read(t, "/api/executions?q="+h.ID()).decode(t, &list)
	require.Len(t, list.Executions, 1)
	r.read(t, "/api/executions?status=failed").decode(t, &list)
	require.Len(t, list.Executions, 1)
	require.Equal(t, dead, list.Executions[0].ID)

	var tl console.Timeline
	r.read(t, "/api/executions/"+h.ID()+"/timeline").decode(t, &tl)
	kinds := []string{}
	for _, it := range tl.Items {
		kinds = append(kinds, it.Kind)
		require.GreaterOrEqual(t, it.Left, 0.0)
		require.LessOrEqual(t, it.Left+it.Width, 100.01)
	}
	require.Equal(t, []string{"call", "sleep", "call"}, kinds)

	for range 3 {
		q, err := consoleQuote.Start(r.ctx, 7)
		require.NoError(t, err)
		_, err = q.Result(r.ctx)
		require.NoError(t, err)
	}

	var fns []console.Function
	r.read(t, "/api/functions").decode(t, &fns)
	byName := map[string]console.Function{}
	for _, f := range fns {
		byName[f.Function] = f
	}
	require.Equal(t, 1, byName["console_flow"].Latency.Samples)
	require.True(t, byName["console_flow"].Registered, "registered in this process (sdk.RegisteredFunctions)")
	require.Equal(t, sdk.DefaultQueue, byName["console_flow"].Queue)
	require.GreaterOrEqual(t, byName["console_flow"].Latency.P50MS, int64(1000), "the flow sleeps a second")
	require.Equal(t, 2, byName["console_quote"].CacheHits, "the second and third start took the first's result")
	require.Equal(t, "1h0m0s", byName["console_quote"].CacheTTL)
	require.Zero(t, byName["console_flow"].CacheHits)

	var ds []ops.DeadLetter
	r.read(t, "/api/dead-letters").decode(t, &ds)
	require.Len(t, ds, 1)
	require.Equal(t, dead, ds[0].ExecutionID)
	failing.Delete("4242")
	var acts []ops.DeadAction
	a := r.write(t, "/api/dead-letters/"+ds[0].ID+"/replay", nil)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	a.decode(t, &acts)
	require.Equal(t, "replayed", acts[0].Action)
	r.waitStatus(t, dead, sdk.StatusCompleted)

	var started struct {
		ID string `json:"id"`
	}
	a = r.write(t, "/api/executions", map[string]any{"function": "console_step", "input": 20})
	require.Equal(t, http.StatusCreated, a.status, string(a.body))
	a.decode(t, &started)
	r.waitStatus(t, started.ID, sdk.StatusCompleted)
	a = r.write(t, "/api/executions", map[string]any{"function": "console_step", "input": 1, "idempotency_key": "k-1"})
	require.Equal(t, http.StatusCreated, a.status, string(a.body))
	a = r.write(t, "/api/executions", map[string]any{"function": "console_step", "input": 2, "idempotency_key": "k-1"})
	require.Equal(t, http.StatusConflict, a.status, string(a.body))

	var ms []ops.Member
	r.read(t, "/api/members").decode(t, &ms)
	require.Len(t, ms, 1)
	require.Equal(t, []string{"eu", "gpu"}, ms[0].Tags, "the node's worker tags, sorted")
	require.Contains(t, string(r.read(t, "/members").body), "eu, gpu")
	require.Equal(t, http.StatusOK, r.read(t, "/api/schedules").status)
	require.Equal(t, http.StatusOK, r.read(t, "/api/stats").status)
	for _, p := range []string{"/", "/executions/" + h.ID(), "/dead-letters", "/functions", "/members", "/schedules", "/assets/console.js"} {
		require.Equal(t, http.StatusOK, r.read(t, p).status, p)
	}
	require.Equal(t, http.StatusNotFound, r.read(t, "/executions/nope").status)
}
