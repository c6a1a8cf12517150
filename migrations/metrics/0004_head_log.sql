-- metrics.db: the head moves to memory and is logged here as whole batches (an append,
-- whatever the head holds), replacing the one-row-per-sample `head` table, whose rows the
-- server moves into this log once at start (server/src/metrics_store/head.rs).

-- One row per commit and 5-minute slice of sample time. `seq` is the arrival number of the
-- row's first sample (the others follow in order); `data` is the samples (codec.rs,
-- encode_log). A row is deleted once every sample in it is sealed into chunks.
CREATE TABLE head_log (
    seq      INTEGER PRIMARY KEY,
    slice    INTEGER NOT NULL,          -- start of the slice, UNIX milliseconds
    samples  INTEGER NOT NULL,
    data     BLOB NOT NULL
) STRICT;

-- Seal marks: every sample of the series with ts < sealed_before and seq <= sealed_seq is in
-- a chunk (moved in the transaction that stores the chunks; the log's replay skips them).
ALTER TABLE series ADD COLUMN sealed_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE series ADD COLUMN sealed_seq INTEGER NOT NULL DEFAULT 0;
