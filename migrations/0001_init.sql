-- plantwatch metadata schema, version 1.
-- Timestamps are UNIX seconds (UTC). Secrets are never stored in clear: token and
-- key columns hold hashes, credential secrets hold AES-256-GCM ciphertext.
-- AUTOINCREMENT where an id is referenced from outside (audit rows, configs, clients), so
-- that a deleted object's id never names a new one.

CREATE TABLE settings (
    key         TEXT PRIMARY KEY NOT NULL,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT NOT NULL UNIQUE COLLATE NOCASE
                   CHECK (length(username) BETWEEN 1 AND 64),
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_login_at  INTEGER
) STRICT;
CREATE INDEX users_role ON users (role);

CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    source        TEXT,
    user_agent    TEXT,
    CHECK (expires_at >= created_at)
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    user_id     INTEGER REFERENCES users (id) ON DELETE SET NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT,
    source      TEXT,
    details     TEXT
) STRICT;
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_user ON audit_log (user_id);
CREATE INDEX audit_log_action ON audit_log (action);

CREATE TABLE remote_components (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL CHECK (kind IN ('collector', 'agent')),
    name           TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    machine_id     TEXT NOT NULL,
    hostname       TEXT,
    version        TEXT,
    api_key_hash   TEXT NOT NULL,
    approved       INTEGER NOT NULL DEFAULT 0 CHECK (approved IN (0, 1)),
    revoked        INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    is_local       INTEGER NOT NULL DEFAULT 0 CHECK (is_local IN (0, 1)),
    enrolled_with  INTEGER REFERENCES enrollment_tokens (id) ON DELETE SET NULL,
    node_id        INTEGER REFERENCES nodes (id) ON DELETE SET NULL,
    created_at     INTEGER NOT NULL,
    approved_at    INTEGER,
    last_seen_at   INTEGER,
    UNIQUE (kind, machine_id)
) STRICT;
CREATE INDEX remote_components_kind ON remote_components (kind, approved);

CREATE TABLE enrollment_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    token_hash  TEXT NOT NULL UNIQUE,
    created_by  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    max_uses    INTEGER CHECK (max_uses IS NULL OR max_uses > 0),
    uses        INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    revoked_at  INTEGER
) STRICT;

CREATE TABLE device_templates (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL UNIQUE,
    vendor            TEXT,
    description       TEXT,
    default_interval  INTEGER NOT NULL DEFAULT 10 CHECK (default_interval > 0),
    definition        TEXT NOT NULL,
    source_path       TEXT,
    checksum          TEXT NOT NULL,
    loaded_at         INTEGER NOT NULL
) STRICT;

CREATE TABLE device_template_fingerprints (
    id                   INTEGER PRIMARY KEY,
    template_id          INTEGER NOT NULL REFERENCES device_templates (id) ON DELETE CASCADE,
    sys_object_id_prefix TEXT NOT NULL,
    sys_descr_pattern    TEXT,
    priority             INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX device_template_fingerprints_template ON device_template_fingerprints (template_id);
CREATE INDEX device_template_fingerprints_prefix ON device_template_fingerprints (sys_object_id_prefix);

CREATE TABLE nodes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(name) BETWEEN 1 AND 255),
    address        TEXT NOT NULL CHECK (length(address) BETWEEN 1 AND 255),
    node_type      TEXT NOT NULL DEFAULT 'other'
                   CHECK (node_type IN ('network', 'server', 'storage', 'ups', 'plc', 'hmi', 'printer', 'other')),
    collector_id   INTEGER REFERENCES remote_components (id) ON DELETE SET NULL,
    template_id    INTEGER REFERENCES device_templates (id) ON DELETE SET NULL,
    interval_secs  INTEGER CHECK (interval_secs IS NULL OR interval_secs > 0),
    parent_id      INTEGER REFERENCES nodes (id) ON DELETE SET NULL CHECK (parent_id IS NULL OR parent_id <> id),
    notes          TEXT,
    health         TEXT NOT NULL DEFAULT 'discovering'
                   CHECK (health IN ('discovering', 'healthy', 'warning', 'critical', 'offline', 'maintenance')),
    health_reason  TEXT,
    health_changed_at INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX nodes_address ON nodes (address);
CREATE INDEX nodes_collector ON nodes (collector_id);
CREATE INDEX nodes_health ON nodes (health);
CREATE INDEX nodes_parent ON nodes (parent_id);
CREATE INDEX nodes_template ON nodes (template_id);

