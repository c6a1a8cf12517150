-- Discovery: the never-used tables of 0001 replaced by what scan jobs, resumable runs, the
-- discovery inbox and remembered dismissals need.

DROP TABLE discovered_devices;
DROP TABLE discovery_jobs;

CREATE TABLE discovery_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    collector_id    INTEGER NOT NULL REFERENCES remote_components (id) ON DELETE CASCADE,
    targets         TEXT NOT NULL,              -- JSON array of entries as given
    exclusions      TEXT NOT NULL DEFAULT '[]',
    credential_ids  TEXT NOT NULL DEFAULT '[]', -- JSON array, in the order tried
    options         TEXT NOT NULL,              -- JSON ScanOptions
    every_secs      INTEGER CHECK (every_secs IS NULL OR every_secs >= 60),
    repeat_of       INTEGER REFERENCES discovery_jobs (id) ON DELETE SET NULL,
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    total           INTEGER NOT NULL CHECK (total >= 0),
    done            INTEGER NOT NULL DEFAULT 0 CHECK (done >= 0),
    resume_at       INTEGER NOT NULL DEFAULT 0 CHECK (resume_at >= 0),
    error           TEXT,
    created_by      INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    progress_at     INTEGER,
    finished_at     INTEGER,
    next_run_at     INTEGER
) STRICT;
CREATE INDEX discovery_jobs_work ON discovery_jobs (collector_id, state);
CREATE INDEX discovery_jobs_due ON discovery_jobs (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE discovered_devices (
    id              INTEGER PRIMARY KEY,
    job_id          INTEGER NOT NULL REFERENCES discovery_jobs (id) ON DELETE CASCADE,
    collector_id    INTEGER NOT NULL REFERENCES remote_components (id) ON DELETE CASCADE,
    address         TEXT NOT NULL,
    address_key     BLOB NOT NULL,          -- sorts numerically, IPv4 first
    dns_name        TEXT,
    sys_name        TEXT,
    sys_descr       TEXT,
    sys_object_id   TEXT,
    sys_location    TEXT,
    sys_contact     TEXT,
    sys_uptime_secs INTEGER,
    vendor          TEXT,
    template        TEXT,
    credential_id   INTEGER REFERENCES credentials (id) ON DELETE SET NULL,
    rtt_ms          REAL,
    open_ports      TEXT NOT NULL DEFAULT '[]',
    found_by        TEXT NOT NULL CHECK (found_by IN ('icmp', 'tcp', 'snmp')),
    seen_before     INTEGER NOT NULL DEFAULT 0 CHECK (seen_before IN (0, 1)),
    changes         TEXT NOT NULL DEFAULT '[]',
    status          TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'imported', 'dismissed')),
    node_id         INTEGER REFERENCES nodes (id) ON DELETE SET NULL,
    found_at        INTEGER NOT NULL,
    UNIQUE (job_id, address)
) STRICT;
CREATE INDEX discovered_devices_history ON discovered_devices (collector_id, address, job_id);

-- Devices an operator does not want, per collector (addresses repeat across plant networks):
-- later scans file them as dismissed at once.
CREATE TABLE discovery_dismissals (
    collector_id    INTEGER NOT NULL REFERENCES remote_components (id) ON DELETE CASCADE,
    address         TEXT NOT NULL,
    dismissed_by    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    dismissed_at    INTEGER NOT NULL,
    PRIMARY KEY (collector_id, address)
) WITHOUT ROWID, STRICT;
