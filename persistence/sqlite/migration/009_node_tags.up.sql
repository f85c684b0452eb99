-- Stent schema, version 9: the tags of a node in the registry.

-- tags is a JSON array of the node's worker tags (WithWorkerTags,
-- stent-node --tags): the tagged functions it may run. '[]' for a node
-- without tags, and for the rows written before version 9 until their
-- node's next heartbeat.
ALTER TABLE stent_node ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
