-- Topology: what each node says of itself over LLDP (how its neighbours name it) and the
-- neighbour rows its last walks reported.
CREATE TABLE node_identities (
    node_id     INTEGER PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    chassis_id  TEXT,
    sys_name    TEXT,
    -- The last walk of its neighbour tables (UNIX seconds): rows older are gone.
    walked_at   INTEGER NOT NULL
) STRICT;

-- One row per (node, protocol, local port, neighbour); `doc` is the row as read
-- (`NeighbourRow`, JSON). A row the last walk did not report keeps its last_seen: shown as gone,
-- deleted a week later.
CREATE TABLE neighbours (
    id          INTEGER PRIMARY KEY,
    node_id     INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    protocol    TEXT NOT NULL CHECK (protocol IN ('lldp', 'cdp')),
    local_port  TEXT NOT NULL,
    -- What names the neighbour: its chassis id, else its system name, else its address.
    remote_key  TEXT NOT NULL,
    doc         TEXT NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    UNIQUE (node_id, protocol, local_port, remote_key)
) STRICT;
