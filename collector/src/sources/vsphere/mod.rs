//! vSphere: each node polled through the vSphere API (a `vcenter` or `esxi` node with a
//! `vsphere` credential) has its own task. Every poll (300 s unless the node says) reads the
//! inventory — datacenters, clusters, hosts, VMs, datastores — through one container view and
//! the property collector paged at 500 objects, then the latest real-time performance sample
//! of the hosts and powered-on VMs (`QueryPerf`, batched). The inventory goes to the server,
//! which keeps hosts and VMs as nodes and answers their node ids; the metrics go out through
//! the outbox like any other. One session per vCenter, renewed when the vCenter says it expired
//! (a restarted vCenter included); a refused login is one clear error, logged once.

mod soap;
mod xml;

#[cfg(test)]
mod real;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plantwatch_shared::api::vsphere::{
    PAGE_SIZE, VsphereDatastore, VsphereHost, VsphereInventory, VsphereSync, VsphereVm,
};
use plantwatch_shared::api::{CollectorConfig, CredentialKind, Target};
use plantwatch_shared::client::Client;
use plantwatch_shared::lineproto::Writer;
use plantwatch_shared::metric_names as m;
use plantwatch_shared::push::LineSender;
use plantwatch_shared::{Fingerprint, Secret};

pub use soap::{Endpoint, MoRef, Session, SoapError, sdk_url};

use super::Tasks;

/// Wait for one call's answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Entities per `QueryPerf` call.
pub const PERF_BATCH: usize = 250;

/// The performance counters read, as `group.name.rollup`.
const COUNTERS: [&str; 4] = [
    "cpu.usage.average",
    "mem.usage.average",
    "disk.usage.average",
    "net.usage.average",
];

/// The latest real-time sample of one host or VM.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Perf {
    pub cpu_pct: Option<f64>,
    pub memory_pct: Option<f64>,
    pub disk_bytes_per_s: Option<f64>,
    pub net_bytes_per_s: Option<f64>,
}

/// What one poll read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub inventory: VsphereInventory,
    /// By moref.
    pub perf: HashMap<String, Perf>,
}

/// The counter ids of [`COUNTERS`], in that order, as this vCenter numbers them.
async fn counter_ids(session: &Session) -> Result<[Option<i32>; 4], SoapError> {
    let known = session.counters().await?;
    Ok(COUNTERS.map(|name| known.get(name).copied()))
}

/// Where an object sits: its datacenter and cluster, found by walking up the parents.
struct Tree {
    /// id → (type, name, parent id).
    objects: HashMap<String, (String, String, Option<String>)>,
}

impl Tree {
    fn place<'a>(&'a self, mut id: Option<&'a str>) -> (Option<String>, Option<String>) {
        let (mut datacenter, mut cluster) = (None, None);
        let mut hops = 0;
        while let Some(at) = id {
            let Some((kind, name, parent)) = self.objects.get(at) else {
                break;
            };
            match kind.as_str() {
                "Datacenter" => datacenter = Some(name.clone()),
                "ClusterComputeResource" => cluster = cluster.or(Some(name.clone())),
                _ => {}
            }
            id = parent.as_deref();
            hops += 1;
            if hops > 64 {
                break; // no tree is this deep: a loop
            }
        }
        (datacenter, cluster)
    }
}

