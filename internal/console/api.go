package console

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/sdk"
)

// Redacted replaces payloads (inputs, outputs, signal payloads, state,
// error messages and stacks) in what a reader without the admin token
// sees.
const Redacted = "[redacted: the admin token is needed to see payloads]"

// redactedJSON is Redacted as a JSON document.
var redactedJSON = json.RawMessage(strconv.Quote(Redacted))

// routes registers the API and the pages.
func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /api/executions", h.apiList)
	m.HandleFunc("POST /api/executions", h.apiStart)
	m.HandleFunc("GET /api/executions/{id}", h.apiShow)
	m.HandleFunc("GET /api/executions/{id}/tree", h.apiTree)
	m.HandleFunc("GET /api/executions/{id}/timeline", h.apiTimeline)
	m.HandleFunc("POST /api/executions/{id}/cancel", h.apiCancel)
	m.HandleFunc("POST /api/executions/{id}/signal", h.apiSignal)
	m.HandleFunc("GET /api/dead-letters", h.apiDeadLetters)
	m.HandleFunc("GET /api/dead-letters/{id}", h.apiDeadLetter)
	m.HandleFunc("POST /api/dead-letters/{id}/replay", h.apiDeadAction("replay"))
	m.HandleFunc("POST /api/dead-letters/{id}/discard", h.apiDeadAction("discard"))
	m.HandleFunc("POST /api/dead-letters/replay-all", h.apiReplayAll)
	m.HandleFunc("GET /api/functions", h.apiFunctions)
	m.HandleFunc("GET /api/members", h.apiMembers)
	m.HandleFunc("GET /api/schedules", h.apiSchedules)
	m.HandleFunc("GET /api/stats", h.apiStats)
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no API endpoint "+r.Method+" "+r.URL.Path+": docs/console.md lists them")
	})
	h.pageRoutes()
}

// listQuery reads the filters of GET /api/executions (and of the list
// page) into a filter and a search string.
func listQuery(r *http.Request, now time.Time) (sdk.ListFilter, string, error) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "status", "function", "queue", "parent", "since", "until", "q", "cursor", "limit":
		default:
			return sdk.ListFilter{}, "", badf("unknown parameter %q: want status, function, queue, parent, since, until, q, cursor or limit", k)
		}
	}
	f := sdk.ListFilter{Status: sdk.Status(q.Get("status")), Function: q.Get("function"), Queue: q.Get("queue"),
		ParentID: q.Get("parent"), After: q.Get("cursor"), Limit: 50}
	if f.Status != "" && !f.Status.Valid() {
		return f, "", badf("unknown status %q: want pending, running, waiting, completed, failed, canceled or timed_out", f.Status)
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return f, "", badf("limit %q is out of range: want 1 to 1000", s)
		}
		f.Limit = n
	}
	var err error
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if *p.t, err = ops.ParseWhen(q.Get(p.name), now); err != nil {
			return f, "", badf("invalid %s %q: %v", p.name, q.Get(p.name), err)
		}
	}
	return f, strings.TrimSpace(q.Get("q")), nil
}

// list reads the page a request asks for, payloads redacted unless it
// may see them.
func (h *Handler) list(r *http.Request) (ops.List, error) {
	f, search, err := listQuery(r, time.Now())
	if err != nil {
		return ops.List{}, err
	}
	page, err := ops.ListPage(r.Context(), h.ex, f, search)
	if err != nil {
		if strings.Contains(err.Error(), "cursor") || strings.Contains(err.Error(), "is not before") {
			return page, badRequest{err.Error()}
		}
		return page, err
	}
	if !h.canSeePayloads(r) {
		for i := range page.Executions {
			redactExecution(&page.Executions[i])
		}
	}
	return page, nil
}

