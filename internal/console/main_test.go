package console_test

import (
	"testing"

	"github.com/stent-go/stent/internal/testutil"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }
