//! High availability: what an active/standby pair tells its clients (`docs/ha.md`).

use serde::{Deserialize, Serialize};

use crate::Fingerprint;

/// Response header with the term of the active server that answered: a client that sees it
/// change knows another server has taken over, and resends what it sent in the grace period.
pub const TERM_HEADER: &str = "x-plantwatch-term";

/// One server of a pair, as clients reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerAddress {
    pub url: String,
    /// `None` only for a plain-HTTP development server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
}

/// Which part a server plays in its pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HaRole {
    /// Holds the lease: serves the API, evaluates alerts, sends notifications.
    Active,
    /// Follows the active's replica; answers `503 standby` with the active's address.
    Standby,
}

impl HaRole {
    pub fn as_str(self) -> &'static str {
        match self {
            HaRole::Active => "active",
            HaRole::Standby => "standby",
        }
    }
}

impl std::fmt::Display for HaRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pair as one of its servers sees it: in `GET /healthz` and in a standby's `503`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaHealth {
    /// This server's name in the pair.
    pub name: String,
    pub role: HaRole,
    /// The lease's term: raised by every takeover.
    pub term: u64,
    /// The active server, when one holds the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ServerAddress>,
    /// Every server of the pair (this one included), for clients to fail over to.
    pub servers: Vec<ServerAddress>,
}

impl HaHealth {
    /// The servers of the pair other than `url` (the one a client was first given).
    pub fn others_than(&self, url: &str) -> Vec<ServerAddress> {
        let own = crate::client::normalize_url(url).ok();
        self.servers
            .iter()
            .filter(|s| crate::client::normalize_url(&s.url).ok() != own)
            .cloned()
            .collect()
    }
}

/// A member of the pair as `plantwatch-server ha status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HaMember {
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    pub role: HaRole,
    pub term: u64,
    /// Milliseconds since the member last wrote its status (it writes every second).
    pub seen_ms_ago: u64,
    /// A standby's delay behind the active: how old the newest change in its copy is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_lag_ms: Option<u64>,
}

/// `plantwatch-server ha status --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HaStatus {
    pub term: u64,
    /// Who holds the lease (`None` before the first server took it, or after a release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Milliseconds since the lease was last renewed.
    pub lease_age_ms: u64,
    pub members: Vec<HaMember>,
}