/// Reads the inventory, and the performance of hosts and (with `vm_perf`) powered-on VMs.
pub async fn read(session: &Session, vm_perf: bool) -> Result<Reading, SoapError> {
    let content = session.content().await?;
    const KINDS: [&str; 7] = [
        "Folder",
        "Datacenter",
        "ComputeResource",
        "ClusterComputeResource",
        "HostSystem",
        "VirtualMachine",
        "Datastore",
    ];
    let view = session.container_view(&KINDS).await?;
    let specs: [(&str, &[&str]); 7] = [
        ("Folder", &["name", "parent"]),
        ("Datacenter", &["name", "parent"]),
        ("ComputeResource", &["name", "parent"]),
        ("ClusterComputeResource", &["name", "parent"]),
        (
            "HostSystem",
            &[
                "name",
                "parent",
                "runtime.connectionState",
                "runtime.powerState",
                "runtime.inMaintenanceMode",
            ],
        ),
        (
            "VirtualMachine",
            &[
                "name",
                "runtime.host",
                "runtime.powerState",
                "guest.ipAddress",
                "config.guestFullName",
                "config.template",
            ],
        ),
        (
            "Datastore",
            &[
                "name",
                "parent",
                "summary.capacity",
                "summary.freeSpace",
                "summary.accessible",
                "summary.type",
            ],
        ),
    ];
    let objects = session.retrieve_view(&view, &specs, PAGE_SIZE).await;
    session.destroy_view(&view).await;
    let objects = objects?;

    let tree = Tree {
        objects: objects
            .iter()
            .filter(|o| o.obj.kind != "VirtualMachine" && o.obj.kind != "Datastore")
            .map(|o| {
                (
                    o.obj.id.clone(),
                    (
                        o.obj.kind.clone(),
                        o.text("name").unwrap_or_default().to_owned(),
                        o.text("parent").map(str::to_owned),
                    ),
                )
            })
            .collect(),
    };
    let mut reading = Reading::default();
    reading.inventory.about = content.about.clone();
    let mut host_place: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    for object in objects.iter().filter(|o| o.obj.kind == "HostSystem") {
        let (datacenter, cluster) = tree.place(object.text("parent"));
        host_place.insert(object.obj.id.clone(), (datacenter.clone(), cluster.clone()));
        reading.inventory.hosts.push(VsphereHost {
            moref: object.obj.id.clone(),
            name: object.text("name").unwrap_or(&object.obj.id).to_owned(),
            datacenter,
            cluster,
            connection_state: object
                .text("runtime.connectionState")
                .unwrap_or("unknown")
                .to_owned(),
            power_state: object
                .text("runtime.powerState")
                .unwrap_or("unknown")
                .to_owned(),
            maintenance: object.text("runtime.inMaintenanceMode") == Some("true"),
        });
    }
    for object in objects.iter().filter(|o| o.obj.kind == "VirtualMachine") {
        if object.text("config.template") == Some("true") {
            continue;
        }
        let host = object.text("runtime.host").map(str::to_owned);
        let (datacenter, cluster) = host
            .as_ref()
            .and_then(|h| host_place.get(h).cloned())
            .unwrap_or_default();
        reading.inventory.vms.push(VsphereVm {
            moref: object.obj.id.clone(),
            name: object.text("name").unwrap_or(&object.obj.id).to_owned(),
            host,
            datacenter,
            cluster,
            power_state: object
                .text("runtime.powerState")
                .unwrap_or("unknown")
                .to_owned(),
            ip: object
                .text("guest.ipAddress")
                .filter(|ip| !ip.is_empty())
                .map(str::to_owned),
            guest_os: object
                .text("config.guestFullName")
                .filter(|os| !os.is_empty())
                .map(str::to_owned),
        });
    }
    for object in objects.iter().filter(|o| o.obj.kind == "Datastore") {
        let number = |path: &str| {
            object
                .text(path)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        reading.inventory.datastores.push(VsphereDatastore {
            moref: object.obj.id.clone(),
            name: object.text("name").unwrap_or(&object.obj.id).to_owned(),
            datacenter: tree.place(object.text("parent")).0,
            kind: object.text("summary.type").unwrap_or_default().to_owned(),
            capacity_bytes: number("summary.capacity"),
            free_bytes: number("summary.freeSpace"),
            accessible: object.text("summary.accessible") != Some("false"),
        });
    }
    reading.perf = read_perf(session, &reading.inventory, vm_perf).await?;
    Ok(reading)
}

async fn read_perf(
    session: &Session,
    inventory: &VsphereInventory,
    vm_perf: bool,
) -> Result<HashMap<String, Perf>, SoapError> {
    let ids = counter_ids(session).await?;
    let counters: Vec<i32> = ids.iter().flatten().copied().collect();
    if counters.is_empty() {
        return Ok(HashMap::new());
    }
    let mut entities: Vec<MoRef> = inventory
        .hosts
        .iter()
        .filter(|h| h.connection_state == "connected" && h.power_state == "poweredOn")
        .map(|h| MoRef::new("HostSystem", &h.moref))
        .collect();
    if vm_perf {
        entities.extend(
            inventory
                .vms
                .iter()
                .filter(|v| v.power_state == "poweredOn")
                .map(|v| MoRef::new("VirtualMachine", &v.moref)),
        );
    }
    // Two batches at a time: the session allows two calls in flight.
    let mut perf: HashMap<String, Perf> = HashMap::new();
    for pair in entities.chunks(PERF_BATCH * 2) {
        let (first, second) = pair.split_at(pair.len().min(PERF_BATCH));
        let (a, b) = tokio::join!(session.query_perf(first, &counters), async {
            if second.is_empty() {
                Ok(Vec::new())
            } else {
                session.query_perf(second, &counters).await
            }
        });
        for (entity, counter, value) in a?.into_iter().chain(b?) {
            let entry = perf.entry(entity).or_default();
            let value = value as f64;
            match ids.iter().position(|id| *id == Some(counter)) {
                // Hundredths of a percent (capped: a sample's rounding can pass 100).
                Some(0) => entry.cpu_pct = Some((value / 100.0).min(100.0)),
                Some(1) => entry.memory_pct = Some((value / 100.0).min(100.0)),
                // KiB/s.
                Some(2) => entry.disk_bytes_per_s = Some(value * 1024.0),
                Some(3) => entry.net_bytes_per_s = Some(value * 1024.0),
                _ => {}
            }
        }
    }
    Ok(perf)
}

/// One poll with the session renewed when it expired: logs in if needed, reads, and on an
/// expired session logs in again and reads once more.
pub async fn poll(session: &Session, vm_perf: bool) -> Result<Reading, SoapError> {
    session.ensure_login().await?;
    match read(session, vm_perf).await {
        Err(SoapError::NotAuthenticated) => {
            session.forget();
            session.ensure_login().await?;
            read(session, vm_perf).await
        }
        Err(error @ SoapError::Transport(_)) => {
            // A vCenter that went away forgets its sessions: log in anew next time.
            session.forget();
            Err(error)
        }
        other => other,
    }
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// Writes a poll's metrics: the vCenter's own and its datastores' on `node_id`, each host's
/// and VM's on its node (those `nodes` names).
pub fn write(
    reading: &Reading,
    node_id: i64,
    nodes: &HashMap<String, i64>,
    took_ms: f64,
    now: i64,
    out: &mut Writer,
) {
    let node = node_id.to_string();
    let inventory = &reading.inventory;
    let powered_on = inventory
        .vms
        .iter()
        .filter(|v| v.power_state == "poweredOn")
        .count();
    out.line(m::VSPHERE_UP.measurement, &[("node_id", &node)])
        .float(m::VSPHERE_UP.field, 1.0)
        .float(m::VSPHERE_POLL_MS.field, took_ms)
        .float(m::VSPHERE_HOSTS.field, inventory.hosts.len() as f64)
        .float(m::VSPHERE_VMS.field, inventory.vms.len() as f64)
        .float(m::VSPHERE_VMS_POWERED_ON.field, powered_on as f64)
        .float(
            m::VSPHERE_DATASTORES.field,
            inventory.datastores.len() as f64,
        )
        .finish(now);
    for store in &inventory.datastores {
        let used_pct = if store.capacity_bytes > 0 {
            100.0 * (store.capacity_bytes.saturating_sub(store.free_bytes)) as f64
                / store.capacity_bytes as f64
        } else {
            f64::NAN
        };
        out.line(
            m::VSPHERE_DATASTORE_USED_PCT.measurement,
            &[("node_id", &node), ("datastore", &store.name)],
        )
        .float(
            m::VSPHERE_DATASTORE_CAPACITY_BYTES.field,
            store.capacity_bytes as f64,
        )
        .float(
            m::VSPHERE_DATASTORE_FREE_BYTES.field,
            store.free_bytes as f64,
        )
        .float(m::VSPHERE_DATASTORE_USED_PCT.field, used_pct)
        .float(
            m::VSPHERE_DATASTORE_ACCESSIBLE.field,
            flag(store.accessible),
        )
        .finish(now);
    }
    let none = Perf::default();
    for host in &inventory.hosts {
        let Some(id) = nodes.get(&host.moref) else {
            continue;
        };
        let id = id.to_string();
        let perf = reading.perf.get(&host.moref).unwrap_or(&none);
        let mut line = out
            .line(m::VSPHERE_HOST_CONNECTED.measurement, &[("node_id", &id)])
            .float(
                m::VSPHERE_HOST_CONNECTED.field,
                flag(host.connection_state == "connected"),
            )
            .float(
                m::VSPHERE_HOST_POWERED_ON.field,
                flag(host.power_state == "poweredOn"),
            )
            .float(m::VSPHERE_HOST_MAINTENANCE.field, flag(host.maintenance));
        if let Some(v) = perf.disk_bytes_per_s {
            line = line.float(m::VSPHERE_HOST_DISK_BYTES_PER_S.field, v);
        }
        if let Some(v) = perf.net_bytes_per_s {
            line = line.float(m::VSPHERE_HOST_NET_BYTES_PER_S.field, v);
        }
        line.finish(now);
        write_load(out, &id, perf, now);
    }
    for vm in &inventory.vms {
        let Some(id) = nodes.get(&vm.moref) else {
            continue;
        };
        let id = id.to_string();
        let perf = reading.perf.get(&vm.moref).unwrap_or(&none);
        let mut line = out
            .line(m::VSPHERE_VM_POWERED_ON.measurement, &[("node_id", &id)])
            .float(
                m::VSPHERE_VM_POWERED_ON.field,
                flag(vm.power_state == "poweredOn"),
            );
        if let Some(v) = perf.disk_bytes_per_s {
            line = line.float(m::VSPHERE_VM_DISK_BYTES_PER_S.field, v);
        }
        if let Some(v) = perf.net_bytes_per_s {
            line = line.float(m::VSPHERE_VM_NET_BYTES_PER_S.field, v);
        }
        line.finish(now);
        write_load(out, &id, perf, now);
    }
}

/// CPU and memory as every other node has them, so `cpu_high`, `memory_high` and the
/// console's charts apply as they are.
fn write_load(out: &mut Writer, node: &str, perf: &Perf, now: i64) {
    if let Some(v) = perf.cpu_pct {
        out.line(m::CPU_LOAD_PCT.measurement, &[("node_id", node)])
            .float(m::CPU_LOAD_PCT.field, v)
            .finish(now);
    }
    if let Some(v) = perf.memory_pct {
        out.line(m::MEMORY_USED_PCT.measurement, &[("node_id", node)])
            .float(m::MEMORY_USED_PCT.field, v)
            .finish(now);
    }
}

/// Sends inventories to the server: a collector's client and id.
#[derive(Clone)]
pub struct Reporter {
    pub client: Client,
    pub collector_id: i64,
}

/// One vCenter's task's definition.
struct Job {
    target: Target,
    endpoint: Endpoint,
    every: Duration,
    vm_nodes: bool,
}

/// The running vCenter tasks.
pub struct Vsphere {
    lines: LineSender,
    reporter: Option<Reporter>,
    enabled: bool,
    /// Problems the tasks met since they were last taken, each once as it began.
    problems: Arc<std::sync::Mutex<Vec<String>>>,
    /// By vCenter node id.
    tasks: Tasks,
}

impl std::fmt::Debug for Vsphere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vsphere")
            .field("vcenters", &self.tasks.len())
            .finish()
    }
}

