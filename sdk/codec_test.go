package sdk_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence/codec"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// With an AES-GCM codec, nothing of a payload is readable in the database:
// inputs, outputs, journal values and snapshots, signal payloads and dead
// letters' inputs all carry a marker, and the marker is nowhere in the
// SQLite files or the PostgreSQL rows.

const secretMarker = "MARKER-7f3a9c-plaintext"

var (
	secretStep = sdk.Durable("test_codec_step", func(ctx context.Context, s string) (string, error) {
		return s + "/" + secretMarker, nil
	})
	secretFlow = sdk.Durable("test_codec_flow", func(ctx context.Context, s string) (string, error) {
		// Enough steps for a snapshot of the journal (every 64 entries).
		for i := range 70 {
			if _, err := secretStep.Call(ctx, s+string(rune('a'+i%26))); err != nil {
				return "", err
			}
		}
		sig, err := sdk.WaitForSignal[string](ctx, "go")
		if err != nil {
			return "", err
		}
		return s + sig, nil
	})
	secretDoomed = sdk.Durable("test_codec_doomed", func(ctx context.Context, s string) (string, error) {
		return "", sdk.NonRetryable(errors.New("doomed"))
	})
)

func TestCodecLeavesNothingReadable(t *testing.T) {
	t.Parallel()
	key := codec.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)}
	c, err := codec.NewAESGCM(key)
	require.NoError(t, err)
	env, open := testDatabase(t)
	ctx := context.Background()
	ex, err := sdk.Bootstrap(ctx, open(t), sdk.Serve(), sdk.WithCodec(c), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	wctx := sdk.WithExecutor(ctx, ex)

	h, err := secretFlow.Start(wctx, secretMarker)
	require.NoError(t, err)
	require.NoError(t, ex.SendSignal(ctx, h.ID(), "go", "+"+secretMarker))
	got, err := h.Result(wctx)
	require.NoError(t, err)
	require.Equal(t, secretMarker+"+"+secretMarker, got, "decoded on the way out")
	_, err = secretDoomed.Call(wctx, secretMarker)
	require.Error(t, err)
	letters, err := ex.DeadLetters(ctx)
	require.NoError(t, err)
	require.Len(t, letters, 1)
	require.Contains(t, string(letters[0].Input), secretMarker, "dead letters decode too")
	// A signal waiting unconsumed for an execution that never reads it.
	waiting, err := secretFlow.Start(wctx, "w")
	require.NoError(t, err)
	require.NoError(t, ex.SendSignal(ctx, waiting.ID(), "never", secretMarker))
	testutil.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		info, err := ex.Execution(ctx, waiting.ID())
		if err == nil && info.Status != sdk.StatusWaiting {
			err = errors.New("not waiting yet: " + string(info.Status))
		}
		return err
	})
	require.NoError(t, ex.Close())

	found := dumpDatabase(t, env)
	require.NotEmpty(t, found)
	for _, needle := range []string{secretMarker, hex.EncodeToString([]byte(secretMarker))} {
		require.NotContains(t, found, needle, "the marker is readable in the database")
	}
	require.Contains(t, found, "test_codec_flow", "the dump holds the rows")

	// A reader without the key sees "encrypted"; one with it, the payload.
	for _, opts := range [][]sdk.ExecutorOption{nil, {sdk.WithCodec(c)}} {
		b := open(t)
		require.NoError(t, b.Init(ctx))
		reader, err := sdk.New(b, opts...)
		require.NoError(t, err)
		info, err := reader.Execution(ctx, h.ID())
		require.NoError(t, err)
		if opts == nil {
			require.JSONEq(t, `"encrypted (key k1)"`, string(info.Input))
		} else {
			require.JSONEq(t, `"`+secretMarker+`"`, string(info.Input))
		}
		require.NoError(t, reader.Close())
		require.NoError(t, b.Close())
	}
}

// dumpDatabase returns every byte of the test database: the SQLite files,
// or every row of the schema's tables as text (bytea as hex).
func dumpDatabase(t *testing.T, env []string) string {
	t.Helper()
	db, schema := databaseOf(env)
	if schema == "" {
		var all []byte
		matches, err := filepath.Glob(db + "*") // the file, its -wal and -shm
		require.NoError(t, err)
		for _, m := range matches {
			b, err := os.ReadFile(m)
			require.NoError(t, err)
			all = append(all, b...)
		}
		return string(all)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv(envPostgres))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var out strings.Builder
	for _, table := range []string{"stent_execution", "stent_journal", "stent_snapshot", "stent_dead_letter", "stent_signal"} {
		rows, err := conn.Query(ctx, "SELECT t::text FROM "+pgx.Identifier{schema, table}.Sanitize()+" t")
		require.NoError(t, err)
		n := 0
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out.WriteString(s)
			n++
		}
		require.NoError(t, rows.Err())
		require.Positive(t, n, "table %s has rows", table)
	}
	return out.String()
}
