package sdk

import (
	"context"
	"fmt"

	"github.com/stent-go/stent/persistence"
)

// WithTags makes the function's executions run only on workers that have
// every one of tags (WithWorkerTags): a function that needs a GPU, a
// licence or a region. An untagged function runs on any worker. An
// execution no serving worker can run stays pending, visible in List and
// Execution, until one that can joins. Tags are recorded with each
// execution when it starts, so a worker that lacks them never claims it.
// A tag must not be empty.
func WithTags(tags ...string) Option {
	return func(o *funcOptions) { o.tags = append(o.tags, tags...) }
}

// WithWorkerTags gives the executor's worker tags: it runs the executions
// whose every tag is one of them, and untagged ones. The default is no
// tags, so that the worker runs untagged executions only. A tag must not be
// empty.
func WithWorkerTags(tags ...string) ExecutorOption {
	return func(o *executorOptions) { o.tags = append(o.tags, tags...) }
}

// WithCallTags adds tags to the function's (WithTags) for this call: the
// execution runs only on workers that have every one of both. A tag must
// not be empty.
func WithCallTags(tags ...string) CallOption {
	return func(o *callOptions) { o.tags = append(o.tags, tags...) }
}

// fireSchedule records the tags of the tick executions f creates, those of
// functions with tags (WithTags), before FireSchedule writes their rows, so
// that no node without the tags claims one.
func (e *Executor) fireSchedule(ctx context.Context, f *persistence.ScheduleFire) ([]*persistence.Execution, error) {
	for _, x := range f.Create {
		fn, ok := lookup(x.Function)
		if !ok {
			continue // started by name: a node that has it records its tags if it is refused elsewhere
		}
		if err := e.rt.TagExecution(ctx, fn.Tags, x.ID); err != nil {
			return nil, fmt.Errorf("recording the tags of %s: %w", x.ID, err)
		}
	}
	return e.backend.FireSchedule(ctx, f)
}
