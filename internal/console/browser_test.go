package console_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// browser starts headless Chromium (Debian's /usr/bin/chromium) with a
// fresh profile and returns a context that drives one tab of it. Without
// Chromium the test is skipped, unless CI is set.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed (apt-get install chromium): the console's browser tests need it under CI")
		}
		t.Skip("chromium is not installed: apt-get install -y --no-install-recommends chromium")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		// The closed network here: no background fetches, no QUIC, no
		// component updates, no sync.
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first call starts the browser, which lives as long as ctx: no
	// timeout on it (each action below gets its own).
	require.NoError(t, chromedp.Do(ctx))
	return ctx
}

// do runs steps in the tab, within 30 seconds.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(c, steps...))
}

// eval evaluates the JavaScript expression on the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

// textOf reads the text of the first element matching the CSS selector.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, sel))
}

// waitJS waits until the JavaScript expression cond is true on the page,
// across navigations (a reload in between is not an error).
func waitJS(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("waiting for %s: %s is still not true (last error: %v)", what, cond, last)
}

// screenshot writes the page to docs/console/NAME.png when
// STENT_CONSOLE_SCREENSHOTS is set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("STENT_CONSOLE_SCREENSHOTS") == "" {
		return
	}
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	dir := filepath.Join("..", "..", "docs", "console")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

func TestBrowserSQLite(t *testing.T) {
	t.Parallel()
	testBrowser(t, "sqlite")
}

func TestBrowserPostgres(t *testing.T) {
	t.Parallel()
	testBrowser(t, "postgres")
}

