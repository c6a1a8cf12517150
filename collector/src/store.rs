//! What the collector keeps in its state directory besides its enrollment: the last good
//! configuration exactly as the server sent it (`config.json`, mode 0600: it holds
//! credentials), and its status (`status.json`) for `plantwatch-collector status`.

use std::path::{Path, PathBuf};

use plantwatch_shared::api::CollectorConfig;
use plantwatch_shared::daemon::{read_json, write_json, write_private};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// File of the last good configuration.
pub const CONFIG_FILE: &str = "config.json";
/// File of the daemon's status.
pub const STATUS_FILE: &str = "status.json";

/// A configuration with its SHA-256 (the server's `ETag`).
#[derive(Debug, Clone, PartialEq)]
pub struct HeldConfig {
    pub sha256: String,
    pub config: CollectorConfig,
}

/// Reads the saved configuration; `None` when there is none yet.
pub fn load_config(dir: &Path) -> anyhow::Result<Option<HeldConfig>> {
    Ok(
        read_json(&dir.join(CONFIG_FILE))?.map(|(config, bytes)| HeldConfig {
            sha256: plantwatch_shared::sha256_hex(&bytes),
            config,
        }),
    )
}

/// Saves a configuration exactly as received, atomically.
pub fn save_config(dir: &Path, body: &[u8]) -> anyhow::Result<()> {
    Ok(write_private(&dir.join(CONFIG_FILE), body)?)
}

/// What `status` prints, written by the running daemon.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub component_id: i64,
    pub server_url: String,
    /// `waiting for approval`, `connected`, `unreachable`, `stopped`, …
    pub state: String,
    pub config_sha256: Option<String>,
    pub target_count: usize,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub config_received_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_contact_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_report_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    pub pid: u32,
    /// Metrics waiting to be delivered.
    #[serde(default)]
    pub outbox: Option<plantwatch_shared::api::OutboxStatus>,
}

/// Path of the status file in `dir`.
pub fn status_path(dir: &Path) -> PathBuf {
    dir.join(STATUS_FILE)
}

/// Writes the status file.
pub fn save_status(dir: &Path, status: &Status) -> anyhow::Result<()> {
    Ok(write_json(&status_path(dir), status)?)
}

/// Reads the status file, if the daemon ever ran.
pub fn load_status(dir: &Path) -> anyhow::Result<Option<Status>> {
    Ok(read_json(&status_path(dir))?.map(|(status, _)| status))
}
