package stentcli

import (
	"github.com/spf13/cobra"

	"github.com/stent-go/stent/sdk"
)

// completeExecution completes the first argument with the IDs of the latest
// executions (their function as the description), read from the database
// that --db or STENT_DB names; nothing when it cannot be read.
func (a *app) completeExecution(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer a.close() //nolint:errcheck // completion prints nothing of its errors
	ex, err := a.executor(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	infos, err := ex.List(cmd.Context(), sdk.ListFilter{Limit: 100})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := make([]cobra.Completion, len(infos))
	for i, e := range infos {
		out[i] = cobra.CompletionWithDesc(e.ID, e.Function+" "+string(e.Status))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeDeadLetter completes the first argument with the executions of
// the dead letters (what replay, discard and show take).
func (a *app) completeDeadLetter(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer a.close() //nolint:errcheck // as above
	ds, err := a.deadLetters(cmd.Context(), 1000)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := make([]cobra.Completion, len(ds))
	for i, d := range ds {
		out[i] = cobra.CompletionWithDesc(d.ExecutionID, d.Function)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
