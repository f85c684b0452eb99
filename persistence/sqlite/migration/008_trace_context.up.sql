-- Stent schema, version 8: the trace context of an execution.

-- trace_context is the W3C traceparent of the span an execution's attempts
-- are parented on (the caller's span for a root, the call's span in the
-- parent for a child), so that a retry, a takeover or a wake-up on another
-- node continues the same trace. NULL when none was recorded.
ALTER TABLE stent_execution ADD COLUMN trace_context TEXT;
