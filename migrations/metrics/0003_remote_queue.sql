-- metrics.db, remote-write backend: the write-ahead queue. With `metrics_backend =
-- "remote_write"` committed samples land here instead of the head; the forwarder sends them to
-- the engine in `seq` order and deletes each range the engine has accepted (or refused as bad
-- data, which a retry cannot mend). Empty, and unused, with the embedded backend.
CREATE TABLE remote_queue (
    seq        INTEGER PRIMARY KEY,
    series_id  INTEGER NOT NULL,
    ts         INTEGER NOT NULL,          -- UNIX milliseconds
    value      REAL NOT NULL
) STRICT;