func (h *Handler) apiList(w http.ResponseWriter, r *http.Request) {
	page, err := h.list(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// show reads execution id for r, payloads redacted unless it may see them.
func (h *Handler) show(r *http.Request, id string) (*ops.Show, error) {
	s, err := ops.ShowExecution(r.Context(), h.ex, id)
	if err != nil {
		return nil, err
	}
	if !h.canSeePayloads(r) {
		redactExecution(&s.Execution)
		for i := range s.Journal {
			redactEntry(&s.Journal[i])
		}
		for i := range s.DeadLetters {
			redactDead(&s.DeadLetters[i])
		}
	}
	return s, nil
}

// showDoc is GET /api/executions/{id}: Show with the trace link.
type showDoc struct {
	*ops.Show
	TraceURL string `json:"trace_url,omitempty"`
}

func (h *Handler) apiShow(w http.ResponseWriter, r *http.Request) {
	s, err := h.show(r, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, showDoc{Show: s, TraceURL: h.traceURL(s.TraceID)})
}

// traceURL is the link of a trace ID, "" without one or without
// Config.TraceURL.
func (h *Handler) traceURL(traceID string) string {
	if traceID == "" || h.cfg.TraceURL == "" {
		return ""
	}
	return strings.ReplaceAll(h.cfg.TraceURL, "{trace_id}", traceID)
}

func (h *Handler) apiTree(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.ex.Execution(r.Context(), id); err != nil {
		h.fail(w, r, ops.ExecutionError(err, id, "a tree"))
		return
	}
	tree, err := ops.ChildTree(r.Context(), h.ex, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"execution_id": id, "children": tree})
}

func (h *Handler) apiTimeline(w http.ResponseWriter, r *http.Request) {
	s, err := ops.ShowExecution(r.Context(), h.ex, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, timelineOf(s, time.Now()))
}

// decodeBody reads a JSON body into v; "" (no body) leaves v as it is.
func decodeBody(r *http.Request, v any) error {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return badf("reading the body: %v", err)
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badf("the body does not decode: %v", err)
	}
	return nil
}

// startRequest is the body of POST /api/executions.
type startRequest struct {
	Function       string          `json:"function"`
	Input          json.RawMessage `json:"input"`
	Queue          string          `json:"queue"`
	IdempotencyKey string          `json:"idempotency_key"`
	Priority       int             `json:"priority"`
}

func (h *Handler) apiStart(w http.ResponseWriter, r *http.Request) {
	var req startRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Function == "" {
		h.fail(w, r, badf("the body needs a function: {\"function\": \"name\", \"input\": ...}"))
		return
	}
	opts := []sdk.CallOption{sdk.WithCallPriority(req.Priority)}
	if req.Queue != "" {
		opts = append(opts, sdk.WithCallQueue(req.Queue))
	}
	if req.IdempotencyKey != "" {
		opts = append(opts, sdk.WithIdempotencyKey(req.IdempotencyKey))
	}
	id, err := h.ex.StartByName(r.Context(), req.Function, req.Input, opts...)
	if err != nil {
		switch {
		case errors.Is(err, persistence.ErrIdempotencyConflict):
			err = &conflict{err.Error()}
		case errors.Is(err, sdk.ErrPayloadTooLarge):
			err = badRequest{err.Error()}
		}
		h.fail(w, r, err)
		return
	}
	info, err := h.ex.Execution(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.notify(r, persistence.TopicQueue, info.Queue)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "execution": ops.ToExecution(info)})
}

// conflict is an ErrConflict with a message of its own.
type conflict struct{ msg string }

func (e *conflict) Error() string        { return e.msg }
func (e *conflict) Is(target error) bool { return target == ops.ErrConflict }

// notify tells the serving nodes of a write, when Config.Notify is set.
func (h *Handler) notify(r *http.Request, topic, payload string) {
	if h.cfg.Notify != nil {
		h.cfg.Notify(r.Context(), topic, payload)
	}
}

func (h *Handler) apiCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := decodeBody(r, &struct{}{}); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.ex.Cancel(r.Context(), id); err != nil {
		h.fail(w, r, ops.ExecutionError(err, id, "cancel"))
		return
	}
	h.notify(r, persistence.TopicExecution, id)
	writeJSON(w, http.StatusOK, ops.Action{ExecutionID: id, Action: "canceled"})
}

// signalRequest is the body of POST /api/executions/{id}/signal.
type signalRequest struct {
	Name    string          `json:"name"`
	Payload json.RawMessage `json:"payload"`
}

