package clock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

func TestManualAdvanceFiresDueTimers(t *testing.T) {
	t.Parallel()
	m := NewManual()
	start := m.Now()
	day := m.NewTimer(24 * time.Hour)
	week := m.NewTimer(7 * 24 * time.Hour)
	fired := make(chan struct{})
	m.AfterFunc(time.Hour, func() { close(fired) })

	m.Advance(24 * time.Hour)
	<-day.C()
	<-fired
	select {
	case <-week.C():
		t.Fatal("a timer a week away fired after a day")
	default:
	}
	require.False(t, m.Now().Before(start.Add(24*time.Hour)))
	require.True(t, week.Stop())
	require.False(t, week.Stop())
	require.False(t, day.Stop())
	require.Equal(t, 24*time.Hour, m.Offset())
}

func TestManualRunsWithRealTime(t *testing.T) {
	t.Parallel()
	m := NewManual()
	tm := m.NewTimer(time.Millisecond)
	<-tm.C() // fires in real time without an Advance
	host := time.Now()
	require.False(t, m.Now().Before(host), "the clock is never behind the host's")
}
