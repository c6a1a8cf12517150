-- Alerting: rules (built-in and custom), alerts with their history, node health changes,
-- maintenance windows, notification channels and the durable notification queue.
-- The alerting tables of 0001 were never written to; they are replaced by fuller ones.

DROP TABLE alerts;
DROP TABLE alert_definitions;
DROP TABLE maintenance_windows;
DROP TABLE notification_channels;

CREATE TABLE alert_definitions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    -- The built-in behaviour this rule tunes (NULL for a custom threshold rule).
    builtin         TEXT UNIQUE,
    enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    description     TEXT,
    -- measurement.field, alternatives separated by '|'.
    metric          TEXT,
    -- JSON object tag -> pattern ('*' matches any run of characters).
    tag_matchers    TEXT NOT NULL DEFAULT '{}',
    scope_kind      TEXT NOT NULL DEFAULT 'all' CHECK (scope_kind IN ('all', 'type', 'tag', 'template', 'node')),
    scope_value     TEXT,
    aggregation     TEXT NOT NULL DEFAULT 'last' CHECK (aggregation IN ('last', 'avg', 'min', 'max', 'rate')),
    window_secs     INTEGER NOT NULL DEFAULT 60 CHECK (window_secs > 0),
    comparison      TEXT NOT NULL DEFAULT '>' CHECK (comparison IN ('>', '>=', '<', '<=')),
    warning         REAL,
    critical        REAL,
    clear           REAL,
    for_secs        INTEGER NOT NULL DEFAULT 0 CHECK (for_secs >= 0),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    definition_id    INTEGER NOT NULL REFERENCES alert_definitions (id) ON DELETE CASCADE,
    node_id          INTEGER REFERENCES nodes (id) ON DELETE CASCADE,
    collector_id     INTEGER REFERENCES remote_components (id) ON DELETE CASCADE,
    -- The series the alert is about ('' for node-level rules), e.g. 'interface.oper_status{ifName=eth0}'.
    series           TEXT NOT NULL DEFAULT '',
    state            TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    severity         TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
    value            REAL,
    message          TEXT NOT NULL DEFAULT '',
    flapping         INTEGER NOT NULL DEFAULT 0 CHECK (flapping IN (0, 1)),
    -- Held by a maintenance window: evaluated and shown, never notified.
    held             INTEGER NOT NULL DEFAULT 0 CHECK (held IN (0, 1)),
    -- Suppressed because every parent of the node is down.
    suppressed       INTEGER NOT NULL DEFAULT 0 CHECK (suppressed IN (0, 1)),
    acked_by         TEXT,
    acked_at         INTEGER,
    ack_comment      TEXT,
    started_at       INTEGER NOT NULL,
    fired_at         INTEGER,
    resolved_at      INTEGER,
    notified_at      INTEGER,
    updated_at       INTEGER NOT NULL
) STRICT;
-- At most one open alert per (rule, node or collector, series).
CREATE UNIQUE INDEX alerts_open ON alerts (definition_id, ifnull(node_id, 0), ifnull(collector_id, 0), series)
    WHERE state <> 'resolved';
CREATE INDEX alerts_node ON alerts (node_id, state);
CREATE INDEX alerts_state ON alerts (state, severity);
CREATE INDEX alerts_started ON alerts (started_at);

-- Everything that happened to an alert, oldest first.
CREATE TABLE alert_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id   INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    event      TEXT NOT NULL,
    severity   TEXT,
    value      REAL,
    actor      TEXT,
    comment    TEXT
) STRICT;
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);

CREATE TABLE health_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id     INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    from_health TEXT NOT NULL,
    to_health   TEXT NOT NULL,
    reason      TEXT
) STRICT;
CREATE INDEX health_changes_node ON health_changes (node_id, id);

CREATE TABLE maintenance_windows (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    scope_kind    TEXT NOT NULL CHECK (scope_kind IN ('node', 'tag', 'collector')),
    scope_value   TEXT NOT NULL,
    -- The first occurrence; a recurring window repeats it weekly or monthly in the server's
    -- time zone.
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER NOT NULL,
    recurrence    TEXT NOT NULL DEFAULT 'none' CHECK (recurrence IN ('none', 'weekly', 'monthly')),
    -- Ended by hand before its time (no further occurrences either).
    ended_at      INTEGER,
    created_by    TEXT,
    created_at    INTEGER NOT NULL,
    CHECK (ends_at > starts_at)
) STRICT;
CREATE INDEX maintenance_windows_time ON maintenance_windows (starts_at, ends_at);

CREATE TABLE notification_channels (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    kind          TEXT NOT NULL CHECK (kind IN ('webhook', 'email', 'syslog')),
    -- Settings in clear (JSON), secrets sealed by the vault (JSON field -> sealed text).
    config        TEXT NOT NULL DEFAULT '{}',
    secrets       TEXT NOT NULL DEFAULT '{}',
    -- Routes: the lowest severity sent, and (when not empty) only nodes with one of these tags
    -- or under one of these collectors (JSON arrays of names).
    min_severity  TEXT NOT NULL DEFAULT 'warning' CHECK (min_severity IN ('warning', 'critical')),
    route_tags    TEXT NOT NULL DEFAULT '[]',
    route_collectors TEXT NOT NULL DEFAULT '[]',
    -- Repeat an unacknowledged critical alert this often (0: never).
    repeat_secs   INTEGER NOT NULL DEFAULT 0 CHECK (repeat_secs >= 0),
    send_resolved INTEGER NOT NULL DEFAULT 1 CHECK (send_resolved IN (0, 1)),
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- The durable queue of notifications, and their delivery log once sent or given up.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id      INTEGER NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    alert_id        INTEGER REFERENCES alerts (id) ON DELETE CASCADE,
    event           TEXT NOT NULL CHECK (event IN ('firing', 'escalated', 'repeat', 'resolved', 'test')),
    -- The message as rendered when queued (JSON), so a restart sends exactly what was decided.
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
) STRICT;
CREATE INDEX notifications_due ON notifications (state, next_attempt_at);
CREATE INDEX notifications_alert ON notifications (alert_id);

-- Further parents of a node beside `nodes.parent_id` (a second uplink, a redundant switch): its
-- reachability alerts are suppressed only when every parent is down.
CREATE TABLE node_parents (
    node_id    INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    parent_id  INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    PRIMARY KEY (node_id, parent_id),
    CHECK (node_id <> parent_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX node_parents_parent ON node_parents (parent_id);