impl Vsphere {
    pub fn new(lines: LineSender, reporter: Option<Reporter>, enabled: bool) -> Vsphere {
        Vsphere {
            lines,
            reporter,
            enabled,
            problems: Arc::default(),
            tasks: Tasks::default(),
        }
    }

    /// vCenters being polled.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.len() == 0
    }

    /// Polls the vCenters `config` lists: new and changed ones (re)start, removed ones stop.
    pub fn apply(&mut self, config: &CollectorConfig) {
        if !self.enabled {
            return;
        }
        let mut wanted: HashMap<i64, (String, Job)> = HashMap::new();
        for target in &config.targets {
            let Some(settings) = &target.vsphere else {
                continue;
            };
            let Some(credential) = config
                .credentials_of(target)
                .find(|c| c.kind == CredentialKind::Vsphere)
            else {
                tracing::warn!(
                    node_id = target.node_id,
                    "Not polling vCenter {}: it has no vsphere credential.",
                    target.name
                );
                continue;
            };
            let pin = match credential
                .params
                .fingerprint
                .as_deref()
                .map(str::parse::<Fingerprint>)
            {
                None => None,
                Some(Ok(pin)) => Some(pin),
                Some(Err(error)) => {
                    tracing::warn!(node_id = target.node_id, credential = %credential.name, "Not polling vCenter {}: {error}.", target.name);
                    continue;
                }
            };
            let endpoint = Endpoint {
                url: sdk_url(&target.address),
                username: credential.params.username.clone().unwrap_or_default(),
                password: credential
                    .secrets
                    .get("password")
                    .cloned()
                    .unwrap_or_else(|| Secret::new("")),
                pin,
                timeout: CALL_TIMEOUT,
            };
            let fingerprint = serde_json::to_string(&(target, credential)).unwrap_or_default();
            wanted.insert(
                target.node_id,
                (
                    fingerprint,
                    Job {
                        target: target.clone(),
                        endpoint,
                        every: Duration::from_secs(u64::from(settings.interval_s.max(10))),
                        vm_nodes: settings.vm_nodes,
                    },
                ),
            );
        }
        let (lines, reporter, problems) = (&self.lines, &self.reporter, &self.problems);
        self.tasks.reconcile(wanted, |job| {
            tokio::spawn(run(lines.clone(), reporter.clone(), problems.clone(), job))
        });
    }

    /// Stops every task.
    pub fn stop(&mut self) {
        self.tasks.stop();
    }

    /// The problems met since the last call (a refused login, a vCenter gone), oldest first.
    pub fn take_problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .map(|mut held| std::mem::take(&mut *held))
            .unwrap_or_default()
    }
}

