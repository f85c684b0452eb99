package stentcli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) cleanupCmd() *cobra.Command {
	var olderThan time.Duration
	c := &cobra.Command{
		Use:   "cleanup --older-than DURATION",
		Short: "Delete finished executions older than a duration, with their journals",
		Long: `Delete the finished executions (completed, failed, canceled, timed out) whose
last update is older than --older-than, whole trees at a time (a root and
every execution below it, once all of them are finished), with their
journals, signals and dead letters. It deletes in short batches, so live
work is never blocked for long.`,
		Example: "  stent cleanup --older-than 720h\n  stent cleanup --older-than 168h --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan <= 0 {
				return usagef("--older-than is required: how old a finished execution must be to go, e.g. --older-than 720h")
			}
			ctx := cmd.Context()
			ex, err := a.executor(ctx)
			if err != nil {
				return err
			}
			n, err := ex.Cleanup(ctx, olderThan)
			if err != nil {
				return fmt.Errorf("%w (%d executions deleted before that)", err, n)
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"deleted": n, "older_than": olderThan.String()})
			}
			fmt.Fprintf(a.stdout, "deleted %d finished executions older than %s\n", n, olderThan)
			return nil
		},
	}
	c.Flags().DurationVar(&olderThan, "older-than", 0, "age of the last update past which a finished execution goes, e.g. 720h")
	return c
}