// testBrowser drives the console in Chromium against a serving executor
// on kind, with an admin token: the list follows executions as they
// finish, the detail page draws the tree and the timeline, a write without
// the token is refused, and with it cancel and replay work from the page.
func testBrowser(t *testing.T, kind string) {
	ctx := browser(t)
	r := newRig(t, kind, "s3cret")
	shots := kind == "sqlite" // one set of screenshots, from the SQLite run
	shot := func(name string) {
		if shots {
			screenshot(t, ctx, name)
		}
	}
	_, err := r.ex.CreateSchedule(r.ctx, "hourly-report", "@every 1h", "console_step", 5)
	require.NoError(t, err)
	waiting := r.startWait(t, "ORD-7")
	card := "4000-0000-" + kind
	dead := r.deadLetter(t, card)

	// The list, opened before the flows start, shows them as they finish,
	// without a reload (the marker set on the window survives).
	do(t, ctx, chromedp.Navigate(r.srv.URL+"/"), chromedp.WaitVisible("#rows"))
	eval[bool](t, ctx, `window.__noReload = true`)
	var flows []string
	for i := range 3 {
		h, err := consoleFlow.Start(r.ctx, i+1)
		require.NoError(t, err)
		flows = append(flows, h.ID())
	}
	waitJS(t, ctx, "the flows listed", fmt.Sprintf(`document.querySelectorAll('#rows tr[data-id="%s"], #rows tr[data-id="%s"], #rows tr[data-id="%s"]').length === 3`, flows[0], flows[1], flows[2]))
	waitJS(t, ctx, "the flows completed on the page", fmt.Sprintf(`[%q, %q, %q].every(id => { const tr = document.querySelector('#rows tr[data-id="' + id + '"]'); return tr && tr.dataset.status === 'completed'; })`, flows[0], flows[1], flows[2]))
	require.True(t, eval[bool](t, ctx, `window.__noReload === true`), "the list updated without a reload")
	require.Contains(t, textOf(t, ctx, "#rows"), "console_wait")
	shot("executions")

	// The detail page: the tree of the flow's two steps and its timeline
	// (two calls and the sleep between them, drawn to scale).
	do(t, ctx, chromedp.Navigate(r.srv.URL+"/executions/"+flows[2]), chromedp.WaitVisible("#timeline"))
	require.Equal(t, 4, eval[int](t, ctx, `document.querySelectorAll('#timeline .lane').length`), "the execution, call, sleep, call")
	require.Equal(t, 2, eval[int](t, ctx, `document.querySelectorAll('#tree li').length`), "two console_step children")
	sleepWidth := eval[float64](t, ctx, `parseFloat(document.querySelector('.lane[data-kind="sleep"] .bar').style.width)`)
	require.Greater(t, sleepWidth, 50.0, "the one-second sleep is most of the flow")
	require.Contains(t, textOf(t, ctx, `[data-field="input"]`), "[redacted", "no token yet: payloads hidden")

	// A write without the token: refused on the page, and 401 from the API.
	do(t, ctx, chromedp.Navigate(r.srv.URL+"/executions/"+waiting), chromedp.WaitVisible(`button[data-action="cancel"]`),
		chromedp.Click(`button[data-action="cancel"]`))
	waitJS(t, ctx, "the refusal shown", `!document.getElementById('flash').hidden && document.getElementById('flash').textContent.includes('401')`)
	require.Contains(t, textOf(t, ctx, "#flash"), "needs the admin token")
	a := r.call(t, "POST", "/api/executions/"+waiting+"/cancel", map[string]any{}, "X-Stent-Console", "1", "Content-Type", "application/json")
	require.Equal(t, http.StatusUnauthorized, a.status)
	r.waitStatus(t, waiting, sdk.StatusWaiting)

	// The token, given once, is kept for the tab: payloads show, and the
	// cancel goes through.
	do(t, ctx, chromedp.SendKeys("#token-input", "s3cret"), chromedp.Click("#token-save"))
	waitJS(t, ctx, "the token kept", `sessionStorage.getItem('stent-admin-token') === 's3cret' && document.getElementById('token-clear').hidden === false`)
	waitJS(t, ctx, "the input shown", `document.querySelector('[data-field="input"]').textContent.includes('ORD-7')`)
	shot("execution-waiting")
	do(t, ctx, chromedp.Click(`button[data-action="cancel"]`))
	r.waitStatus(t, waiting, sdk.StatusCanceled)
	waitJS(t, ctx, "the page shows the cancel", `document.querySelector('[data-field="status"]') && document.querySelector('[data-field="status"]').textContent === 'canceled'`)

	// An execution that moves on while its page is open: a signal sent
	// from the page ends its wait, and the page patches its status, facts,
	// actions, output, timeline and journal in place from the API.
	approved := r.startWait(t, "ORD-9")
	do(t, ctx, chromedp.Navigate(r.srv.URL+"/executions/"+approved), chromedp.WaitVisible(`form[data-action="signal"]`))
	eval[bool](t, ctx, `window.__noReload = true`)
	require.Equal(t, "waiting", textOf(t, ctx, `#journal .badge`))
	do(t, ctx, chromedp.SendKeys(`form[data-action="signal"] input[name="name"]`, "approve"),
		chromedp.SendKeys(`form[data-action="signal"] input[name="payload"]`, "true"),
		chromedp.Click(`form[data-action="signal"] button[type="submit"]`))
	r.waitStatus(t, approved, sdk.StatusCompleted)
	waitJS(t, ctx, "the page shows the end in place", `document.querySelector('[data-field="status"]').textContent === 'completed' &&
		document.querySelector('[data-field="output"]').textContent.includes('ORD-9 approved=true')`)
	waitJS(t, ctx, "the journal and timeline patched", `document.querySelector('#journal .badge').textContent === 'done' &&
		document.querySelector('.lane[data-kind="signal"] .bar.s-completed') !== null &&
		!document.getElementById('timeline-span').textContent.includes('so far')`)
	require.True(t, eval[bool](t, ctx, `window.__noReload === true`), "the detail page updated without a reload")
	require.True(t, eval[bool](t, ctx, `document.querySelector('button[data-action="cancel"]') === null && document.querySelector('form[data-action="signal"]') === null`),
		"no cancel or signal once it has ended")
	require.NotEqual(t, "-", textOf(t, ctx, `[data-field="ended"]`))

	if shots {
		do(t, ctx, chromedp.Navigate(r.srv.URL+"/executions/"+flows[2]), chromedp.WaitVisible("#timeline"))
		waitJS(t, ctx, "the output shown", `document.querySelector('[data-field="output"]').textContent.trim() === '14'`)
		shot("execution")
	}

	// Replay of the dead letter from the page: the card is good now.
	do(t, ctx, chromedp.Navigate(r.srv.URL+"/dead-letters"), chromedp.WaitVisible("#dead-letters"))
	require.Contains(t, textOf(t, ctx, "#dead-letters"), dead)
	waitJS(t, ctx, "the error shown with the token", `document.querySelector('#dead-letters td.err').textContent.includes('declined')`)
	shot("dead-letters")
	failing.Delete(card)
	do(t, ctx, chromedp.Click(`#dead-letters button[data-action="replay"]`))
	r.waitStatus(t, dead, sdk.StatusCompleted)
	waitJS(t, ctx, "the queue empty on the page", `document.querySelector('#dead-letters tr.empty') !== null`)

	for _, p := range []struct{ path, name, sel string }{
		{"/functions", "functions", "#functions"}, {"/members", "members", "#members"}, {"/schedules", "schedules", "#schedules"},
	} {
		do(t, ctx, chromedp.Navigate(r.srv.URL+p.path), chromedp.WaitVisible(p.sel))
		shot(p.name)
	}
	require.Contains(t, textOf(t, ctx, "#schedules"), "hourly-report")
}

