-- DNS checks. 0009 listed the check kinds in a CHECK constraint, which SQLite cannot alter: the
-- table is rebuilt without the list (the API validates the kind, and the spec is the truth),
-- so a new kind needs no migration again. `certificates` is rebuilt alongside, pointing at the
-- new table first: dropping the old `checks` must not cascade into the certificates found.
CREATE TABLE checks_new (
    id          INTEGER PRIMARY KEY,
    node_id     INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
INSERT INTO checks_new (id, node_id, kind, spec, created_at)
    SELECT id, node_id, kind, spec, created_at FROM checks;

CREATE TABLE certificates_new (
    check_id    INTEGER PRIMARY KEY REFERENCES checks_new (id) ON DELETE CASCADE,
    not_after   INTEGER,
    finding     TEXT NOT NULL,
    checked_at  INTEGER NOT NULL
);
INSERT INTO certificates_new (check_id, not_after, finding, checked_at)
    SELECT check_id, not_after, finding, checked_at FROM certificates;

DROP TABLE certificates;
DROP TABLE checks;
-- Renaming rewrites certificates_new's reference to `checks`.
ALTER TABLE checks_new RENAME TO checks;
ALTER TABLE certificates_new RENAME TO certificates;
CREATE INDEX checks_node ON checks (node_id);
CREATE INDEX certificates_expiry ON certificates (not_after);
