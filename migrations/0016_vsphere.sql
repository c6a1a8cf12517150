-- vSphere: the node types `vcenter` and `esxi`, the credential kind `vsphere`, and the hosts and
-- VMs a vCenter's inventory makes into nodes (owned by the vCenter node, found again by their
-- managed object id, marked when gone). SQLite cannot change a CHECK constraint in place: both
-- tables are rebuilt (the runner turns foreign keys off around migrations and checks them after).

CREATE TEMP TABLE vsphere_seq AS SELECT name, seq FROM sqlite_sequence WHERE name IN ('nodes', 'credentials');

CREATE TABLE credentials_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    kind        TEXT NOT NULL CHECK (kind IN ('snmp_v1', 'snmp_v2c', 'snmp_v3', 'windows', 'ssh', 'vsphere')),
    -- Non-secret fields (user name, protocols, context) as JSON.
    params      TEXT NOT NULL DEFAULT '{}',
    -- Secret fields as JSON of {field: base64(nonce || ciphertext)}.
    secrets     TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    networks    TEXT NOT NULL DEFAULT '[]'
) STRICT;
INSERT INTO credentials_new (id, name, kind, params, secrets, created_at, updated_at, networks)
    SELECT id, name, kind, params, secrets, created_at, updated_at, networks FROM credentials;
DROP TABLE credentials;
ALTER TABLE credentials_new RENAME TO credentials;

CREATE TABLE nodes_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(name) BETWEEN 1 AND 255),
    address        TEXT NOT NULL CHECK (length(address) BETWEEN 1 AND 255),
    node_type      TEXT NOT NULL DEFAULT 'other'
                   CHECK (node_type IN ('network', 'server', 'storage', 'ups', 'plc', 'hmi', 'printer', 'other', 'vcenter', 'esxi')),
    collector_id   INTEGER REFERENCES remote_components (id) ON DELETE SET NULL,
    template_id    INTEGER REFERENCES device_templates (id) ON DELETE SET NULL,
    interval_secs  INTEGER CHECK (interval_secs IS NULL OR interval_secs > 0),
    parent_id      INTEGER REFERENCES nodes (id) ON DELETE SET NULL CHECK (parent_id IS NULL OR parent_id <> id),
    notes          TEXT,
    health         TEXT NOT NULL DEFAULT 'discovering'
                   CHECK (health IN ('discovering', 'healthy', 'warning', 'critical', 'offline', 'maintenance')),
    health_reason  TEXT,
    health_changed_at INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    modbus_unit    INTEGER CHECK (modbus_unit IS NULL OR modbus_unit BETWEEN 0 AND 255),
    -- A host or VM of a vCenter's inventory: the vCenter (or ESXi) node, its managed object id
    -- there (`host-21`, `vm-57`), and when it left the inventory (NULL while it is in it).
    vsphere_owner_id INTEGER REFERENCES nodes (id) ON DELETE CASCADE,
    vsphere_moref  TEXT,
    vsphere_gone_at INTEGER,
    CHECK ((vsphere_owner_id IS NULL) = (vsphere_moref IS NULL))
) STRICT;
INSERT INTO nodes_new (id, name, address, node_type, collector_id, template_id, interval_secs,
                       parent_id, notes, health, health_reason, health_changed_at, created_at,
                       updated_at, modbus_unit)
    SELECT id, name, address, node_type, collector_id, template_id, interval_secs, parent_id,
           notes, health, health_reason, health_changed_at, created_at, updated_at, modbus_unit
      FROM nodes;
DROP TABLE nodes;
ALTER TABLE nodes_new RENAME TO nodes;
CREATE INDEX nodes_address ON nodes (address);
CREATE INDEX nodes_collector ON nodes (collector_id);
CREATE INDEX nodes_health ON nodes (health);
CREATE INDEX nodes_parent ON nodes (parent_id);
CREATE INDEX nodes_template ON nodes (template_id);
CREATE UNIQUE INDEX nodes_vsphere ON nodes (vsphere_owner_id, vsphere_moref) WHERE vsphere_owner_id IS NOT NULL;

-- Ids are never reused: the sequences go on from where they were.
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM temp.vsphere_seq s WHERE s.name = sqlite_sequence.name), 0))
 WHERE name IN ('nodes', 'credentials');
DROP TABLE temp.vsphere_seq;

-- The last inventory each vCenter node's collector sent (what its screen lists).
CREATE TABLE vsphere_inventories (
    node_id     INTEGER PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    doc         TEXT NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;
