//! Config delivery: each approved collector's configuration (its targets, with their
//! credentials decrypted), regenerated when its dirty flag is due and stored with its SHA-256 in
//! `collector_configs`, where `GET /remote-collectors/{id}/config` serves it with an `ETag`.
//!
//! The document holds nothing that changes between two generations of the same inventory, so
//! an unchanged inventory gives the same hash and the collector's pull answers `304`. Each
//! credential appears once (targets refer to it by id), decrypted once per generation.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context as _;
use plantwatch_shared::api::vsphere::{DEFAULT_VSPHERE_INTERVAL_S, NO_VM_NODES_TAG, VsphereTarget};
use plantwatch_shared::api::{CollectorConfig, NodeType, Target, TargetCredential};
use rusqlite::{Connection, OptionalExtension as _};
use tokio::sync::watch;

use crate::db::{self, Db, config_dirty};
use crate::vault::{Vault, config_aad, credential_aad};

/// A dirty flag is due when no change came for this long ...
pub const DEBOUNCE_SECS: i64 = 5;
/// ... or when its burst has lasted this long.
pub const LONGEST_DELAY_SECS: i64 = 60;
/// Poll interval of targets without their own or a template's.
pub const DEFAULT_INTERVAL_S: u32 = 10;
/// How often the regeneration loop looks for due flags.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Counts of the regeneration loop.
#[derive(Debug, Default)]
pub struct Stats {
    by_collector: std::sync::Mutex<HashMap<i64, u64>>,
}

