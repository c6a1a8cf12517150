//! The metadata database `plantwatch.db`: one r2d2 pool of SQLite connections (WAL, foreign
//! keys, busy timeout), the migration runner, and one module of SQL per resource.
//!
//! Handlers never hold a connection across an `.await`: [`Db::call`] runs a closure on the
//! blocking pool and hands back its result; [`Db::write`] does the same inside one IMMEDIATE
//! transaction that commits only when the closure succeeds.

pub mod alerts;
pub mod audit;
pub mod catalog;
pub mod checks;
pub mod components;
pub mod config_dirty;
pub mod credentials;
pub mod discovery;
pub mod events;
pub mod host;
pub mod nodes;
pub mod notify;
pub mod sessions;
pub mod settings;
pub mod templates;
pub mod tokens;
pub mod topology;
pub mod users;
pub mod vsphere;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension as _};
use time::OffsetDateTime;

/// Migrations compiled into this binary, in order. Never edit one that has landed; add one.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../../migrations/0001_init.sql"),
    ),
    (
        "0002_inventory",
        include_str!("../../../migrations/0002_inventory.sql"),
    ),
    (
        "0003_components",
        include_str!("../../../migrations/0003_components.sql"),
    ),
    (
        "0004_alerting",
        include_str!("../../../migrations/0004_alerting.sql"),
    ),
    (
        "0005_discovery",
        include_str!("../../../migrations/0005_discovery.sql"),
    ),
    (
        "0006_credential_networks",
        include_str!("../../../migrations/0006_credential_networks.sql"),
    ),
    (
        "0007_ignored_series",
        include_str!("../../../migrations/0007_ignored_series.sql"),
    ),
    (
        "0008_directory_users",
        include_str!("../../../migrations/0008_directory_users.sql"),
    ),
    (
        "0009_checks",
        include_str!("../../../migrations/0009_checks.sql"),
    ),
    (
        "0010_dns_checks",
        include_str!("../../../migrations/0010_dns_checks.sql"),
    ),
    (
        "0011_events",
        include_str!("../../../migrations/0011_events.sql"),
    ),
    (
        "0012_event_rules",
        include_str!("../../../migrations/0012_event_rules.sql"),
    ),
    (
        "0013_topology",
        include_str!("../../../migrations/0013_topology.sql"),
    ),
    (
        "0014_auto_parents",
        include_str!("../../../migrations/0014_auto_parents.sql"),
    ),
    (
        "0015_modbus",
        include_str!("../../../migrations/0015_modbus.sql"),
    ),
    (
        "0016_vsphere",
        include_str!("../../../migrations/0016_vsphere.sql"),
    ),
    ("0017_ha", include_str!("../../../migrations/0017_ha.sql")),
    (
        "0018_host",
        include_str!("../../../migrations/0018_host.sql"),
    ),
];

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const POOL_SIZE: u32 = 16;

/// Failures of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database task failed: {0}")]
    Task(String),
    #[error(
        "the database {path} has schema version {found}, newer than this plantwatch-server \
         knows ({known}); it was written by a newer release. Run that release, or restore a \
         backup made before the upgrade"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("migration {name} failed, nothing was applied: {source}")]
    Migration {
        name: String,
        source: rusqlite::Error,
    },
}

