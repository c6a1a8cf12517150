//! One scan: every address of a job through the pipeline — phase 1 sweep (ICMP echo, then TCP
//! connect for hosts that drop ICMP), phase 2 SNMP probe of the system group with each
//! credential in turn, phase 3 fingerprint against the templates, phase 4 reverse DNS — with
//! at most `concurrency` addresses in work and at most `packets_per_second` packets sent.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use plantwatch_shared::api::{
    AddressSet, ClaimedJob, Found, FoundBy, ScanOptions, TemplateDef, best_template,
};
use surge_ping::PingSequence;
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::vendor::vendor_of;
use crate::sources::icmp::{Echo, Icmp, echo};
use crate::sources::snmp::decode::{Oid, Value, format_oid};
use crate::sources::snmp::session::{Auth, Limits, Session, SnmpError};
use crate::sources::snmp::walk;

/// The system group OIDs asked of every SNMP device.
const SYS_DESCR: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 1, 0];
const SYS_OBJECT_ID: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 2, 0];
const SYS_UPTIME: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];
const SYS_CONTACT: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 4, 0];
const SYS_NAME: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 5, 0];
const SYS_LOCATION: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 6, 0];

/// What the scan tells the worker as it goes.
#[derive(Debug)]
pub enum Event {
    /// One more address scanned; `found` when it is a live host.
    Scanned {
        done: u64,
        resume_at: u64,
        found: Option<Box<Found>>,
    },
}

