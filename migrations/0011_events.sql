-- Events the collectors receive: SNMP traps and syslog messages. `uid` is the collector's own
-- id of the event, so an event sent twice (an outbox batch replayed) is stored once. `doc` is
-- the event as received (`CollectedEvent`, JSON: every varbind raw); the columns beside it are
-- what lists filter on. An event from an address no node has keeps `node_id` NULL.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    collector_id  INTEGER NOT NULL REFERENCES remote_components (id) ON DELETE CASCADE,
    uid           TEXT NOT NULL,
    node_id       INTEGER REFERENCES nodes (id) ON DELETE SET NULL,
    source        TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('trap', 'syslog')),
    severity      INTEGER NOT NULL CHECK (severity BETWEEN 0 AND 7),
    received_at   INTEGER NOT NULL,
    summary       TEXT NOT NULL,
    doc           TEXT NOT NULL,
    UNIQUE (collector_id, uid)
) STRICT;
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_node ON events (node_id, received_at);

-- The receivers a collector runs (`Receivers`, JSON); NULL: none.
ALTER TABLE remote_components ADD COLUMN receivers TEXT;
