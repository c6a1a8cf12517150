//! Discovery on the server's side: import of found devices as nodes, and the watchdog that
//! ends jobs whose collector stopped reporting. The scanning itself is the collector's
//! (`plantwatch_collector::discovery`), wherever it runs.

use std::time::Duration;

use plantwatch_shared::api::{
    DeviceImport, DeviceSelection, DeviceStatus, ImportedNode, Job, NodeType, SkippedDevice,
};
use plantwatch_shared::rules::{MAX_NODE_NAME_LEN, name_problem};
use rusqlite::Connection;
use tokio::sync::watch;

use crate::db::nodes::{self, NodeFields};
use crate::db::{self, config_dirty, discovery};
use crate::inventory::Catalog;
use crate::state::AppState;

/// A running job whose collector has not reported for this long is failed (collectors report
/// at least every few seconds while scanning).
pub const STALE_AFTER_SECS: i64 = 120;

/// A free, valid node name for a device: its suggested name, else that name with the address,
/// else the address.
fn free_name(conn: &Connection, suggested: &str, address: &str) -> rusqlite::Result<String> {
    let candidates = [
        suggested.to_owned(),
        format!("{suggested}-{address}"),
        address.to_owned(),
    ];
    for name in candidates {
        if name_problem(&name, MAX_NODE_NAME_LEN).is_none()
            && nodes::id_by_name(conn, &name)?.is_none()
        {
            return Ok(name);
        }
    }
    Ok(format!("{address}-{}", crate::clock::unix_secs()))
}

/// Imports the selected devices of `job` as nodes of the job's collector, with the matched
/// template, the credential that answered and (unless told not to) a `tls` check for each open
/// TLS port, in the caller's transaction. Devices already
/// monitored, or imported before, are skipped with the reason.
pub fn import(
    conn: &Connection,
    job: &Job,
    selection: &DeviceSelection,
    now: i64,
) -> anyhow::Result<DeviceImport> {
    let catalog = Catalog::load(conn)?;
    let mut tags: Vec<String> = selection.tags.iter().map(|t| t.trim().to_owned()).collect();
    tags.sort();
    tags.dedup();
    let chosen = discovery::selected(conn, job.id, &selection.devices, selection.all)?;
    let mut outcome = DeviceImport::default();
    for wanted in &selection.devices {
        if !chosen.iter().any(|(d, _)| d.id == *wanted) {
            outcome.skipped.push(SkippedDevice {
                device_id: *wanted,
                address: String::new(),
                reason: format!("job {} found no device {wanted}", job.id),
            });
        }
    }
    for (device, credential_id) in chosen {
        let skip = |reason: String| SkippedDevice {
            device_id: device.id,
            address: device.address.clone(),
            reason,
        };
        if device.status == DeviceStatus::Imported {
            outcome.skipped.push(skip("imported before".into()));
            continue;
        }
        // With `all`, only what is still in the inbox.
        if selection.all && device.status != DeviceStatus::New {
            continue;
        }
        // Asked again, not taken from the selection: an earlier device of this import may
        // have just become the node this one is monitored by.
        if let Some(node) = discovery::monitoring_node(conn, device.id)? {
            outcome
                .skipped
                .push(skip(format!("already monitored as node {node:?}")));
            continue;
        }
        let template_id = device.template.as_deref().and_then(|t| catalog.template(t));
        let node_type = match &device.template {
            Some(name) => crate::templates::definitions(conn, [name.clone()])?
                .remove(name)
                .and_then(|def| def.node_type)
                .unwrap_or(NodeType::Other),
            None => NodeType::Other,
        };
        let name = free_name(conn, &device.suggested_name(), &device.address)?;
        let fields = NodeFields {
            name: name.clone(),
            address: device.address.clone(),
            node_type,
            tags: tags.clone(),
            collector_id: Some(job.collector_id),
            template_id,
            credential_ids: credential_id.into_iter().collect(),
            parent_id: None,
            interval_s: None,
            modbus_unit: None,
            notes: Some(format!("imported from discovery job {}", job.id)),
        };
        let node_id = nodes::insert(conn, &fields, now)?;
        if !selection.no_checks {
            for check in device.suggested_checks() {
                crate::db::checks::insert(conn, node_id, &check, now)?;
            }
        }
        discovery::mark_imported(conn, device.id, node_id)?;
        outcome.created.push(ImportedNode {
            device_id: device.id,
            node_id,
            name,
        });
    }
    if !outcome.created.is_empty() {
        config_dirty::mark(
            conn,
            [Some(job.collector_id)],
            "nodes imported from discovery",
            now,
        )?;
    }
    Ok(outcome)
}

/// Every 10 s, fails the running jobs whose collector went silent, keeping their results.
pub async fn watchdog(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = shutdown.changed() => return,
        }
        let result = state
            .db
            .write(|tx| -> Result<Vec<i64>, db::DbError> {
                let now = crate::clock::unix_secs();
                Ok(discovery::fail_stale(tx, now - STALE_AFTER_SECS, now)?)
            })
            .await;
        match result {
            Ok(ids) if !ids.is_empty() => tracing::warn!(
                jobs = ?ids,
                "Discovery jobs failed: their collector stopped reporting; partial results kept."
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "Checking discovery jobs failed."),
        }
    }
}
