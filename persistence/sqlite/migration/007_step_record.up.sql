-- Stent schema, version 7: a call's journal entry holds the child's record.

-- A step that completed at its first attempt without durable operations of
-- its own has no stent_execution row: its journal entry is all there is of
-- it. input is the child's input, attempts the attempts it took (both NULL
-- when not recorded: other kinds, entries written before version 7). Its
-- times are started_at and ended_at, which its writer may now give (the
-- child's creation and end) instead of the backend's clock.
ALTER TABLE stent_journal ADD COLUMN input BLOB;
ALTER TABLE stent_journal ADD COLUMN attempts INTEGER;
