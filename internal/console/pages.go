package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/stent-go/stent/internal/ops"
)

// assetFS holds the templates, the stylesheet and the script: the console
// needs no build step and no file beside the binary.
//
//go:embed assets
var assetFS embed.FS

// pageNames are the templates of the pages, each rendered inside
// layout.html.
var pageNames = []string{"executions", "execution", "dead-letters", "functions", "members", "schedules", "error"}

// pages are the parsed templates, by page.
type pages struct {
	tmpl map[string]*template.Template
}

// loadPages parses the embedded templates.
func loadPages() (*pages, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(assetFS, "assets/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console: parsing the layout: %w", err)
	}
	p := &pages{tmpl: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.Must(layout.Clone()).ParseFS(assetFS, "assets/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parsing page %s: %w", name, err)
		}
		p.tmpl[name] = t
	}
	return p, nil
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return ops.RoundDur(time.Since(t)).String() + " ago"
	},
	"agoPtr": func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return ops.RoundDur(time.Since(*t)).String() + " ago"
	},
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
	},
	"stampPtr": func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
	},
	"took": func(e ops.Execution) string { return ops.RoundDur(e.RunTime(time.Now())).String() },
	"ms":   func(ms int64) string { return ops.RoundDur(time.Duration(ms) * time.Millisecond).String() },
	"span": func(a, b time.Time) string { return ops.RoundDur(b.Sub(a)).String() },
	"pretty": func(raw json.RawMessage) string {
		if len(raw) == 0 {
			return "null"
		}
		var b bytes.Buffer
		if json.Indent(&b, raw, "", "  ") != nil {
			return string(raw)
		}
		return b.String()
	},
	"firstLine": func(e *ops.Error) string {
		if e == nil {
			return ""
		}
		line, _, _ := strings.Cut(e.Message, "\n")
		return line
	},
	"join":     strings.Join,
	"statuses": func() []string { return statusNames },
	"deref": func(p *time.Time) time.Time {
		if p == nil {
			return time.Time{}
		}
		return *p
	},
	"count":      func(m map[string]int, k string) int { return m[k] },
	"entryState": func(e ops.Entry) string { return entryState(e, time.Now()) },
}

// statusNames are the statuses, in lifecycle order.
var statusNames = []string{"pending", "running", "waiting", "completed", "failed", "canceled", "timed_out"}

// pageData is what every page's template gets.
type pageData struct {
	Page  string
	Title string
	// TokenRequired makes the page ask for the admin token.
	TokenRequired bool
	Data          any
}

// pageRoutes registers the pages and the assets.
func (h *Handler) pageRoutes() {
	m := h.mux
	m.HandleFunc("GET /{$}", h.pageExecutions)
	m.HandleFunc("GET /executions/{id}", h.pageExecution)
	m.HandleFunc("GET /dead-letters", h.pageDeadLetters)
	m.HandleFunc("GET /functions", h.pageFunctions)
	m.HandleFunc("GET /members", h.pageMembers)
	m.HandleFunc("GET /schedules", h.pageSchedules)
	static, err := fs.Sub(assetFS, "assets/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/assets/", http.FileServerFS(static))
	m.Handle("GET /assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.render(w, r, http.StatusNotFound, "error", "Not found", "there is no page "+r.URL.Path)
	})
}

// render writes page name with data.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	var b bytes.Buffer
	err := h.pages.tmpl[name].ExecuteTemplate(&b, "layout.html", pageData{Page: name, Title: title,
		TokenRequired: h.cfg.Token != "", Data: data})
	if err != nil {
		h.cfg.Logger.ErrorContext(r.Context(), "console page failed", "page", name, "error", err)
		http.Error(w, "rendering "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	w.WriteHeader(status)
	w.Write(b.Bytes()) //nolint:errcheck // a failed write to the client is the client's loss
}

// pageFail renders the error page for err, with the status fail gives.
func (h *Handler) pageFail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		status = http.StatusBadRequest
	case errors.Is(err, ops.ErrNotFound):
		status = http.StatusNotFound
	default:
		h.cfg.Logger.ErrorContext(r.Context(), "console page failed", "path", r.URL.Path, "error", err)
	}
	h.render(w, r, status, "error", http.StatusText(status), err.Error())
}

// listPage is the executions page's data.
type listPage struct {
	List    ops.List
	Filter  map[string]string
	Query   string
	Stats   *ops.Stats
	Funcs   []string
	Queues  []string
	NextURL string
}

func (h *Handler) pageExecutions(w http.ResponseWriter, r *http.Request) {
	page, err := h.list(r)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	q := r.URL.Query()
	d := listPage{List: page, Filter: map[string]string{}, Query: q.Get("q")}
	for _, k := range []string{"status", "function", "queue", "since", "until", "parent"} {
		d.Filter[k] = q.Get(k)
	}
	if st, err := h.ex.Stats(r.Context()); err == nil {
		d.Stats = ops.ToStats(st)
		for _, f := range d.Stats.Functions {
			d.Funcs = append(d.Funcs, f.Function)
		}
		for _, qu := range d.Stats.Queues {
			d.Queues = append(d.Queues, qu.Queue)
		}
	}
	if page.NextCursor != "" {
		next := r.URL.Query()
		next.Set("cursor", page.NextCursor)
		d.NextURL = "/?" + next.Encode()
	}
	h.render(w, r, http.StatusOK, "executions", "Executions", d)
}

// detailPage is the execution page's data.
type detailPage struct {
	*ops.Show
	TraceURL string
	Timeline Timeline
	Running  bool
}

func (h *Handler) pageExecution(w http.ResponseWriter, r *http.Request) {
	s, err := h.show(r, r.PathValue("id"))
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	d := detailPage{Show: s, TraceURL: h.traceURL(s.TraceID), Timeline: timelineOf(s, time.Now()), Running: !s.Status.Terminal()}
	h.render(w, r, http.StatusOK, "execution", s.Function+" "+s.ID, d)
}

func (h *Handler) pageDeadLetters(w http.ResponseWriter, r *http.Request) {
	ds, err := ops.DeadLetters(r.Context(), h.ex.Backend(), 1000)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "dead-letters", "Dead letters", h.deadDocs(r, ds))
}

func (h *Handler) pageFunctions(w http.ResponseWriter, r *http.Request) {
	fs, err := functionsOf(r.Context(), h.ex)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "functions", "Functions", fs)
}

func (h *Handler) pageMembers(w http.ResponseWriter, r *http.Request) {
	ms, err := ops.Members(r.Context(), h.ex)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "members", "Members", ms)
}

func (h *Handler) pageSchedules(w http.ResponseWriter, r *http.Request) {
	ss, err := schedulesOf(r.Context(), h.ex, h.canSeePayloads(r))
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "schedules", "Schedules", ss)
}