async fn run(
    lines: LineSender,
    reporter: Option<Reporter>,
    problems: Arc<std::sync::Mutex<Vec<String>>>,
    job: Job,
) {
    let node_id = job.target.node_id;
    let name = job.target.name.clone();
    let session = match Session::new(job.endpoint) {
        Ok(session) => Arc::new(session),
        Err(error) => {
            tracing::warn!(node_id, "Cannot poll vCenter {name}: {error}.");
            return;
        }
    };
    let mut ticker = tokio::time::interval(job.every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The last node ids the server answered: metrics go on while the server is away.
    let mut nodes: HashMap<String, i64> = HashMap::new();
    let mut last_error: Option<String> = None;
    loop {
        ticker.tick().await;
        let started = Instant::now();
        let now = crate::sources::now_ms();
        let mut out = Writer::new();
        match poll(&session, job.vm_nodes).await {
            Ok(reading) => {
                if last_error.take().is_some() {
                    tracing::info!(node_id, "vCenter {name} answers again.");
                }
                // Without VM nodes the VMs are counted, not sent.
                let sent = if job.vm_nodes {
                    std::borrow::Cow::Borrowed(&reading.inventory)
                } else {
                    std::borrow::Cow::Owned(VsphereInventory {
                        vms: Vec::new(),
                        ..reading.inventory.clone()
                    })
                };
                if let Some(reporter) = &reporter {
                    match reporter
                        .client
                        .report_vsphere(reporter.collector_id, node_id, &sent)
                        .await
                    {
                        Ok(VsphereSync { nodes: found, .. }) => nodes = found.into_iter().collect(),
                        Err(error) => {
                            tracing::debug!(node_id, %error, "The inventory did not reach the server; its metrics wait in the outbox.")
                        }
                    }
                }
                let took = started.elapsed().as_secs_f64() * 1_000.0;
                write(&reading, node_id, &nodes, took, now, &mut out);
            }
            Err(error) => {
                let text = error.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(node_id, "Polling vCenter {name} failed: {text}.");
                    if let Ok(mut held) = problems.lock() {
                        held.push(format!("vCenter {name}: {text}"));
                        let excess = held.len().saturating_sub(10);
                        held.drain(..excess);
                    }
                }
                last_error = Some(text);
                out.line(
                    m::VSPHERE_UP.measurement,
                    &[("node_id", &node_id.to_string())],
                )
                .float(m::VSPHERE_UP.field, 0.0)
                .finish(now);
            }
        }
        lines.send_written(out).await;
    }
}
