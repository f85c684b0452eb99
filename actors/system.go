package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

// newActorSystem builds the runtime's protoactor actor system, logging to
// log, with dead-letter request logging off (a request to a stopped actor is
// answered with DeadLetterResponse; logging it is noise). It takes a few
// milliseconds (protoactor allocates its process registry up front):
// sdk.Bootstrap builds the runtime while the schema is migrated.
func newActorSystem(log *slog.Logger) *actor.ActorSystem {
	return actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }),
		actor.WithDeadLetterRequestLogging(false),
	)
}