// TestListPage100k fills a SQLite database with 100,000 executions and
// measures the list page's first contentful paint in Chromium and the
// list API's latency.
func TestListPage100k(t *testing.T) {
	if raceEnabled {
		t.Skip("a timing under -race measures the race detector (writing the rows alone takes over a minute): .ci/run runs this test without -race")
	}
	t.Parallel()
	ctx := browser(t)
	path := filepath.Join(t.TempDir(), "stent.db")
	fill100k(t, path)
	r := newRigAt(t, "sqlite", path, "")
	var st ops.Stats
	r.read(t, "/api/stats").decode(t, &st)
	require.Equal(t, 100_000, st.Total)

	var list ops.List
	lat := make([]time.Duration, 0, 20)
	for range 20 {
		start := time.Now()
		a := r.read(t, "/api/executions?limit=50")
		lat = append(lat, time.Since(start))
		require.Equal(t, http.StatusOK, a.status)
		a.decode(t, &list)
	}
	require.Len(t, list.Executions, 50)
	slices.Sort(lat)
	start := time.Now()
	a := r.read(t, "/api/executions?limit=50&status=failed&function=bulk_fn_3")
	filtered := time.Since(start)
	require.Equal(t, http.StatusOK, a.status)
	start = time.Now()
	a = r.read(t, "/api/executions?limit=50&cursor="+list.NextCursor)
	paged := time.Since(start)
	require.Equal(t, http.StatusOK, a.status)

	do(t, ctx, chromedp.Navigate(r.srv.URL+"/"), chromedp.WaitVisible("#rows"))
	waitJS(t, ctx, "a paint entry", `performance.getEntriesByType('paint').some(e => e.name === 'first-contentful-paint')`)
	fcp := eval[float64](t, ctx, `performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint').startTime`)
	require.Equal(t, 50, eval[int](t, ctx, `document.querySelectorAll('#rows tr[data-id]').length`))
	t.Logf("100,000 executions: list page first contentful paint %.0f ms; GET /api/executions?limit=50 median %s, p95 %s; filtered by status and function %s; next page %s",
		fcp, lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)*95/100].Round(100*time.Microsecond), filtered.Round(100*time.Microsecond), paged.Round(100*time.Microsecond))
	require.Less(t, fcp, 3000.0, "first paint of the list page (target < 500 ms)")
	require.Less(t, lat[len(lat)/2], 3*time.Second)
}

// fill100k creates Stent's schema at path and writes 100,000 finished
// executions of ten functions into it in one transaction.
func fill100k(t *testing.T, path string) {
	t.Helper()
	b, err := sqlite.Open(path)
	require.NoError(t, err)
	require.NoError(t, b.Init(context.Background()))
	require.NoError(t, b.Close())
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close() //nolint:errcheck // a test database
	start := time.Now()
	// One statement: SQLite makes the rows itself (a recursive count), so
	// the fill costs no driver round trip per row. Every 97th failed; ten
	// functions; 1.7 s apart, ending now.
	base := time.Now().Add(-170 * time.Second * 1000).UnixMilli()
	_, err = db.Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
		INSERT INTO stent_execution (id, function, queue, status, input, output, error, root_id, attempts, created_at, updated_at)
		SELECT printf('bulk-%06d', i), 'bulk_fn_' || (i % 10), 'default',
		       CASE WHEN i % 97 = 0 THEN 'failed' ELSE 'completed' END,
		       CAST('{"n":' || i || '}' AS BLOB),
		       CASE WHEN i % 97 = 0 THEN NULL ELSE CAST('{"ok":true}' AS BLOB) END,
		       CASE WHEN i % 97 = 0 THEN '{"message":"card declined","kind":"error"}' END,
		       printf('bulk-%06d', i), 1, ?1 + i * 1700, ?1 + i * 1700 + 250 + (i % 40) * 10
		FROM n`, base)
	require.NoError(t, err)
	t.Logf("wrote 100,000 executions in %s", time.Since(start).Round(time.Millisecond))
}
