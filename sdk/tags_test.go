package sdk_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// tagGate holds the bodies of the tagged test functions until released, by
// input, so a test can see where they run.
var tagGate = struct {
	sync.Mutex
	ch map[string]chan struct{}
}{ch: map[string]chan struct{}{}}

func gate(in string) chan struct{} {
	tagGate.Lock()
	defer tagGate.Unlock()
	if tagGate.ch[in] == nil {
		tagGate.ch[in] = make(chan struct{})
	}
	return tagGate.ch[in]
}

func gatedBody(ctx context.Context, in string) (string, error) {
	select {
	case <-gate(in):
		return in, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

var (
	gpuTask   = sdk.Durable("test_tag_gpu", gatedBody, sdk.WithTags("gpu"))
	gpuEUTask = sdk.Durable("test_tag_gpu_eu", gatedBody, sdk.WithTags("gpu", "eu"))
	plainTask = sdk.Durable("test_tag_plain", gatedBody)
	tpuTask   = sdk.Durable("test_tag_tpu", gatedBody, sdk.WithTags("tpu"))
	tagParent = sdk.Durable("test_tag_parent", func(ctx context.Context, in string) (string, error) {
		return gpuTask.Call(ctx, in+"-child") // from a node without gpu: runs on one with it
	})
)

// tagNode is a serving executor on the test's database with tags.
func tagNode(t *testing.T, open func(testing.TB) persistence.Backend, name string, tags ...string) *sdk.Executor {
	t.Helper()
	b := open(t)
	require.NoError(t, b.Init(context.Background()))
	ex, err := sdk.New(b, sdk.WithNodeID(name), sdk.WithWorkerTags(tags...), sdk.WithPollInterval(20*time.Millisecond),
		sdk.WithLeaseDuration(2*time.Second), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	go func() { _ = ex.Serve(context.Background()) }()
	require.NoError(t, ex.WaitUntilReady(context.Background()))
	t.Cleanup(func() { require.NoError(t, ex.Close()) })
	return ex
}

// runsOn waits until execution id has a body running on ex.
func runsOn(t *testing.T, ex *sdk.Executor, id string) {
	t.Helper()
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !slices.Contains(ex.ActiveExecutions(), id) {
			return fmt.Errorf("%s is not running on %s", id, ex.NodeID())
		}
		return nil
	})
}

func TestTagsSteerExecutionsToNodes(t *testing.T) {
	t.Parallel()
	_, open := testDatabase(t)
	plainNode := tagNode(t, open, "plain-node")
	gpuNode := tagNode(t, open, "gpu-node", "gpu")
	ctx := sdk.WithExecutor(context.Background(), plainNode)
	in := uniqueInput(t)

	gpu, err := gpuTask.Start(ctx, in+"-gpu") // started on the node without gpu
	require.NoError(t, err)
	runsOn(t, gpuNode, gpu.ID())
	require.NotContains(t, plainNode.ActiveExecutions(), gpu.ID())

	both, err := gpuEUTask.Start(ctx, in+"-both") // no node has gpu and eu
	require.NoError(t, err)
	tpu, err := tpuTask.Start(ctx, in+"-tpu")
	require.NoError(t, err)
	parent, err := tagParent.Start(ctx, in)
	require.NoError(t, err)
	callTagged, err := plainTask.Start(ctx, in+"-call", sdk.WithCallTags("gpu")) // an untagged function, tagged by the call
	require.NoError(t, err)
	runsOn(t, gpuNode, callTagged.ID())
	runsOn(t, gpuNode, parent.ID()+".0") // the child, away from its parent's node

	// Untagged work runs anywhere; after it has, the executions no node can
	// serve are still pending, and visible.
	for _, ex := range []*sdk.Executor{plainNode, gpuNode} {
		p, err := plainTask.Start(sdk.WithExecutor(context.Background(), ex), in+"-plain-"+ex.NodeID())
		require.NoError(t, err)
		close(gate(in + "-plain-" + ex.NodeID()))
		_, err = p.Result(ctx)
		require.NoError(t, err)
	}
	for _, id := range []string{both.ID(), tpu.ID()} {
		info, err := plainNode.Execution(ctx, id)
		require.NoError(t, err)
		require.Equal(t, sdk.StatusPending, info.Status, "%s has no node to run on", info.Function)
	}
	pending, err := plainNode.List(ctx, sdk.ListFilter{Status: sdk.StatusPending})
	require.NoError(t, err)
	require.Len(t, pending, 2)

	close(gate(in + "-gpu"))
	close(gate(in + "-child"))
	close(gate(in + "-call"))
	_, err = callTagged.Result(ctx)
	require.NoError(t, err)
	out, err := gpu.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, in+"-gpu", out)
	out, err = parent.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, in+"-child", out)

	// A node with both tags joins and takes what waited for it.
	fullNode := tagNode(t, open, "full-node", "eu", "gpu", "tpu")
	runsOn(t, fullNode, both.ID())
	runsOn(t, fullNode, tpu.ID())
	close(gate(in + "-both"))
	close(gate(in + "-tpu"))
	_, err = both.Result(ctx)
	require.NoError(t, err)
	_, err = tpu.Result(ctx)
	require.NoError(t, err)
}

func TestEmptyTagsAreRefused(t *testing.T) {
	t.Parallel()
	require.PanicsWithError(t, `sdk: durable function "test_tag_empty": WithTags: an empty tag in ["a" ""]`, func() {
		sdk.Durable("test_tag_empty", gatedBody, sdk.WithTags("a", ""))
	})
	b, err := sqlite.Open(":memory:")
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	_, err = sdk.New(b, sdk.WithWorkerTags(""))
	require.ErrorContains(t, err, "WithWorkerTags: an empty tag")
	ctx, _ := worker(t)
	_, err = plainTask.Start(ctx, "x", sdk.WithCallTags("gpu", ""))
	require.ErrorContains(t, err, "WithCallTags: an empty tag")
}

// A schedule's tick of a tagged function is tagged too: it runs only where
// the tags are.
func TestScheduledTicksAreTagged(t *testing.T) {
	t.Parallel()
	_, open := testDatabase(t)
	plainNode := tagNode(t, open, "plain-node")
	gpuNode := tagNode(t, open, "gpu-node", "gpu")
	ctx := context.Background()
	in := uniqueInput(t)
	_, err := plainNode.CreateSchedule(ctx, "gpu-nightly", "0 2 * * *", gpuTask.Name(), in)
	require.NoError(t, err)
	id, err := plainNode.TriggerSchedule(ctx, "gpu-nightly")
	require.NoError(t, err)
	tags, err := plainNode.Backend().ExecutionTags(ctx, id)
	require.NoError(t, err)
	require.Equal(t, []string{"gpu"}, tags, "recorded with the tick, before any node could claim it")
	runsOn(t, gpuNode, id)
	require.NotContains(t, plainNode.ActiveExecutions(), id)
	close(gate(in))
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		info, err := plainNode.Execution(ctx, id)
		if err != nil {
			return err
		}
		if info.Status != sdk.StatusCompleted {
			return fmt.Errorf("status %s", info.Status)
		}
		return nil
	})
}