/// A handle on the connection pool; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<SqliteConnectionManager>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if needed) the database at `path`, applies pending migrations, and
    /// builds the pool.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        Db::open_with(path, MIGRATIONS)
    }

    /// Opens a database with its own list of migrations (the metric store's `metrics.db`).
    pub fn open_with(path: &Path, migrations: &[(&str, &str)]) -> Result<Db, DbError> {
        // WAL is a property of the file: set it once, on one connection, before the pool exists
        // (setting it from every pooled connection races into "database is locked").
        let mut conn = Connection::open(path)?;
        // Password and token hashes live here: owner only. SQLite gives the -wal and -shm files
        // the same mode as the database.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| DbError::Task(format!("restricting {}: {e}", path.display())))?;
        configure(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        apply_migrations(&mut conn, &path.display().to_string(), migrations)?;
        drop(conn);

        let manager = SqliteConnectionManager::file(path).with_init(|c| configure(c));
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(Db { pool })
    }

    /// Connections open and idle in the pool.
    pub fn usage(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(DbError::from)?;
            f(&mut conn)
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// Runs `f` in one IMMEDIATE transaction on the blocking pool (the write lock is taken at
    /// once, so reads inside `f` see what it will write over): committed when `f` succeeds,
    /// rolled back when it fails.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + From<rusqlite::Error> + Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
    }

    /// A pooled connection for synchronous start-up work.
    pub fn get(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, DbError> {
        Ok(self.pool.get()?)
    }

    /// A connection if one is free now, without waiting.
    pub fn try_get(&self) -> Option<r2d2::PooledConnection<SqliteConnectionManager>> {
        self.pool.try_get()
    }
}

/// One connection to an existing database, migrated and configured, for offline commands.
pub fn open_connection(path: &Path) -> Result<Connection, DbError> {
    if !path.exists() {
        return Err(DbError::Task(format!(
            "there is no database at {}; check --data-dir",
            path.display()
        )));
    }
    let mut conn = Connection::open(path)?;
    configure(&conn)?;
    migrate(&mut conn, &path.display().to_string())?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Reads map the file instead of copying pages through read(2): long chart queries read
    // thousands of chunks.
    conn.pragma_update(None, "mmap_size", 1i64 << 30)?;
    Ok(())
}

/// Applies every migration the database has not seen, all in one transaction, and records each
/// in `schema_migrations`. A database newer than this binary is refused.
pub fn migrate(conn: &mut Connection, path: &str) -> Result<(), DbError> {
    apply_migrations(conn, path, MIGRATIONS)
}

pub fn apply_migrations(
    conn: &mut Connection,
    path: &str,
    migrations: &[(&str, &str)],
) -> Result<(), DbError> {
    let known = migrations.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > known {
        return Err(DbError::TooNew {
            path: path.to_owned(),
            found,
            known,
        });
    }
    if found == known {
        return Ok(());
    }
    // SQLite's way to change a table (a new one, copied, renamed): foreign keys off while the
    // migrations run, so dropping the old table cascades nothing; checked before the commit.
    // The setting cannot change inside a transaction, so it is switched here, and back after.
    let enforced: bool = conn.pragma_query_value(None, "foreign_keys", |row| row.get(0))?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let applied = apply_pending(conn, found, known, migrations);
    if enforced {
        conn.pragma_update(None, "foreign_keys", "ON")?;
    }
    applied
}

fn apply_pending(
    conn: &mut Connection,
    found: i64,
    known: i64,
    migrations: &[(&str, &str)],
) -> Result<(), DbError> {
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     INTEGER PRIMARY KEY,
             name        TEXT NOT NULL,
             applied_at  INTEGER NOT NULL
         ) STRICT;",
    )?;
    for (index, (name, sql)) in migrations.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        tx.execute_batch(sql).map_err(|source| DbError::Migration {
            name: (*name).to_owned(),
            source,
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            (version, name, crate::clock::unix_secs()),
        )?;
        tracing::info!(version, name, "Applied migration.");
    }
    tx.pragma_update(None, "user_version", known)?;
    let violations: Option<String> = tx
        .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
        .optional()?;
    if let Some(table) = violations {
        return Err(DbError::Migration {
            name: "foreign key check".to_owned(),
            source: rusqlite::Error::InvalidParameterName(format!(
                "foreign key violations in {table}"
            )),
        });
    }
    tx.commit()?;
    Ok(())
}