func (h *Handler) apiSignal(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req signalRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Name == "" {
		h.fail(w, r, badf("the body needs the signal's name: {\"name\": \"approval\", \"payload\": ...}"))
		return
	}
	payload := req.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	if err := h.ex.SendSignal(r.Context(), id, req.Name, payload); err != nil {
		h.fail(w, r, ops.ExecutionError(err, id, "a signal"))
		return
	}
	h.notify(r, persistence.TopicExecution, id)
	writeJSON(w, http.StatusOK, ops.Action{ExecutionID: id, Action: "signaled", Signal: req.Name})
}

func (h *Handler) apiDeadLetters(w http.ResponseWriter, r *http.Request) {
	limit := 1000
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			h.fail(w, r, badf("limit %q is out of range: want 1 to 10000", s))
			return
		}
		limit = n
	}
	ds, err := ops.DeadLetters(r.Context(), h.ex.Backend(), limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.deadDocs(r, ds))
}

// deadDocs is ds as documents, redacted unless r may see payloads.
func (h *Handler) deadDocs(r *http.Request, ds []*persistence.DeadLetter) []ops.DeadLetter {
	out := ops.DeadLetterList(ds)
	if !h.canSeePayloads(r) {
		for i := range out {
			redactDead(&out[i])
		}
	}
	return out
}

func (h *Handler) apiDeadLetter(w http.ResponseWriter, r *http.Request) {
	ds, err := ops.ResolveDead(r.Context(), h.ex.Backend(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.deadDocs(r, ds))
}

// apiDeadAction is POST /api/dead-letters/{id}/replay or /discard.
func (h *Handler) apiDeadAction(verb string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := decodeBody(r, &struct{}{}); err != nil {
			h.fail(w, r, err)
			return
		}
		b := h.ex.Backend()
		ds, err := ops.ResolveDead(r.Context(), b, r.PathValue("id"))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		done, err := ops.ApplyDead(r.Context(), b, verb, ds, false, nil, h.replayed(r))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, done)
	}
}

// replayed wakes the nodes of a replayed execution's queue.
func (h *Handler) replayed(r *http.Request) func(*persistence.Execution) {
	return func(e *persistence.Execution) { h.notify(r, persistence.TopicQueue, e.Queue) }
}

func (h *Handler) apiReplayAll(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Function string `json:"function"`
	}
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	done, err := ops.ReplayAll(r.Context(), h.ex.Backend(), req.Function, nil, h.replayed(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, done)
}

func (h *Handler) apiMembers(w http.ResponseWriter, r *http.Request) {
	ms, err := ops.Members(r.Context(), h.ex)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ms)
}

func (h *Handler) apiStats(w http.ResponseWriter, r *http.Request) {
	s, err := h.ex.Stats(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ops.ToStats(s))
}

func (h *Handler) apiFunctions(w http.ResponseWriter, r *http.Request) {
	fs, err := functionsOf(r.Context(), h.ex)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, fs)
}

func (h *Handler) apiSchedules(w http.ResponseWriter, r *http.Request) {
	ss, err := schedulesOf(r.Context(), h.ex, h.canSeePayloads(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ss)
}

// redactExecution replaces e's payloads with Redacted.
func redactExecution(e *ops.Execution) {
	e.Input, e.Output = redactedJSON, redactedJSON
	redactError(e.Error)
	for k := range e.State {
		e.State[k] = redactedJSON
	}
}

// redactEntry replaces a journal entry's payloads with Redacted.
func redactEntry(e *ops.Entry) {
	if len(e.Input) > 0 {
		e.Input = redactedJSON
	}
	if len(e.Output) > 0 {
		e.Output = redactedJSON
	}
	redactError(e.Error)
}

// redactDead replaces a dead letter's payloads with Redacted.
func redactDead(d *ops.DeadLetter) {
	d.Input = redactedJSON
	redactError(d.Error)
}

// redactError replaces an error's message and stack with Redacted (its
// kind stays).
func redactError(e *ops.Error) {
	if e == nil {
		return
	}
	e.Message = Redacted
	if e.Stack != "" {
		e.Stack = Redacted
	}
}