/// Paces packets: one every `1 / packets_per_second`, over all tasks of the scan.
#[derive(Debug)]
pub struct Pacer {
    every: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn new(per_second: u32) -> Pacer {
        Pacer {
            every: Duration::from_secs_f64(1.0 / f64::from(per_second.max(1))),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for the next slot.
    pub async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.every;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// What every probe task shares.
struct Context {
    options: ScanOptions,
    timeout: Duration,
    /// Each credential with its networks (tried only on addresses inside them).
    credentials: Vec<(i64, Auth, Vec<String>)>,
    templates: Vec<TemplateDef>,
    /// `None` when the process may not ping (no CAP_NET_RAW): TCP and SNMP only.
    icmp: Option<Arc<Icmp>>,
    pacer: Pacer,
    limits: Limits,
}

/// Scans `job`, sending an event per address to `events`. Returns an error only when the job
/// cannot be scanned at all (its targets do not parse).
pub async fn run(
    job: ClaimedJob,
    icmp: Option<Arc<Icmp>>,
    events: mpsc::Sender<Event>,
) -> Result<(), String> {
    let set =
        AddressSet::parse(&job.targets, &job.exclusions).map_err(|e| format!("target {e}"))?;
    let mut credentials = Vec::new();
    for credential in &job.credentials {
        match Auth::from_credential(credential) {
            Ok(auth) => credentials.push((credential.id, auth, credential.networks.clone())),
            Err(error) => {
                tracing::warn!(credential = %credential.name, %error, "Skipping a credential.")
            }
        }
    }
    let options = job.options.clone();
    let timeout = Duration::from_millis(u64::from(options.timeout_ms));
    let concurrency = options.concurrency.max(1) as usize;
    let context = Arc::new(Context {
        limits: Limits {
            timeout,
            retries: options.retries,
            in_flight: Arc::new(Semaphore::new(concurrency)),
        },
        pacer: Pacer::new(options.packets_per_second),
        timeout,
        credentials,
        templates: job.templates,
        icmp,
        options,
    });
    let mut addresses = set.iter_from(job.resume_at);
    let mut next_index = job.resume_at;
    let mut in_work: BTreeSet<u64> = BTreeSet::new();
    let mut done = job.resume_at;
    let mut tasks: JoinSet<(u64, Option<Found>)> = JoinSet::new();
    loop {
        while tasks.len() < concurrency {
            let Some(ip) = addresses.next() else { break };
            let index = next_index;
            next_index += 1;
            in_work.insert(index);
            let context = context.clone();
            tasks.spawn(async move { (index, probe(context, ip).await) });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (index, found) = joined.map_err(|e| format!("a probe task failed: {e}"))?;
        in_work.remove(&index);
        done += 1;
        let resume_at = in_work.first().copied().unwrap_or(next_index);
        let event = Event::Scanned {
            done,
            resume_at,
            found: found.map(Box::new),
        };
        if events.send(event).await.is_err() {
            // The worker stopped listening: the job was cancelled.
            return Ok(());
        }
    }
    Ok(())
}

/// Everything learned about one address; `None` when nothing answered.
async fn probe(context: Arc<Context>, ip: IpAddr) -> Option<Found> {
    let options = &context.options;
    let mut found = Found {
        address: ip.to_string(),
        ..Found::default()
    };
    if let Some((by, rtt, open)) = sweep(&context, ip).await {
        found.found_by = Some(by);
        found.rtt_ms = Some(rtt.as_secs_f64() * 1_000.0);
        found.open_ports = open;
    }
    // A host that answered ping has its ports asked too, for its services (a TLS port gets a
    // certificate check proposed), at the scan's pace and alongside the SNMP probe.
    let ask_ports = found.found_by == Some(FoundBy::Icmp) && !options.tcp_ports.is_empty();
    let services = async {
        if ask_ports {
            Some(tcp_sweep(&context, ip).await.0)
        } else {
            None
        }
    };
    // SNMP is asked of live hosts only, unless the sweep is off altogether.
    let sweep_off = !options.icmp && options.tcp_ports.is_empty();
    let ask_snmp =
        options.snmp && !context.credentials.is_empty() && (found.found_by.is_some() || sweep_off);
    let identify = async {
        if ask_snmp {
            snmp_probe(&context, ip, &mut found).await;
        }
    };
    let (open, ()) = tokio::join!(services, identify);
    if let Some(open) = open {
        found.open_ports = open;
    }
    found.found_by?;
    if let Some(oid) = &found.sys_object_id {
        let descr = found.sys_descr.as_deref().unwrap_or("");
        if let Some(template) = best_template(&context.templates, oid, descr) {
            found.template = Some(template.name.clone());
            found.vendor = template.vendor.clone();
        }
        if found.vendor.is_none() {
            found.vendor = vendor_of(oid).map(str::to_owned);
        }
    }
    if options.reverse_dns {
        found.dns_name = reverse_dns(ip, context.timeout).await;
    }
    Some(found)
}

/// How long a host has to answer ICMP before the TCP fallback starts as well.
fn tcp_head_start(timeout: Duration) -> Duration {
    (timeout / 4).min(Duration::from_millis(250))
}

/// Phase 1 for one address: ICMP echo, and, if no echo reply comes within a head start, TCP
/// connects running alongside. An echo reply wins; otherwise the TCP answer, with the open
/// ports. `None`: nothing answered.
async fn sweep(context: &Arc<Context>, ip: IpAddr) -> Option<(FoundBy, Duration, Vec<u16>)> {
    let options = &context.options;
    let icmp = async {
        if options.icmp {
            ping(context, ip).await
        } else {
            None
        }
    };
    let tcp = async {
        if options.tcp_ports.is_empty() {
            return None;
        }
        if options.icmp {
            tokio::time::sleep(tcp_head_start(context.timeout)).await;
        }
        let (open, first) = tcp_sweep(context, ip).await;
        first.map(|rtt| (FoundBy::Tcp, rtt, open))
    };
    tokio::pin!(icmp, tcp);
    let (mut icmp_done, mut tcp_done) = (false, false);
    let mut by_tcp = None;
    loop {
        tokio::select! {
            answer = &mut icmp, if !icmp_done => {
                icmp_done = true;
                if let Some(rtt) = answer {
                    return Some((FoundBy::Icmp, rtt, Vec::new()));
                }
            }
            answer = &mut tcp, if !tcp_done => {
                tcp_done = true;
                by_tcp = answer;
            }
        }
        if icmp_done && tcp_done {
            return by_tcp;
        }
    }
}

/// What one attempt of a hedged request got.
enum Attempt<T> {
    Answer(T),
    /// A definite no (destination unreachable, authentication refused): stop asking.
    Refused,
    /// Nothing in time.
    Silent,
}

/// Runs `attempts` tries of a request, the next starting `timeout / attempts` after the one
/// before while earlier ones still wait, all ending at `timeout`: retries cost no time of
/// their own, and a late answer to the first try still counts. The first answer wins.
async fn hedged<T, F, Fut>(attempts: u32, timeout: Duration, mut attempt: F) -> Option<T>
where
    T: Send + 'static,
    F: FnMut(Duration) -> Fut,
    Fut: std::future::Future<Output = Attempt<T>> + Send + 'static,
{
    let attempts = attempts.max(1);
    let spacing = timeout / attempts;
    let mut tries = JoinSet::new();
    for n in 0..attempts {
        let delay = spacing * n;
        let request = attempt(timeout - delay);
        tries.spawn(async move {
            tokio::time::sleep(delay).await;
            request.await
        });
    }
    while let Some(joined) = tries.join_next().await {
        match joined {
            Ok(Attempt::Answer(answer)) => return Some(answer),
            Ok(Attempt::Refused) => return None,
            Ok(Attempt::Silent) | Err(_) => {}
        }
    }
    None
}

async fn ping(context: &Arc<Context>, ip: IpAddr) -> Option<Duration> {
    let icmp = context.icmp.clone()?;
    let mut sequence = 0u16;
    hedged(context.options.retries + 1, context.timeout, |timeout| {
        let (icmp, context) = (icmp.clone(), context.clone());
        sequence = sequence.wrapping_add(1);
        let sequence = PingSequence(sequence);
        async move {
            context.pacer.wait().await;
            let Some(mut pinger) = icmp.pinger(ip, timeout).await else {
                // No socket for this address family.
                return Attempt::Refused;
            };
            match echo(&mut pinger, sequence).await {
                Echo::Reply(rtt) => Attempt::Answer(rtt),
                Echo::Unreachable => Attempt::Refused,
                Echo::Silent => Attempt::Silent,
            }
        }
    })
    .await
}

/// Connects to every port at once; returns the open ports and, when the host answered at all
/// (accepted or refused), the time of its first answer.
async fn tcp_sweep(context: &Context, ip: IpAddr) -> (Vec<u16>, Option<Duration>) {
    let mut tries = JoinSet::new();
    for &port in &context.options.tcp_ports {
        context.pacer.wait().await;
        let timeout = context.timeout;
        tries.spawn(async move {
            let started = Instant::now();
            let result =
                tokio::time::timeout(timeout, tokio::net::TcpStream::connect((ip, port))).await;
            let elapsed = started.elapsed();
            match result {
                Ok(Ok(_stream)) => (port, Some(true), elapsed),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    (port, Some(false), elapsed)
                }
                _ => (port, None, elapsed),
            }
        });
    }
    let mut open = Vec::new();
    let mut first: Option<Duration> = None;
    while let Some(Ok((port, answer, elapsed))) = tries.join_next().await {
        if let Some(accepted) = answer {
            first = Some(first.map_or(elapsed, |f| f.min(elapsed)));
            if accepted {
                open.push(port);
            }
        }
    }
    open.sort_unstable();
    (open, first)
}

fn text(value: Option<&Value>) -> Option<String> {
    let text = value?.as_text()?;
    let text = text.trim_matches(char::from(0)).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Phase 2: the system group, with each credential until one answers.
async fn snmp_probe(context: &Arc<Context>, ip: IpAddr, found: &mut Found) {
    let oids: Vec<Oid> = [
        SYS_DESCR,
        SYS_OBJECT_ID,
        SYS_UPTIME,
        SYS_CONTACT,
        SYS_NAME,
        SYS_LOCATION,
    ]
    .iter()
    .map(|o| o.to_vec())
    .collect();
    for (id, auth, networks) in &context.credentials {
        if !plantwatch_shared::rules::address_in_networks(&ip.to_string(), networks) {
            continue;
        }
        let addr = SocketAddr::new(ip, 161);
        let answer = hedged(context.options.retries + 1, context.timeout, |timeout| {
            let (context, auth, oids) = (context.clone(), auth.clone(), oids.clone());
            async move {
                context.pacer.wait().await;
                let limits = Limits {
                    timeout,
                    retries: 0,
                    ..context.limits.clone()
                };
                let mut session = Session::new(addr, auth, limits);
                match walk::get(&mut session, &oids).await {
                    Ok(values) if !values.is_empty() => Attempt::Answer(values),
                    Ok(_) | Err(SnmpError::Timeout) => Attempt::Silent,
                    // The agent answered but refused the user or its keys.
                    Err(_) => Attempt::Refused,
                }
            }
        })
        .await;
        let Some(values) = answer else {
            continue;
        };
        found.credential_id = Some(*id);
        found.sys_descr = text(values.get(SYS_DESCR.as_slice()));
        found.sys_object_id = match values.get(SYS_OBJECT_ID.as_slice()) {
            Some(Value::Oid(oid)) => Some(format_oid(oid)),
            other => text(other),
        };
        found.sys_uptime_s = match values.get(SYS_UPTIME.as_slice()) {
            Some(Value::Timeticks(ticks)) => Some(u64::from(*ticks) / 100),
            _ => None,
        };
        found.sys_contact = text(values.get(SYS_CONTACT.as_slice()));
        found.sys_name = text(values.get(SYS_NAME.as_slice()));
        found.sys_location = text(values.get(SYS_LOCATION.as_slice()));
        if found.found_by.is_none() {
            found.found_by = Some(FoundBy::Snmp);
        }
        return;
    }
}

/// Phase 4: the PTR name of `ip` through the system resolver (hosts file, then DNS).
async fn reverse_dns(ip: IpAddr, timeout: Duration) -> Option<String> {
    let lookup = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip).ok());
    let name = tokio::time::timeout(timeout, lookup).await.ok()?.ok()??;
    (name != ip.to_string() && !name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pacer_spaces_packets() {
        let pacer = Pacer::new(100);
        let started = Instant::now();
        for _ in 0..11 {
            pacer.wait().await;
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(95), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(400), "{elapsed:?}");
    }

    fn context(options: ScanOptions) -> Arc<Context> {
        Arc::new(Context {
            options,
            timeout: Duration::from_millis(500),
            credentials: vec![],
            templates: vec![],
            icmp: Icmp::open().ok().map(Arc::new),
            pacer: Pacer::new(1_000),
            limits: Limits {
                timeout: Duration::from_millis(500),
                retries: 0,
                in_flight: Arc::new(Semaphore::new(8)),
            },
        })
    }

    #[tokio::test]
    async fn loopback_is_found_by_icmp_and_its_open_port_by_tcp() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let options = ScanOptions {
            tcp_ports: vec![port, 1],
            reverse_dns: false,
            ..ScanOptions::default()
        };
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let found = probe(context(options.clone()), loopback).await.unwrap();
        assert_eq!(found.found_by, Some(FoundBy::Icmp), "{found:?}");
        assert!(found.rtt_ms.unwrap() < 100.0);
        // Its services are asked once it answered: the open port listed, the closed one not.
        assert_eq!(found.open_ports, vec![port]);
        // Without ICMP, the open port is found and the refused one proves the host too.
        let tcp_only = ScanOptions {
            icmp: false,
            ..options
        };
        let found = probe(context(tcp_only), loopback).await.unwrap();
        assert_eq!(found.found_by, Some(FoundBy::Tcp));
        assert_eq!(found.open_ports, vec![port]);
    }

    #[tokio::test]
    async fn hedged_attempts_overlap_and_a_refusal_ends_them() {
        // Three silent attempts end together at the timeout, not one after the other.
        let started = Instant::now();
        let none: Option<()> = hedged(3, Duration::from_millis(300), |left| async move {
            tokio::time::sleep(left).await;
            Attempt::Silent
        })
        .await;
        assert!(none.is_none());
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_millis(450), "{elapsed:?}");
        // The second attempt answers: the first, still waiting, does not hold it up.
        let mut n = 0;
        let started = Instant::now();
        let answer = hedged(2, Duration::from_millis(400), |_| {
            n += 1;
            let me = n;
            async move {
                if me == 2 {
                    Attempt::Answer(me)
                } else {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Attempt::Silent
                }
            }
        })
        .await;
        assert_eq!(answer, Some(2));
        assert!(started.elapsed() < Duration::from_millis(350));
        let refused: Option<()> =
            hedged(3, Duration::from_secs(5), |_| async { Attempt::Refused }).await;
        assert!(refused.is_none());
    }
}
