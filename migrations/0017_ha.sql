-- High availability (docs/ha.md): the active of a pair bumps this row every second; the
-- standby reads it from its copy to know how far behind the replica is, and the active waits
-- for the standby's copy to hold a notification's alert before sending it.
CREATE TABLE ha_beacon (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
INSERT INTO ha_beacon (id, seq, at_ms) VALUES (1, 0, 0);
