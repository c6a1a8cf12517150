-- Agents' machines (docs/windows.md): what the agent reported it is (its inventory, JSON of
-- HostInventory, with when), and what the node must have running: Windows services whose
-- stop is an alert whatever their start type, and processes watched by name.
CREATE TABLE node_host (
    node_id           INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
    inventory         TEXT,
    inventory_at      INTEGER,
    required_services TEXT NOT NULL DEFAULT '[]',
    watched_processes TEXT NOT NULL DEFAULT '[]'
);