CREATE TABLE node_tags (
    node_id  INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    tag      TEXT NOT NULL CHECK (length(tag) BETWEEN 1 AND 64),
    PRIMARY KEY (node_id, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX node_tags_tag ON node_tags (tag);

CREATE TABLE credentials (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    kind        TEXT NOT NULL CHECK (kind IN ('snmp_v1', 'snmp_v2c', 'snmp_v3', 'windows', 'ssh')),
    -- Non-secret fields (user name, protocols, context) as JSON.
    params      TEXT NOT NULL DEFAULT '{}',
    -- Secret fields as JSON of {field: base64(nonce || ciphertext)}.
    secrets     TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE node_credentials (
    node_id        INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    credential_id  INTEGER NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    priority       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (node_id, credential_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX node_credentials_credential ON node_credentials (credential_id);

CREATE TABLE collector_targets (
    collector_id  INTEGER NOT NULL REFERENCES remote_components (id) ON DELETE CASCADE,
    node_id       INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    PRIMARY KEY (collector_id, node_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX collector_targets_node ON collector_targets (node_id);

CREATE TABLE collector_config_dirty (
    collector_id  INTEGER PRIMARY KEY REFERENCES remote_components (id) ON DELETE CASCADE,
    dirty_since   INTEGER NOT NULL,
    reason        TEXT
) STRICT;

CREATE TABLE collector_configs (
    collector_id  INTEGER PRIMARY KEY REFERENCES remote_components (id) ON DELETE CASCADE,
    config        TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    generated_at  INTEGER NOT NULL,
    reported_sha256 TEXT,
    reported_at   INTEGER
) STRICT;

CREATE TABLE discovery_jobs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT,
    collector_id   INTEGER REFERENCES remote_components (id) ON DELETE SET NULL,
    targets        TEXT NOT NULL,
    exclusions     TEXT NOT NULL DEFAULT '[]',
    credential_ids TEXT NOT NULL DEFAULT '[]',
    options        TEXT NOT NULL DEFAULT '{}',
    schedule       TEXT,
    state          TEXT NOT NULL DEFAULT 'queued'
                   CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    total          INTEGER NOT NULL DEFAULT 0 CHECK (total >= 0),
    done           INTEGER NOT NULL DEFAULT 0 CHECK (done >= 0),
    hosts_found    INTEGER NOT NULL DEFAULT 0,
    snmp_identified INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    created_by     INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at     INTEGER NOT NULL,
    claimed_at     INTEGER,
    started_at     INTEGER,
    finished_at    INTEGER,
    next_run_at    INTEGER
) STRICT;
CREATE INDEX discovery_jobs_state ON discovery_jobs (state, collector_id);

CREATE TABLE discovered_devices (
    id              INTEGER PRIMARY KEY,
    job_id          INTEGER NOT NULL REFERENCES discovery_jobs (id) ON DELETE CASCADE,
    address         TEXT NOT NULL,
    dns_name        TEXT,
    sys_name        TEXT,
    sys_descr       TEXT,
    sys_object_id   TEXT,
    sys_location    TEXT,
    sys_contact     TEXT,
    sys_uptime      INTEGER,
    vendor          TEXT,
    template_id     INTEGER REFERENCES device_templates (id) ON DELETE SET NULL,
    credential_id   INTEGER REFERENCES credentials (id) ON DELETE SET NULL,
    rtt_ms          REAL,
    open_ports      TEXT,
    existing_node_id INTEGER REFERENCES nodes (id) ON DELETE SET NULL,
    changed         INTEGER NOT NULL DEFAULT 0 CHECK (changed IN (0, 1)),
    status          TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'imported', 'ignored')),
    found_at        INTEGER NOT NULL,
    UNIQUE (job_id, address)
) STRICT;
CREATE INDEX discovered_devices_address ON discovered_devices (address);

CREATE TABLE alert_definitions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    builtin         INTEGER NOT NULL DEFAULT 0 CHECK (builtin IN (0, 1)),
    enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    description     TEXT,
    metric          TEXT,
    tag_matchers    TEXT NOT NULL DEFAULT '{}',
    scope_kind      TEXT NOT NULL DEFAULT 'all' CHECK (scope_kind IN ('all', 'type', 'tag', 'template', 'node')),
    scope_value     TEXT,
    aggregation     TEXT NOT NULL DEFAULT 'last' CHECK (aggregation IN ('last', 'avg', 'min', 'max', 'rate')),
    window_secs     INTEGER NOT NULL DEFAULT 60 CHECK (window_secs > 0),
    comparison      TEXT NOT NULL DEFAULT '>' CHECK (comparison IN ('>', '>=', '<', '<=', '==', '!=')),
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
    series           TEXT NOT NULL DEFAULT '',
    state            TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    severity         TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
    value            REAL,
    message          TEXT,
    flapping         INTEGER NOT NULL DEFAULT 0 CHECK (flapping IN (0, 1)),
    held             INTEGER NOT NULL DEFAULT 0 CHECK (held IN (0, 1)),
    acked_by         INTEGER REFERENCES users (id) ON DELETE SET NULL,
    acked_at         INTEGER,
    ack_comment      TEXT,
    started_at       INTEGER NOT NULL,
    fired_at         INTEGER,
    resolved_at      INTEGER,
    updated_at       INTEGER NOT NULL
) STRICT;
-- At most one open alert per (rule, node, series).
CREATE UNIQUE INDEX alerts_open ON alerts (definition_id, ifnull(node_id, 0), series) WHERE state <> 'resolved';
CREATE INDEX alerts_node ON alerts (node_id, state);
CREATE INDEX alerts_started ON alerts (started_at);

CREATE TABLE maintenance_windows (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    scope_kind    TEXT NOT NULL CHECK (scope_kind IN ('node', 'tag', 'collector')),
    scope_value   TEXT NOT NULL,
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER NOT NULL,
    recurrence    TEXT NOT NULL DEFAULT 'none' CHECK (recurrence IN ('none', 'weekly', 'monthly')),
    created_by    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL,
    CHECK (ends_at > starts_at)
) STRICT;
CREATE INDEX maintenance_windows_time ON maintenance_windows (starts_at, ends_at);

CREATE TABLE notification_channels (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('email', 'webhook', 'command')),
    config      TEXT NOT NULL DEFAULT '{}',
    secrets     TEXT NOT NULL DEFAULT '{}',
    min_severity TEXT NOT NULL DEFAULT 'warning' CHECK (min_severity IN ('warning', 'critical')),
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
