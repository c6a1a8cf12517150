-- metrics.db, compact storage. Samples land in the head; the compactor seals them into
-- per-series chunks (raw: one per clock hour) and rollups (5 minutes: one chunk per day;
-- 1 hour: one chunk per 7 days), deleting the head rows it sealed in the same transaction.

-- One row per committed sample. `seq` orders arrivals: of two samples of a series at one
-- millisecond the later one wins, and the compactor deletes only rows it has read.
CREATE TABLE head (
    series_id  INTEGER NOT NULL,
    ts         INTEGER NOT NULL,          -- UNIX milliseconds
    seq        INTEGER NOT NULL,
    value      REAL NOT NULL,
    PRIMARY KEY (series_id, ts, seq)
) STRICT, WITHOUT ROWID;

INSERT INTO head (series_id, ts, seq, value) SELECT series_id, ts, 0, value FROM samples;
DROP TABLE samples;

-- Sealed blobs (see server/src/metrics_store/codec.rs). The row id is the key:
-- series_id << 32 | resolution << 28 | window index (0 raw/1 h, 1 = 5 min/day, 2 = 1 h/7 days).
CREATE TABLE chunks (
    id      INTEGER PRIMARY KEY,
    points  INTEGER NOT NULL,
    data    BLOB NOT NULL
) STRICT;
