package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

// Not parallel: a call without an executor is direct only while no test
// has made an executor the process default (sequential tests run first).
//
// sample:begin direct
func TestChargeLogic(t *testing.T) {
	got, err := ChargeCard.Call(context.Background(), Charge{OrderID: "T-1", Cents: 100})
	require.NoError(t, err)
	require.Equal(t, "receipt-T-1-100", got)
}

// sample:end

// sample:begin stenttest
func TestCheckout(t *testing.T) {
	t.Parallel()
	ctx, ex := stenttest.Worker(t)

	h, err := Checkout.Start(ctx, Charge{OrderID: "T-1", Cents: 100})
	require.NoError(t, err)
	receipt, err := h.Result(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, receipt)

	info, err := ex.Execution(ctx, h.ID())
	require.NoError(t, err)
	require.Equal(t, sdk.StatusCompleted, info.Status)
	children, err := ex.List(ctx, sdk.ListFilter{ParentID: h.ID()})
	require.NoError(t, err)
	require.Len(t, children, 1)
}

// sample:end

func TestDeclinedIsNotRetried(t *testing.T) {
	t.Parallel()
	ctx, _ := stenttest.Worker(t)
	_, err := Checkout.Call(ctx, Charge{OrderID: "T-2", Cents: 2_000_000})
	var ee *sdk.ExecutionError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, "checkout", ee.Function)
	require.Contains(t, ee.Message, "card declined")
}
