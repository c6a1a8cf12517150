-- Series an operator told a rule to leave alone (an unused port, a scratch mount): the
-- evaluator does not judge them, and an alert open on one resolves.
CREATE TABLE ignored_series (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    definition_id  INTEGER NOT NULL REFERENCES alert_definitions (id) ON DELETE CASCADE,
    node_id        INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    series         TEXT NOT NULL,
    ignored_by     TEXT NOT NULL,
    comment        TEXT,
    created_at     INTEGER NOT NULL,
    UNIQUE (definition_id, node_id, series)
) STRICT;
