-- Service checks (TLS certificates, HTTP(S), TCP ports) that a node's collector runs against it,
-- and the latest certificate each `tls` check found. The spec is the API's document
-- (`CheckSpec`, JSON), so a new optional field needs no migration.
CREATE TABLE checks (
    id          INTEGER PRIMARY KEY,
    node_id     INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('tls', 'http', 'https', 'tcp')),
    spec        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX checks_node ON checks (node_id);

-- One row per `tls` check: what its last run found (the finding's JSON), replaced at each run.
CREATE TABLE certificates (
    check_id    INTEGER PRIMARY KEY REFERENCES checks (id) ON DELETE CASCADE,
    not_after   INTEGER,
    finding     TEXT NOT NULL,
    checked_at  INTEGER NOT NULL
);
CREATE INDEX certificates_expiry ON certificates (not_after);
