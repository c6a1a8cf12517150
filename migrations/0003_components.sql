-- Collectors and agents: enrollment, approval, key revocation, status reports; config delivery
-- debounced on the last change of a burst.

-- When the last change of the current burst happened: a dirty configuration is regenerated
-- once no change has arrived for the debounce time (or the burst has lasted too long).
ALTER TABLE collector_config_dirty ADD COLUMN last_change_at INTEGER;
UPDATE collector_config_dirty SET last_change_at = dirty_since;

ALTER TABLE remote_components ADD COLUMN revoked_at INTEGER;
-- The last status report of a collector: JSON {target_count, errors}.
ALTER TABLE remote_components ADD COLUMN report TEXT;

-- How many nodes the stored configuration holds.
ALTER TABLE collector_configs ADD COLUMN target_count INTEGER NOT NULL DEFAULT 0;

-- Keys of components are looked up by machine on re-enrollment, by node for agents.
CREATE INDEX remote_components_node ON remote_components (node_id);
CREATE INDEX enrollment_tokens_created ON enrollment_tokens (created_at);