impl Stats {
    /// Configurations of collector `id` generated since the server started.
    pub fn regenerations_of(&self, id: i64) -> u64 {
        self.by_collector
            .lock()
            .map(|counts| counts.get(&id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn count(&self, ids: impl IntoIterator<Item = i64>) {
        if let Ok(mut counts) = self.by_collector.lock() {
            for id in ids {
                *counts.entry(id).or_default() += 1;
            }
        }
    }
}

/// Builds collector `collector_id`'s configuration document.
pub fn build(
    conn: &Connection,
    vault: &Vault,
    collector_id: i64,
) -> anyhow::Result<CollectorConfig> {
    let mut targets: Vec<Target> = conn
        .prepare_cached(
            "SELECT n.id, n.name, n.address, n.node_type, t.name,
                    coalesce(n.interval_secs, t.default_interval, ?2), n.modbus_unit,
                    n.interval_secs, coalesce(t.default_interval, ?2),
                    EXISTS (SELECT 1 FROM node_tags nt WHERE nt.node_id = n.id AND nt.tag = ?3)
               FROM nodes n LEFT JOIN device_templates t ON t.id = n.template_id
              WHERE n.collector_id = ?1
                -- Hosts and VMs of a vCenter: its poll reads them, nothing else does.
                AND n.vsphere_owner_id IS NULL
              ORDER BY n.id",
        )?
        .query_map((collector_id, DEFAULT_INTERVAL_S, NO_VM_NODES_TAG), |r| {
            let node_type: String = r.get(3)?;
            Ok((
                (r.get(0)?, r.get(1)?, r.get(2)?, node_type, r.get(4)?),
                (r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?),
            ))
        })?
        .map(|row| -> anyhow::Result<Target> {
            let (
                (node_id, name, address, node_type, template),
                (interval_s, modbus_unit, own_interval, template_interval, no_vm_nodes),
            ) = row?;
            let node_type: NodeType = node_type.parse()?;
            let own_interval: Option<u32> = own_interval;
            let no_vm_nodes: bool = no_vm_nodes;
            // A vCenter's interval is its vSphere poll's; it is pinged as other nodes are.
            let (interval_s, vsphere) = if node_type.is_vsphere() {
                let settings = VsphereTarget {
                    interval_s: own_interval.unwrap_or(DEFAULT_VSPHERE_INTERVAL_S),
                    vm_nodes: !no_vm_nodes,
                };
                (template_interval, Some(settings))
            } else {
                (interval_s, None)
            };
            Ok(Target {
                node_id,
                name,
                address,
                node_type,
                template,
                interval_s,
                credential_ids: Vec::new(),
                checks: Vec::new(),
                modbus_unit,
                vsphere,
            })
        })
        .collect::<anyhow::Result<_>>()?;

    let mut opened: BTreeMap<i64, TargetCredential> = BTreeMap::new();
    let mut attached = conn.prepare_cached(
        "SELECT nc.node_id, c.id, c.name, c.kind, c.params, c.secrets, c.networks
           FROM node_credentials nc
           JOIN credentials c ON c.id = nc.credential_id
           JOIN nodes n ON n.id = nc.node_id
          WHERE n.collector_id = ?1
          ORDER BY nc.node_id, nc.priority, c.name",
    )?;
    let mut rows = attached.query([collector_id])?;
    let index: HashMap<i64, usize> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.node_id, i))
        .collect();
    while let Some(row) = rows.next()? {
        let node_id: i64 = row.get(0)?;
        let id: i64 = row.get(1)?;
        if let std::collections::btree_map::Entry::Vacant(slot) = opened.entry(id) {
            let kind: String = row.get(3)?;
            let params: String = row.get(4)?;
            let sealed: String = row.get(5)?;
            let networks: String = row.get(6)?;
            slot.insert(open_credential(
                vault,
                id,
                row.get(2)?,
                kind.parse()?,
                serde_json::from_str(&params)?,
                &sealed,
                serde_json::from_str(&networks)?,
            )?);
        }
        if let Some(&i) = index.get(&node_id) {
            // Never handed to a collector for an address outside the credential's networks
            // (the attachment was checked; the address may have changed since by a route
            // that did not check, such as a direct database edit).
            let networks = opened
                .get(&id)
                .map(|c| c.networks.as_slice())
                .unwrap_or(&[]);
            if plantwatch_shared::rules::address_in_networks(&targets[i].address, networks) {
                targets[i].credential_ids.push(id);
            } else {
                tracing::warn!(
                    node = %targets[i].name,
                    credential = id,
                    "A credential attached to an address outside its networks is not sent."
                );
            }
        }
    }
    for (node_id, check) in db::checks::of_collector(conn, collector_id)? {
        if let Some(&i) = index.get(&node_id) {
            targets[i].checks.push(check);
        }
    }
    // A device with an SNMP credential and no template still gets uptime and interfaces.
    for target in &mut targets {
        if target.template.is_none()
            && target
                .credential_ids
                .iter()
                .any(|id| opened.get(id).is_some_and(|c| c.kind.is_snmp()))
        {
            target.template = Some(crate::templates::FALLBACK_TEMPLATE.to_owned());
        }
    }
    let templates =
        crate::templates::definitions(conn, targets.iter().filter_map(|t| t.template.clone()))?;
    Ok(CollectorConfig {
        collector_id,
        credentials: opened.into_values().collect(),
        targets,
        templates,
        receivers: crate::db::events::receivers(conn, collector_id)?,
        // As recorded at start (`--topology-interval-secs`).
        topology_interval_s: crate::db::settings::get(conn, "topology_interval_secs")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(plantwatch_shared::api::DEFAULT_TOPOLOGY_INTERVAL_S),
    })
}

/// The metrics (`measurement.field`) a collector polls of `node_id` by SNMP: its template's
/// (the fallback when it has none), when it has a collector and an SNMP credential; else none.
pub fn collector_metrics(
    conn: &Connection,
    node_id: i64,
) -> rusqlite::Result<std::collections::HashSet<String>> {
    let polled: Option<Option<String>> = conn
        .query_row(
            "SELECT t.name FROM nodes n
               LEFT JOIN device_templates t ON t.id = n.template_id
              WHERE n.id = ?1 AND n.collector_id IS NOT NULL
                AND EXISTS (SELECT 1 FROM node_credentials nc
                              JOIN credentials c ON c.id = nc.credential_id
                             WHERE nc.node_id = n.id AND c.kind LIKE 'snmp%')",
            [node_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(template) = polled else {
        return Ok(Default::default());
    };
    let name = template.unwrap_or_else(|| crate::templates::FALLBACK_TEMPLATE.to_owned());
    let definitions = crate::templates::definitions(conn, [name])?;
    Ok(definitions
        .values()
        .flat_map(|def| {
            def.scalars
                .iter()
                .flat_map(|g| {
                    g.fields
                        .iter()
                        .map(move |f| format!("{}.{}", g.measurement, f.name))
                })
                .chain(def.tables.iter().flat_map(|t| {
                    t.fields
                        .iter()
                        .map(move |f| format!("{}.{}", t.measurement, f.name))
                }))
                .collect::<Vec<_>>()
        })
        .collect())
}

/// A credential with its secrets opened, for the collector that uses it.
pub fn open_credential(
    vault: &Vault,
    id: i64,
    name: String,
    kind: plantwatch_shared::api::CredentialKind,
    params: plantwatch_shared::api::CredentialParams,
    sealed: &str,
    networks: Vec<String>,
) -> anyhow::Result<TargetCredential> {
    let secrets = vault
        .open_all(sealed, |field| credential_aad(id, field))
        .with_context(|| format!("opening the secrets of credential {id}"))?;
    Ok(TargetCredential {
        id,
        name,
        kind,
        params,
        secrets,
        networks,
    })
}

/// Regenerates and stores collector `collector_id`'s configuration and clears its flag, in the
/// caller's transaction. Returns the new SHA-256.
pub fn regenerate(
    conn: &Connection,
    vault: &Vault,
    collector_id: i64,
    now: i64,
) -> anyhow::Result<String> {
    let config = build(conn, vault, collector_id)?;
    let text = serde_json::to_string(&config)?;
    let sha256 = plantwatch_shared::sha256_hex(text.as_bytes());
    // It holds credentials in clear: stored sealed, like them.
    let sealed = vault.seal(&config_aad(collector_id), &text)?;
    conn.execute(
        "INSERT INTO collector_configs (collector_id, config, sha256, generated_at, target_count)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (collector_id) DO UPDATE
            SET config = excluded.config, sha256 = excluded.sha256,
                generated_at = excluded.generated_at, target_count = excluded.target_count",
        (
            collector_id,
            &sealed,
            &sha256,
            now,
            config.targets.len() as i64,
        ),
    )?;
    config_dirty::clear(conn, collector_id)?;
    Ok(sha256)
}

/// The SHA-256 of a collector's stored configuration (all a `304` needs).
pub fn stored_sha256(conn: &Connection, collector_id: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT sha256 FROM collector_configs WHERE collector_id = ?1",
        [collector_id],
        |r| r.get(0),
    )
    .optional()
}

/// The stored configuration of a collector, opened: (document, SHA-256).
pub fn stored(
    conn: &Connection,
    vault: &Vault,
    collector_id: i64,
) -> anyhow::Result<Option<(String, String)>> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT config, sha256 FROM collector_configs WHERE collector_id = ?1",
            [collector_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((sealed, sha256)) = row else {
        return Ok(None);
    };
    let document = vault
        .open(&config_aad(collector_id), &sealed)
        .with_context(|| format!("opening the stored configuration of collector {collector_id}"))?;
    Ok(Some((document.into_inner(), sha256)))
}

/// Regenerates every approved collector's configuration (at server start).
pub async fn regenerate_all(db: &Db, vault: &Vault, stats: &Stats) -> anyhow::Result<()> {
    let vault = vault.clone();
    let ids = db
        .write(move |tx| -> anyhow::Result<Vec<i64>> {
            let now = crate::clock::unix_secs();
            let ids = db::components::approved_collectors(tx)?;
            for id in &ids {
                regenerate(tx, &vault, *id, now)?;
            }
            Ok(ids)
        })
        .await
        .context("generating the collectors' configurations")?;
    stats.count(ids);
    Ok(())
}

/// The loop: every second, regenerates the configurations whose flag is due.
pub async fn run(
    db: Db,
    vault: Vault,
    stats: std::sync::Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        // A read first: most seconds nothing is due, and the loop must not take the write lock
        // that every change of the inventory waits for.
        let due = db
            .call(move |conn| {
                config_dirty::due(
                    conn,
                    crate::clock::unix_secs(),
                    DEBOUNCE_SECS,
                    LONGEST_DELAY_SECS,
                )
                .map_err(db::DbError::from)
            })
            .await;
        match due {
            Ok(due) if due.is_empty() => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "Looking for due collector configurations failed.");
                continue;
            }
        }
        let vault = vault.clone();
        let done = db
            .write(move |tx| -> anyhow::Result<Vec<(i64, String)>> {
                let now = crate::clock::unix_secs();
                let due = config_dirty::due(tx, now, DEBOUNCE_SECS, LONGEST_DELAY_SECS)?;
                due.into_iter()
                    .map(|id| Ok((id, regenerate(tx, &vault, id, now)?)))
                    .collect()
            })
            .await;
        match done {
            Ok(done) => {
                for (collector_id, sha256) in &done {
                    tracing::info!(collector_id, %sha256, "Collector configuration regenerated.");
                }
                stats.count(done.into_iter().map(|(id, _)| id));
            }
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "Regenerating collector configurations failed."
                );
            }
        }
    }
}
