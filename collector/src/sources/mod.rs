//! Polling: one task per target, each on its own interval, pinging and (with a template and
//! an SNMP credential) polling SNMP concurrently, handing its lines to the pusher. A slow or
//! dead device only ever delays its own task; SNMP requests of all tasks share one in-flight
//! limit. A new configuration restarts only the targets whose definition changed.

pub mod checks;
pub mod events;
pub mod icmp;
pub mod modbus;
pub mod snmp;
pub mod vsphere;

use plantwatch_shared::metric_names::PING_UP;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use plantwatch_shared::api::{CollectorConfig, Target, TemplateDef};
use plantwatch_shared::lineproto::Writer;
use plantwatch_shared::push::LineSender;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use self::icmp::Icmp;
use self::snmp::SnmpTarget;
use self::snmp::session::{Auth, Limits};

/// The SNMP port when an address names none.
pub const SNMP_PORT: u16 = 161;

/// How polling behaves.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// SNMP requests in flight over all targets.
    pub max_in_flight: usize,
    /// Wait for one SNMP answer.
    pub timeout: Duration,
    /// Further attempts after a timeout.
    pub retries: u32,
    /// Ping targets (needs CAP_NET_RAW).
    pub icmp: bool,
    /// Poll at all (off: the configuration is kept but nothing is sent to the targets).
    pub enabled: bool,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            max_in_flight: 256,
            timeout: Duration::from_secs(2),
            retries: 1,
            icmp: true,
            enabled: true,
        }
    }
}

struct Shared {
    enabled: bool,
    lines: LineSender,
    limits: Limits,
    icmp: Option<Icmp>,
    /// Modbus connections, one per gateway.
    gateways: modbus::Gateways,
}

/// Running tasks by id (a node, a check), each with the definition it was started with: what
/// the poller, the checker and the vCenter poller keep. Dropping it stops them all.
#[derive(Default)]
pub(crate) struct Tasks {
    running: HashMap<i64, (String, JoinHandle<()>)>,
}

impl Tasks {
    pub(crate) fn len(&self) -> usize {
        self.running.len()
    }

    /// Makes the running tasks those of `wanted` (id → (definition, job)): a task whose
    /// definition is unchanged goes on, one changed or no longer wanted stops, and `start`
    /// starts each new or changed job.
    pub(crate) fn reconcile<J>(
        &mut self,
        wanted: HashMap<i64, (String, J)>,
        mut start: impl FnMut(J) -> JoinHandle<()>,
    ) {
        self.running.retain(|id, (definition, task)| {
            let keep = wanted
                .get(id)
                .is_some_and(|(wanted, _)| wanted == definition);
            if !keep {
                task.abort();
            }
            keep
        });
        for (id, (definition, job)) in wanted {
            if self.running.contains_key(&id) {
                continue;
            }
            let task = start(job);
            self.running.insert(id, (definition, task));
        }
    }

