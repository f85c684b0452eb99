// Package console is Stent's web console: an http.Handler that serves a
// JSON API under /api/ and server-rendered pages (executions, an
// execution's tree and timeline, dead letters, functions, members,
// schedules) that read it. stent-node serves it on its --admin address,
// `stent console` on its own. docs/console.md describes the pages and the
// API.
//
// Its queries are those of the stent CLI (internal/ops), run on an
// sdk.Executor: the node's serving one, or a non-serving one over the
// database for `stent console`.
//
// Its exported identifiers are not a stable API.
package console

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/sdk"
)

// Config configures a console Handler. Executor is required.
type Config struct {
	// Executor reads and writes the executions: the node's own, or a
	// non-serving one (sdk.New without Serve) for a console without a node.
	Executor *sdk.Executor
	// Token, when not "", is the admin token: a write without it is
	// refused (401), and a read without it sees metadata only (payloads
	// redacted). Without a token every request may write, which is only
	// safe on a loopback address.
	Token string
	// TraceURL, when not "", turns trace IDs into links: "{trace_id}" in
	// it is replaced by the execution's trace ID, e.g.
	// "http://jaeger:16686/trace/{trace_id}".
	TraceURL string
	// Logger receives the failures of requests (database errors); nil
	// discards them.
	Logger *slog.Logger
	// Notify, when set, is called after a write so that serving nodes
	// hear of it at once (the CLI's notifier); topic and payload are those
	// of persistence.Notification. A node's own executor needs none.
	Notify func(ctx context.Context, topic, payload string)
}

// Handler serves the console. It is safe for concurrent use.
type Handler struct {
	cfg   Config
	ex    *sdk.Executor
	mux   *http.ServeMux
	pages *pages
}

var _ http.Handler = (*Handler)(nil)

// New returns the console of cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Executor == nil {
		return nil, errors.New("console: Config.Executor is required")
	}
	if cfg.TraceURL != "" && !strings.Contains(cfg.TraceURL, "{trace_id}") {
		return nil, fmt.Errorf("console: the trace URL %q has no {trace_id} to replace", cfg.TraceURL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := loadPages()
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, ex: cfg.Executor, mux: http.NewServeMux(), pages: p}
	h.routes()
	return h, nil
}

// ServeHTTP serves r: a write (POST) must pass the checks of allowWrite.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
	if r.Method == http.MethodPost {
		if status, msg := h.allowWrite(r); status != 0 {
			writeError(w, status, msg)
			return
		}
	} else if h.cfg.Token != "" && r.Header.Get("Authorization") != "" && !h.authorized(r) {
		writeError(w, http.StatusUnauthorized, "the admin token is wrong: send the node's --admin-token as Authorization: Bearer <token>")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// HeaderCSRF is the header every write must carry: a cross-site form
// cannot set it, and a cross-site fetch that sets it needs a CORS
// preflight, which the console never grants.
const HeaderCSRF = "X-Stent-Console"

// allowWrite checks a write: the admin token when one is configured, and
// always the custom header, a JSON body and an Origin (when present) that
// is this host. It returns 0 when the write may go on, else the status and
// the message of the refusal.
func (h *Handler) allowWrite(r *http.Request) (int, string) {
	if h.cfg.Token != "" && !h.authorized(r) {
		if r.Header.Get("Authorization") == "" {
			return http.StatusUnauthorized, "this action needs the admin token: send it as Authorization: Bearer <token> (the console asks for it; stent takes --token or STENT_ADMIN_TOKEN)"
		}
		return http.StatusUnauthorized, "the admin token is wrong: send the node's --admin-token as Authorization: Bearer <token>"
	}
	if r.Header.Get(HeaderCSRF) != "1" {
		return http.StatusForbidden, "a write needs the header " + HeaderCSRF + ": 1 (it keeps other sites' forms from writing)"
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return http.StatusUnsupportedMediaType, fmt.Sprintf("a write needs Content-Type: application/json, not %q", ct)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return http.StatusForbidden, fmt.Sprintf("origin %q is not this console's (%s): cross-site writes are refused", origin, r.Host)
		}
	}
	return 0, ""
}

// authorized reports whether r carries the admin token.
func (h *Handler) authorized(r *http.Request) bool {
	if h.cfg.Token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.Token)) == 1
}

// canSeePayloads reports whether r may see payloads: no token configured,
// or r carries it.
func (h *Handler) canSeePayloads(r *http.Request) bool { return h.authorized(r) }

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // a failed write to the client is the client's loss
}

// writeError writes an error answer.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

// fail answers err: 404 and 409 for the queries' own errors, 400 for a
// bad request, 500 (logged) otherwise.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, bad.msg)
	case errors.Is(err, ops.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ops.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, r.Context().Err()) && r.Context().Err() != nil:
		writeError(w, http.StatusServiceUnavailable, "the request was canceled: "+err.Error())
	default:
		h.cfg.Logger.ErrorContext(r.Context(), "console request failed", slog.String("path", r.URL.Path), slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// badRequest is a request whose parameters or body are wrong: 400.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

// badf is a badRequest.
func badf(format string, args ...any) error { return badRequest{fmt.Sprintf(format, args...)} }

// Loopback reports whether the host of addr (host:port) is a loopback
// address or localhost; an empty host (every interface) is not. A console
// on any other address needs an admin token.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
