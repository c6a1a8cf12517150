//! Collectors and agents as the domain sees them: when one was last heard from (its stored
//! `last_seen_at` or the newer in-memory presence of its API key), its status, and the view
//! the API and `/metrics` show.

use plantwatch_shared::api::{Component, ComponentKind, ComponentStatus, OFFLINE_AFTER_SECS};

use crate::auth::api_keys::Presence;
use crate::db::components::ComponentRow;
use crate::db::to_time;

/// When the component was last heard from: the newer of its stored time and its key's
/// presence in memory (written to the database only now and then).
pub fn last_seen(presence: &Presence, row: &ComponentRow) -> Option<i64> {
    match (row.last_seen_at, presence.last_seen(row.id)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Revoked, pending, or online when heard from within [`OFFLINE_AFTER_SECS`] of `now`.
pub fn status_of(
    revoked: bool,
    approved: bool,
    last_seen: Option<i64>,
    now: i64,
) -> ComponentStatus {
    if revoked {
        ComponentStatus::Revoked
    } else if !approved {
        ComponentStatus::Pending
    } else if last_seen.is_some_and(|at| now - at < OFFLINE_AFTER_SECS) {
        ComponentStatus::Online
    } else {
        ComponentStatus::Offline
    }
}

/// A component row as the API shows it, with its presence as of `now`.
pub fn view(presence: &Presence, row: ComponentRow, now: i64) -> Component {
    let last_seen = last_seen(presence, &row);
    let status = status_of(row.revoked, row.approved, last_seen, now);
    let collector = row.kind == ComponentKind::Collector;
    let in_sync = match (&row.reported_sha256, &row.config_sha256) {
        (Some(reported), Some(current)) if collector => Some(reported == current),
        _ => None,
    };
    Component {
        id: row.id,
        kind: row.kind,
        name: row.name,
        status,
        is_local: row.is_local,
        machine_id: row.machine_id,
        hostname: row.hostname,
        version: row.version,
        enrolled_with: row.enrolled_with,
        created_at: to_time(row.created_at),
        approved_at: row.approved_at.map(to_time),
        last_seen_at: last_seen.map(to_time),
        node_id: row.node_id,
        node: row.node,
        target_count: collector.then(|| row.target_count.clamp(0, i64::from(u32::MAX)) as u32),
        config_sha256: if collector { row.config_sha256 } else { None },
        reported_sha256: if collector { row.reported_sha256 } else { None },
        config_in_sync: in_sync,
        outbox: row.report.as_ref().and_then(|r| r.outbox),
        events: row.report.as_ref().and_then(|r| r.events),
        last_errors: row.report.map(|r| r.errors).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_go_offline_30_s_after_their_last_contact() {
        let now = 1_000;
        assert_eq!(
            status_of(false, true, Some(now - 29), now),
            ComponentStatus::Online
        );
        assert_eq!(
            status_of(false, true, Some(now - 30), now),
            ComponentStatus::Offline
        );
        assert_eq!(status_of(false, true, None, now), ComponentStatus::Offline);
        assert_eq!(
            status_of(false, false, Some(now), now),
            ComponentStatus::Pending
        );
        assert_eq!(
            status_of(true, false, Some(now), now),
            ComponentStatus::Revoked
        );
    }
}
