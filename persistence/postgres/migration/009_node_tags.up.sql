-- Stent schema, version 9: the tags of a node in the registry.
-- Init runs this with search_path set to the backend's schema, inside a
-- transaction holding the migration lock.

-- tags is a JSON array of the node's worker tags (WithWorkerTags,
-- stent-node --tags): the tagged functions it may run. '[]' for a node
-- without tags, and for the rows written before version 9 until their
-- node's next heartbeat. A constant default rewrites nothing.
ALTER TABLE stent_node ADD COLUMN tags jsonb NOT NULL DEFAULT '[]';
