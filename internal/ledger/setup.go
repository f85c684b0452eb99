package ledger

import "errors"

// Setup opens the ledger of a stent-node (its tables in the node's database
// db, PostgreSQL schema schema, rows marked with node) and registers it for
// the workload's functions. The returned cleanup unregisters and closes it,
// after the node's executor is closed.
func Setup(db, schema, node string) (cleanup func() error, err error) {
	opts := []Option{WithNode(node)}
	if schema != "" {
		opts = append(opts, WithSchema(schema))
	}
	l, err := Open(db, opts...)
	if err != nil {
		return nil, err
	}
	if err := Register(l); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return func() error { return errors.Join(Register(nil), l.Close()) }, nil
}
