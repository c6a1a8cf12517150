//! Event receivers: SNMP traps and informs ([`traps`]) and syslog ([`syslog`]), on the sockets
//! the server's configuration names for this collector (none by default). Every event becomes
//! one `event` line in the outbox — store-and-forward like the metrics, and stored once by the
//! server whatever is resent, by its uid. A sender over its rate is dropped and counted, never
//! the collector.

#[cfg(test)]
mod real;
pub mod syslog;
pub mod traps;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plantwatch_shared::api::{CollectedEvent, CollectorConfig, ListenProtocol, Receivers};
use plantwatch_shared::lineproto::Writer;
use plantwatch_shared::metric_names::EVENT;
use plantwatch_shared::push::LineSender;
use tokio::task::JoinHandle;

/// Events a sender may send in a burst, and per second after it.
pub const RATE_BURST: f64 = 500.0;
pub const RATE_PER_SEC: f64 = 200.0;
/// Senders the limiter remembers at once (the least recently heard are forgotten first).
const MAX_SOURCES: usize = 10_000;

/// What the receivers have done since the collector started.
#[derive(Debug, Default)]
pub struct Counts {
    pub received: AtomicU64,
    /// Dropped by the per-source rate limit.
    pub rate_limited: AtomicU64,
    /// Datagrams or frames that were no trap or syslog message at all.
    pub malformed: AtomicU64,
    /// Informs acknowledged.
    pub acknowledged: AtomicU64,
}

/// A token bucket per sender.
#[derive(Debug, Default)]
struct Limiter {
    buckets: HashMap<IpAddr, (f64, Instant)>,
    /// Drops per sender since the last report.
    dropped: HashMap<IpAddr, u64>,
}

impl Counts {
    /// The counts as reported to the server.
    pub fn snapshot(&self) -> plantwatch_shared::api::EventCounts {
        plantwatch_shared::api::EventCounts {
            received: self.received.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            acknowledged: self.acknowledged.load(Ordering::Relaxed),
        }
    }
}

impl Limiter {
    fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&source) {
            let oldest = self
                .buckets
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(ip, _)| *ip);
            if let Some(ip) = oldest {
                self.buckets.remove(&ip);
            }
        }
        let (tokens, at) = self.buckets.entry(source).or_insert((RATE_BURST, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * RATE_PER_SEC).min(RATE_BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            *self.dropped.entry(source).or_default() += 1;
            false
        }
    }
}

/// What every receiver shares: where events go, their uids, the limiter, the counts.
#[derive(Clone)]
pub struct Sink {
    lines: LineSender,
    /// This run's prefix of every uid (random: a restart never reuses one).
    run: Arc<str>,
    next: Arc<AtomicU64>,
    limiter: Arc<Mutex<Limiter>>,
    pub counts: Arc<Counts>,
}

impl Sink {
    pub fn new(lines: LineSender) -> Sink {
        Sink {
            lines,
            run: format!("{:016x}", rand::random::<u64>()).into(),
            next: Arc::new(AtomicU64::new(0)),
            limiter: Arc::new(Mutex::new(Limiter::default())),
            counts: Arc::new(Counts::default()),
        }
    }

    /// Whether `source` is within its rate (counted either way).
    pub fn admit(&self, source: IpAddr) -> bool {
        self.counts.received.fetch_add(1, Ordering::Relaxed);
        let allowed = self
            .limiter
            .lock()
            .map(|mut l| l.allow(source, Instant::now()))
            .unwrap_or(true);
        if !allowed {
            self.counts.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }

    /// A new uid.
    pub fn uid(&self) -> String {
        format!("{}-{}", self.run, self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Hands `event` to the outbox.
    pub async fn send(&self, event: &CollectedEvent) {
        let Ok(doc) = serde_json::to_string(event) else {
            return;
        };
        let mut out = Writer::new();
        out.line(EVENT, &[("kind", event.kind.as_str())])
            .string("doc", &doc)
            .finish((event.received_at.unix_timestamp_nanos() / 1_000_000) as i64);
        self.lines.send_written(out).await;
    }

    /// Logs the senders dropped since the last call, and forgets them.
    fn report_drops(&self) {
        let dropped: Vec<(IpAddr, u64)> = self
            .limiter
            .lock()
            .map(|mut l| l.dropped.drain().collect())
            .unwrap_or_default();
        for (source, count) in dropped {
            tracing::warn!(%source, count, "Events over a sender's rate were dropped.");
        }
    }
}

/// The running receivers.
pub struct EventReceivers {
    sink: Sink,
    /// The SNMPv3 users traps may come from.
    usm: traps::Usm,
    running: Receivers,
    tasks: Vec<JoinHandle<()>>,
    /// Sockets the configuration names that could not be opened yet.
    unopened: Vec<(Source, plantwatch_shared::api::Listen)>,
    /// Those whose failure was logged (once each, not at every retry).
    reported: Vec<plantwatch_shared::api::Listen>,
}

impl std::fmt::Debug for EventReceivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReceivers")
            .field("running", &self.running)
            .finish()
    }
}

impl EventReceivers {
    pub fn new(lines: LineSender) -> EventReceivers {
        EventReceivers {
            sink: Sink::new(lines),
            usm: traps::Usm::default(),
            running: Receivers::default(),
            tasks: Vec::new(),
            unopened: Vec::new(),
            reported: Vec::new(),
        }
    }

