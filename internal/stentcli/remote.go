package stentcli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stent-go/stent/sdk"
)

// nodeAddr is --node, or STENT_NODE: the base URL of a node's admin
// address whose console API the commands use instead of the database.
func (a *app) nodeAddr() string {
	if a.node != "" {
		return a.node
	}
	return a.getenv("STENT_NODE")
}

// remote reports whether the commands go through a node's API (--node).
func (a *app) remote() bool { return a.nodeAddr() != "" }

// remoteCommands are the commands that go through a node's API with
// --node; the others need the database.
const remoteCommands = "list, show, start, signal, cancel, stats, watch, members, dlq and schedule list"

// errNeedsDatabase is the error of a command that needs the database, run
// with --node (or STENT_NODE).
func (a *app) errNeedsDatabase() error {
	cmd := a.command
	if cmd == "" {
		cmd = "this command"
	}
	return usagef("%s needs the database, not a node's API: give --db (or STENT_DB) and drop --node (or unset STENT_NODE); with --node only %s work",
		cmd, remoteCommands)
}

// read reads a document: with --node by GET path from the node's API,
// else by local on the database's executor.
func read[T any](ctx context.Context, a *app, path string, local func(context.Context, *sdk.Executor) (T, error)) (T, error) {
	var out T
	if a.remote() {
		err := a.call(ctx, "GET", path, nil, &out)
		return out, err
	}
	ex, err := a.executor(ctx)
	if err != nil {
		return out, err
	}
	return local(ctx, ex)
}

// adminToken is --token, or STENT_ADMIN_TOKEN.
func (a *app) adminToken() string {
	if a.token != "" {
		return a.token
	}
	return a.getenv("STENT_ADMIN_TOKEN")
}

// apiError is the body of an error answer of the console API.
type apiError struct {
	Error string `json:"error"`
}

// call sends a request to the node's console API and decodes its JSON
// answer into out. body, when not nil, is sent as JSON. An error answer
// becomes an error with the API's message (a usage error for 400).
func (a *app) call(ctx context.Context, method, path string, body, out any) error {
	base := strings.TrimRight(a.nodeAddr(), "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return usagef("--node %q is not a URL: want http://host:port (the node's --admin address)", base)
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return usagef("--node %q: %v", base, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Stent-Console", "1")
	}
	if tok := a.adminToken(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("node unreachable: %w (check --node or STENT_NODE)", err)
	}
	defer resp.Body.Close() //nolint:errcheck // read to the end below; nothing to lose
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", base, err)
	}
	if resp.StatusCode >= 300 {
		var ae apiError
		if json.Unmarshal(raw, &ae) != nil || ae.Error == "" {
			return fmt.Errorf("%s %s: %s (is --node a Stent node's admin address?)", method, path, resp.Status)
		}
		switch resp.StatusCode {
		case http.StatusBadRequest:
			return usageError{errors.New(ae.Error)}
		case http.StatusUnauthorized:
			return fmt.Errorf("%s (set --token or STENT_ADMIN_TOKEN)", ae.Error)
		}
		return errors.New(ae.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding the answer of %s %s: %w", method, path, err)
	}
	return nil
}
