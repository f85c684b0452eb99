package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOpenWithoutDSNIsRefused: an empty DSN is refused instead of
// connecting with libpq's defaults (PGHOST, the local socket, whatever
// database they name), where Init would create Stent's tables.
func TestOpenWithoutDSNIsRefused(t *testing.T) {
	t.Setenv("PGHOST", "127.0.0.1") // would otherwise reach a server
	for _, dsn := range []string{"", "  "} {
		b, err := Open(t.Context(), dsn)
		require.Error(t, err)
		require.Nil(t, b)
		require.Contains(t, err.Error(), "no DSN given")
	}
}