    pub fn counts(&self) -> Arc<Counts> {
        self.sink.counts.clone()
    }

    /// Runs the receivers `config` names: all restart when they changed, none when not.
    pub async fn apply(&mut self, config: &CollectorConfig) {
        self.usm.set(config);
        if config.receivers == self.running {
            return;
        }
        self.stop();
        self.running = config.receivers.clone();
        self.unopened = config
            .receivers
            .traps
            .iter()
            .map(|l| (Source::Traps, *l))
            .chain(config.receivers.syslog.iter().map(|l| (Source::Syslog, *l)))
            .collect();
        self.retry().await;
        if !self.running.is_empty() {
            let sink = self.sink.clone();
            self.tasks.push(tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(10));
                loop {
                    every.tick().await;
                    sink.report_drops();
                }
            }));
        }
    }

    /// Opens the sockets that could not be opened yet (a port another program held); what
    /// still fails, in words (the collector's errors carry it to the server).
    pub async fn retry(&mut self) -> Option<String> {
        let mut failed = Vec::new();
        for (source, listen) in std::mem::take(&mut self.unopened) {
            let task = match (source, listen.protocol) {
                (Source::Traps, _) => udp(listen.port).await.map(|socket| {
                    tokio::spawn(traps::receive(socket, self.sink.clone(), self.usm.clone()))
                }),
                (Source::Syslog, ListenProtocol::Udp) => udp(listen.port)
                    .await
                    .map(|socket| tokio::spawn(syslog::receive_udp(socket, self.sink.clone()))),
                (Source::Syslog, ListenProtocol::Tcp) => tcp(listen.port)
                    .await
                    .map(|listener| tokio::spawn(syslog::receive_tcp(listener, self.sink.clone()))),
            };
            match task {
                Ok(task) => {
                    tracing::info!(%listen, "Receiving {source}.");
                    self.tasks.push(task);
                }
                Err(error) => {
                    if !self.reported.contains(&listen) {
                        tracing::error!(%listen, %error, "Cannot receive {source}; retrying.");
                        self.reported.push(listen);
                    }
                    failed.push(format!("cannot receive {source} on {listen}: {error}"));
                    self.unopened.push((source, listen));
                }
            }
        }
        (!failed.is_empty()).then(|| failed.join("; "))
    }

    pub fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.running = Receivers::default();
        self.unopened.clear();
        self.reported.clear();
    }
}

/// What a socket receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Traps,
    Syslog,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Traps => "SNMP traps",
            Source::Syslog => "syslog",
        })
    }
}

impl Drop for EventReceivers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A UDP socket on `port` of every address: IPv6 and IPv4 at once where the host has IPv6,
/// IPv4 alone where it has not.
/// The receive buffer asked for: a burst (every device trapping after a power dip) waits in it
/// rather than being lost. The kernel grants at most `net.core.rmem_max`.
const RECEIVE_BUFFER: usize = 8 * 1024 * 1024;

async fn udp(port: u16) -> std::io::Result<tokio::net::UdpSocket> {
    let socket = match tokio::net::UdpSocket::bind((std::net::Ipv6Addr::UNSPECIFIED, port)).await {
        Ok(socket) => socket,
        Err(_) => tokio::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).await?,
    };
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(RECEIVE_BUFFER);
    Ok(socket)
}

async fn tcp(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind((std::net::Ipv6Addr::UNSPECIFIED, port)).await {
        Ok(listener) => Ok(listener),
        Err(_) => tokio::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).await,
    }
}

/// `text` cut to `max` characters.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_over_its_rate_is_limited_and_counted_others_are_not() {
        let mut limiter = Limiter::default();
        let start = Instant::now();
        let loud: IpAddr = "10.0.0.9".parse().unwrap();
        let quiet: IpAddr = "10.0.0.10".parse().unwrap();
        let allowed = (0..1_000).filter(|_| limiter.allow(loud, start)).count();
        assert_eq!(allowed, RATE_BURST as usize);
        assert_eq!(limiter.dropped[&loud], 1_000 - RATE_BURST as u64);
        assert!(limiter.allow(quiet, start));
        // A second later, the loud one has a second's worth again.
        let later = start + Duration::from_secs(1);
        let again = (0..1_000).filter(|_| limiter.allow(loud, later)).count();
        assert_eq!(again, RATE_PER_SEC as usize);
    }
}
