-- metrics.db: samples as they arrive (compact storage comes later).
-- A series is one metric ("measurement.field") of one node with one set of tags.
CREATE TABLE series (
    id          INTEGER PRIMARY KEY,
    node_id     INTEGER NOT NULL,
    metric      TEXT NOT NULL,
    tags        TEXT NOT NULL,           -- canonical "k=v,k=v", sorted by key, node_id left out
    kind        TEXT NOT NULL CHECK (kind IN ('gauge', 'counter')),
    created_at  INTEGER NOT NULL,
    UNIQUE (node_id, metric, tags)
) STRICT;

-- One row per sample; a second sample of a series at the same millisecond replaces the first.
CREATE TABLE samples (
    series_id  INTEGER NOT NULL,
    ts         INTEGER NOT NULL,          -- UNIX milliseconds
    value      REAL NOT NULL,
    PRIMARY KEY (series_id, ts)
) STRICT, WITHOUT ROWID;

-- Batches already committed, per component, so a batch sent again after a lost
-- acknowledgement is not stored twice.
CREATE TABLE ingest_batches (
    component_id  INTEGER NOT NULL,
    batch_id      TEXT NOT NULL,
    committed_at  INTEGER NOT NULL,
    lines         INTEGER NOT NULL,
    PRIMARY KEY (component_id, batch_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX ingest_batches_committed ON ingest_batches (committed_at);