/// A text column parsed into one of the shared enums; unknown text is a conversion error.
pub fn parsed<T: std::str::FromStr>(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(index)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A JSON text column parsed into `T`; malformed JSON is a conversion error.
pub fn json_column<T: serde::de::DeserializeOwned>(
    row: &rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// `value` as the JSON text a column stores.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// [`parsed`] for a column that may be NULL.
pub fn parsed_opt<T: std::str::FromStr>(
    row: &rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(_) => parsed(row, index).map(Some),
    }
}

/// UNIX seconds as RFC 3339 text (UTC), for messages and reports.
pub fn rfc3339(secs: i64) -> String {
    to_time(secs)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A timestamp column as a date-time.
pub fn to_time(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_count(conn: &Connection) -> i64 {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn migrations_apply_once_and_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, "t.db").unwrap();
        let tables = table_count(&conn);
        assert!(tables >= 23, "only {tables} tables");
        drop(conn);
        Db::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "database readable by others");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, "t.db").unwrap();
        assert_eq!(table_count(&conn), tables);
        let recorded: Vec<String> = conn
            .prepare("SELECT name FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            recorded,
            vec![
                "0001_init",
                "0002_inventory",
                "0003_components",
                "0004_alerting",
                "0005_discovery",
                "0006_credential_networks",
                "0007_ignored_series",
                "0008_directory_users",
                "0009_checks",
                "0010_dns_checks",
                "0011_events",
                "0012_event_rules",
                "0013_topology",
                "0014_auto_parents",
                "0015_modbus",
                "0016_vsphere",
                "0017_ha",
                "0018_host"
            ]
        );
    }

    #[test]
    fn a_newer_database_is_refused_with_a_clear_message() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = migrate(&mut conn, "x.db").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("schema version 99"), "{text}");
        assert!(text.contains("newer"), "{text}");
    }

    #[test]
    fn a_failing_migration_leaves_nothing_half_applied() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken = [
            ("0001_a", "CREATE TABLE a (x INTEGER);"),
            ("0002_b", "CREATE TABLE b (x INTEGER); CREATE TABLE oops ("),
        ];
        let err = apply_migrations(&mut conn, "mem", &broken).unwrap_err();
        assert!(err.to_string().contains("migration 0002_b failed"), "{err}");
        assert_eq!(table_count(&conn), 0);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 0);
    }

    #[test]
    fn every_design_table_exists() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "mem").unwrap();
        for table in [
            "users",
            "sessions",
            "settings",
            "audit_log",
            "nodes",
            "node_tags",
            "credentials",
            "node_credentials",
            "remote_components",
            "enrollment_tokens",
            "collector_targets",
            "collector_config_dirty",
            "collector_configs",
            "device_templates",
            "device_template_fingerprints",
            "discovery_jobs",
            "discovered_devices",
            "alert_definitions",
            "alerts",
            "maintenance_windows",
            "notification_channels",
            "alert_events",
            "health_changes",
            "notifications",
        ] {
            let found: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(found, 1, "table {table} missing");
        }
    }

    #[test]
    fn constraints_reject_bad_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        migrate(&mut conn, "mem").unwrap();
        let bad_role = conn.execute(
            "INSERT INTO users (username, password_hash, role, created_at, updated_at)
             VALUES ('a', 'h', 'root', 0, 0)",
            [],
        );
        assert!(bad_role.is_err());
        let orphan_session = conn.execute(
            "INSERT INTO sessions (user_id, token_hash, created_at, last_seen_at, expires_at)
             VALUES (42, 'h', 0, 0, 1)",
            [],
        );
        assert!(orphan_session.is_err());
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;

    #[test]
    fn sweeping_removes_idle_and_aged_sessions_only() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        migrate(&mut conn, "mem").unwrap();
        let user = users::insert(
            &conn,
            "ana",
            "hash",
            plantwatch_shared::api::Role::Viewer,
            0,
        )
        .unwrap();
        // (last_seen, expires): live; idle for too long; past its absolute expiry.
        sessions::insert(&conn, user.id, "live", 1000, 5000, None, None).unwrap();
        sessions::insert(&conn, user.id, "idle", 100, 5000, None, None).unwrap();
        sessions::insert(&conn, user.id, "aged", 1000, 1100, None, None).unwrap();
        let swept = sessions::delete_expired(&conn, 1200, 500).unwrap();
        assert_eq!(swept, 2);
        assert!(sessions::by_token_hash(&conn, "live").unwrap().is_some());
    }
}
