package sqlite

import (
	"context"
	"database/sql"
	"sync/atomic"
)

// checkpointEvery is how many write transactions the writer commits
// between two checkpoints: about SQLite's own automatic checkpoint of a
// thousand pages, for transactions of the sizes Stent writes (a step's
// outcome is three pages or so, a batch of workflow writes fifteen).
const checkpointEvery = 100

// checkpointer copies the write-ahead log back into the database file on a
// connection of its own, so that the writer never waits for a checkpoint:
// with SQLite's automatic checkpoint, the commit that crosses a thousand
// pages of log copies them and syncs both files before it is answered,
// and every write queued behind it waits. The writer's connection has the
// automatic checkpoint off (wal_autocheckpoint(0)) and pokes the
// checkpointer every checkpointEvery transactions; it runs a PASSIVE
// checkpoint, which copies what no reader still needs and blocks no one.
// The log starts over from its beginning only when a write transaction
// begins with the whole log copied, which a checkpoint running beside the
// writer never leaves it: the writer appends meanwhile. So once the
// checkpointer is done, the writer copies what came after, between two
// transactions (catchUp): a few frames, and the log starts over. A checkpoint
// that fails (the file busy, a disk error) leaves the frames in the log,
// where every reader still finds them: the next one copies them.
type checkpointer struct {
	db    *sql.DB
	pokes chan struct{}
	done  chan struct{}
	// copied is set when a checkpoint ends, for the writer's catch-up.
	copied atomic.Bool
}

func newCheckpointer(db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return &checkpointer{db: db, pokes: make(chan struct{}, 1), done: make(chan struct{})}
}

// poke asks for a checkpoint; it never blocks the writer.
func (c *checkpointer) poke() {
	select {
	case c.pokes <- struct{}{}:
	default: // one is asked for already
	}
}

// loop runs a checkpoint per poke until stop.
func (c *checkpointer) loop() {
	defer close(c.done)
	for range c.pokes {
		_, _ = c.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		c.copied.Store(true)
	}
}

// stop ends the loop once the checkpoint under way, if any, is done, and
// closes the connection. The writer must have stopped: it pokes no more.
func (c *checkpointer) stop() error {
	close(c.pokes)
	<-c.done
	return c.db.Close()
}

// catchUp runs on the writer's connection, between two transactions, after
// the checkpointer has copied most of the log: it copies the frames written
// since, so that the next transaction starts the log over.
func (c *checkpointer) catchUp(w *writer) {
	if c.copied.CompareAndSwap(true, false) {
		_, _ = w.conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
	}
}
