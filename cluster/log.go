package cluster

import (
	"bytes"
	"context"
	"log/slog"
)

// logWriter turns memberlist's log lines ("[WARN] memberlist: text") into
// slog records: the level from the bracketed prefix, the rest as the "text"
// attribute, under the constant message "memberlist".
type logWriter struct {
	logger *slog.Logger
	m      *Membership // for quietDuringLeave; nil in tests of the writer alone
}

var logLevels = []struct {
	prefix []byte
	level  slog.Level
}{
	{[]byte("[DEBUG]"), slog.LevelDebug},
	{[]byte("[INFO]"), slog.LevelInfo},
	{[]byte("[WARN]"), slog.LevelWarn},
	{[]byte("[ERR]"), slog.LevelError},
	{[]byte("[ERROR]"), slog.LevelError},
}

// Write logs one line and never fails. memberlist's log.Logger calls it once
// per line, with no date (the logger's flags are 0).
func (w logWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, l := range logLevels {
		if rest, ok := bytes.CutPrefix(line, l.prefix); ok {
			level, line = l.level, bytes.TrimSpace(rest)
			break
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	if level > slog.LevelDebug && benignShutdownNoise(line) {
		level = slog.LevelDebug
	}
	if level >= slog.LevelWarn && w.m != nil && w.m.quietDuringLeave(line) {
		level = slog.LevelInfo
	}
	ctx := context.Background()
	if w.logger.Enabled(ctx, level) {
		w.logger.LogAttrs(ctx, level, "memberlist", slog.String("text", string(line)))
	}
	return len(p), nil
}