    /// Stops every task.
    pub(crate) fn stop(&mut self) {
        for (_, (_, task)) in self.running.drain() {
            task.abort();
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The running target tasks.
pub struct Poller {
    shared: Arc<Shared>,
    /// By node id.
    tasks: Tasks,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("targets", &self.tasks.len())
            .finish()
    }
}

impl Poller {
    pub fn new(lines: LineSender, options: &PollOptions) -> Poller {
        let icmp = if options.icmp && options.enabled {
            match Icmp::open() {
                Ok(icmp) => Some(icmp),
                Err(problem) => {
                    tracing::warn!("Not pinging targets: {problem}.");
                    None
                }
            }
        } else {
            None
        };
        Poller {
            shared: Arc::new(Shared {
                enabled: options.enabled,
                lines,
                limits: Limits {
                    timeout: options.timeout,
                    retries: options.retries,
                    in_flight: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
                },
                icmp,
                gateways: modbus::Gateways::default(),
            }),
            tasks: Tasks::default(),
        }
    }

    /// Number of targets being polled.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.len() == 0
    }

    /// Polls what `config` lists: new and changed targets (re)start, removed ones stop.
    pub fn apply(&mut self, config: &CollectorConfig) {
        if !self.shared.enabled {
            return;
        }
        let mut wanted: HashMap<i64, (String, Job)> = HashMap::new();
        for target in &config.targets {
            let template = target
                .template
                .as_ref()
                .and_then(|name| config.templates.get(name))
                .cloned();
            let credentials: Vec<_> = config
                .credentials_of(target)
                .filter(|c| c.kind.is_snmp())
                .cloned()
                .collect();
            let topology_every = Duration::from_secs(u64::from(match config.topology_interval_s {
                0 => plantwatch_shared::api::DEFAULT_TOPOLOGY_INTERVAL_S,
                s => s,
            }));
            // What the task depends on: any change restarts it.
            let fingerprint =
                serde_json::to_string(&(target, &credentials, &template, topology_every.as_secs()))
                    .unwrap_or_default();
            let candidates = credentials
                .iter()
                .filter_map(|c| match Auth::from_credential(c) {
                    Ok(auth) => Some((c.id, auth)),
                    Err(error) => {
                        tracing::warn!(node_id = target.node_id, credential = %c.name, "Skipping a credential: {error}.");
                        None
                    }
                })
                .collect();
            wanted.insert(
                target.node_id,
                (
                    fingerprint,
                    Job {
                        target: target.clone(),
                        template,
                        candidates,
                        topology_every,
                    },
                ),
            );
        }
        let shared = &self.shared;
        self.tasks
            .reconcile(wanted, |job| tokio::spawn(run_target(shared.clone(), job)));
    }

    /// Stops every task.
    pub fn stop(&mut self) {
        self.tasks.stop();
    }
}

struct Job {
    target: Target,
    template: Option<TemplateDef>,
    candidates: Vec<(i64, Auth)>,
    /// Between walks of the neighbour tables its template names.
    topology_every: Duration,
}

/// `host`, `host:port`, an IPv4 or IPv6 address, with port 161 unless given.
pub async fn resolve(address: &str) -> Result<SocketAddr, String> {
    resolve_on(address, SNMP_PORT).await
}

/// `host`, `host:port`, an IPv4 or IPv6 address, with `port` unless given.
pub async fn resolve_on(address: &str, port: u16) -> Result<SocketAddr, String> {
    let address = address.trim();
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = address.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let lookup = if address.contains(':') {
        tokio::net::lookup_host(address.to_owned())
            .await
            .map(|found| found.collect::<Vec<_>>())
    } else {
        tokio::net::lookup_host((address.to_owned(), port))
            .await
            .map(|found| found.collect::<Vec<_>>())
    };
    lookup
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{address} has no address"))
}

pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

async fn run_target(shared: Arc<Shared>, job: Job) {
    let target = job.target;
    let node = target.node_id.to_string();
    let every = Duration::from_secs(u64::from(target.interval_s.max(1)));
    // Spread the targets over the interval rather than polling all at the same instant.
    let offset = every.mul_f64(rand::random::<f64>());
    tokio::time::sleep(offset).await;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut resolved: Option<SocketAddr> = None;
    let mut prober = None;
    let mut snmp: Option<SnmpTarget> = None;
    let mut modbus: Option<modbus::ModbusTarget> = None;
    let mut unresolved_logged = false;
    loop {
        ticker.tick().await;
        let now = now_ms();
        if resolved.is_none() {
            match resolve(&target.address).await {
                Ok(addr) => {
                    resolved = Some(addr);
                    if let Some(icmp) = &shared.icmp {
                        prober = icmp.prober(addr.ip()).await;
                    }
                    if let Some(def) = job.template.as_ref().and_then(|t| t.modbus.clone()) {
                        let port = plantwatch_shared::api::modbus::MODBUS_PORT;
                        let gateway = match resolve_on(&target.address, port).await {
                            Ok(gateway) => gateway,
                            Err(_) => SocketAddr::new(addr.ip(), port),
                        };
                        modbus = Some(modbus::ModbusTarget::new(
                            target.node_id,
                            shared.gateways.get(gateway),
                            def,
                            target.modbus_unit,
                        ));
                    }
                    if let Some(template) = &job.template
                        && !job.candidates.is_empty()
                    {
                        snmp = Some(
                            SnmpTarget::new(
                                target.node_id,
                                addr,
                                template.clone(),
                                job.candidates.clone(),
                                shared.limits.clone(),
                            )
                            .with_topology_interval(job.topology_every),
                        );
                    }
                }
                Err(problem) => {
                    if !unresolved_logged {
                        tracing::warn!(node_id = target.node_id, "Cannot poll: {problem}.");
                        unresolved_logged = true;
                    }
                    let mut out = Writer::new();
                    out.line(PING_UP.measurement, &[("node_id", &node)])
                        .float(PING_UP.field, 0.0)
                        .finish(now);
                    send(&shared, out).await;
                    continue;
                }
            }
        }
        let ping = async {
            match &mut prober {
                Some(prober) => Some(prober.round().await),
                None => None,
            }
        };
        let poll = async {
            let mut out = Writer::new();
            if let Some(snmp) = &mut snmp {
                let outcome = snmp.poll(now, &mut out).await;
                if let Some(error) = &outcome.error {
                    tracing::debug!(node_id = target.node_id, %error, "SNMP poll failed.");
                }
            }
            out
        };
        let read = async {
            let mut out = Writer::new();
            if let Some(modbus) = &mut modbus {
                let outcome = modbus.poll(now, &mut out).await;
                if let Some(error) = &outcome.error {
                    tracing::debug!(node_id = target.node_id, %error, "Modbus poll incomplete.");
                }
            }
            out
        };
        let (round, mut out, read) = tokio::join!(ping, poll, read);
        out.append(read);
        if let Some(round) = round {
            round.write(&node, now, &mut out);
        }
        send(&shared, out).await;
    }
}

async fn send(shared: &Shared, out: Writer) {
    shared.lines.send_written(out).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn addresses_resolve_with_the_snmp_port_unless_given() {
        assert_eq!(
            resolve("127.0.0.1").await.unwrap(),
            "127.0.0.1:161".parse().unwrap()
        );
        assert_eq!(
            resolve("127.0.0.2:1161").await.unwrap(),
            "127.0.0.2:1161".parse().unwrap()
        );
        assert_eq!(resolve("::1").await.unwrap(), "[::1]:161".parse().unwrap());
        assert_eq!(
            resolve("[::1]:162").await.unwrap(),
            "[::1]:162".parse().unwrap()
        );
        assert_eq!(resolve("localhost").await.unwrap().port(), 161);
        assert!(resolve("no-such-host.invalid").await.is_err());
    }
}
