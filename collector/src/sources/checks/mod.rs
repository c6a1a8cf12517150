//! Service checks (TLS, HTTP(S), TCP, DNS): one task per check of each target, on the check's own interval, writing
//! `check.*` lines (tags `node_id`, `check_id`, `kind`, `port`) to the pusher; `tls` checks
//! also hand what they found to the reporter, which posts it to the server.

pub mod dns;
#[cfg(test)]
mod real;
pub mod tls;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use plantwatch_shared::api::{
    CertificateFinding, CertificateReport, CheckKind, CollectorConfig, MAX_CHECK_BODY_BYTES,
    TargetCheck,
};
use plantwatch_shared::lineproto::Writer;
use plantwatch_shared::metric_names::{
    CHECK, CHECK_CERT_CHAIN_DAYS_LEFT, CHECK_CERT_DAYS_LEFT, CHECK_CERT_TRUSTED, CHECK_CERT_VALID,
    CHECK_HTTP_STATUS, CHECK_TIME_MS, CHECK_TLS_LEGACY, CHECK_UP,
};
use plantwatch_shared::push::LineSender;
use rustls::RootCertStore;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::Tasks;

/// Findings waiting for the reporter, at most (older ones of the same check are replaced).
const FINDINGS_QUEUE: usize = 1024;

/// What one run of a check measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub up: bool,
    pub time_ms: Option<f64>,
    pub http_status: Option<u16>,
    /// Why it failed, for the log.
    pub problem: Option<String>,
}

/// The host part of a node's address (`host`, `host:port`, `[v6]:port`, an address).
pub fn host_of(address: &str) -> String {
    let address = address.trim();
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return addr.ip().to_string();
    }
    if address.parse::<IpAddr>().is_ok() {
        return address.to_owned();
    }
    match address.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() && !host.contains(':') => host.to_owned(),
        _ => address.trim_matches(['[', ']']).to_owned(),
    }
}

/// The socket address of `host` on `port`.
pub async fn address_of(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host.to_owned(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))
}

/// A TCP connect to `addr`.
pub async fn tcp(addr: SocketAddr, timeout: Duration) -> Measured {
    let started = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Measured {
            up: true,
            time_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
            http_status: None,
            problem: None,
        },
        Ok(Err(error)) => down(format!("{addr}: {error}")),
        Err(_) => down(format!(
            "{addr}: no connection within {} ms",
            timeout.as_millis()
        )),
    }
}

pub(crate) fn down(problem: String) -> Measured {
    Measured {
        up: false,
        time_ms: None,
        http_status: None,
        problem: Some(problem),
    }
}

/// The client of `http`/`https` checks: no redirects followed (a 3xx is an answer), any
/// certificate accepted (a `tls` check judges certificates), no pooled connections (each run
/// measures a fresh connection, as a browser coming to the HMI would).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_danger_accept_invalid_certs(true)
        .pool_max_idle_per_host(0)
        .user_agent(concat!("plantwatch-collector/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// An HTTP(S) GET of `url`, judged by the check's expectations.
pub async fn http(client: &reqwest::Client, url: &str, check: &TargetCheck) -> Measured {
    let spec = &check.spec;
    let timeout = Duration::from_millis(u64::from(spec.timeout_ms()));
    let started = Instant::now();
    let run = async {
        let mut response = client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {}", plantwatch_shared::error_chain(&e)))?;
        let status = response.status().as_u16();
        let time_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut problem = match spec.expect_status {
            Some(expected) if expected != status => {
                Some(format!("{url}: status {status}, expected {expected}"))
            }
            None if !(200..400).contains(&status) => Some(format!("{url}: status {status}")),
            _ => None,
        };
        if let (None, Some(text)) = (&problem, &spec.expect_text) {
            let mut body = Vec::new();
            while body.len() < MAX_CHECK_BODY_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err(error) => return Err(format!("{url}: reading the body: {error}")),
                }
            }
            body.truncate(MAX_CHECK_BODY_BYTES);
            if !String::from_utf8_lossy(&body).contains(text.as_str()) {
                problem = Some(format!("{url}: the body does not contain {text:?}"));
            }
        }
        Ok::<_, String>((status, time_ms, problem))
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok((status, time_ms, problem))) => Measured {
            up: problem.is_none(),
            time_ms: Some(time_ms),
            http_status: Some(status),
            problem,
        },
        Ok(Err(problem)) => down(problem),
        Err(_) => down(format!(
            "{url}: no answer within {} ms",
            timeout.as_millis()
        )),
    }
}

/// The URL an `http`/`https` check requests of `host`.
pub fn url_of(host: &str, check: &TargetCheck) -> String {
    let scheme = if check.spec.kind == CheckKind::Https {
        "https"
    } else {
        "http"
    };
    let host = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => host.to_owned(),
    };
    format!(
        "{scheme}://{host}:{}{}",
        check.spec.port(),
        check.spec.path()
    )
}

/// Writes one run's lines.
pub fn write(
    out: &mut Writer,
    node_id: i64,
    check: &TargetCheck,
    measured: &Measured,
    tls: Option<&tls::TlsRun>,
    now: OffsetDateTime,
) {
    let node = node_id.to_string();
    let id = check.id.to_string();
    let port = check.spec.port().to_string();
    let tags = [
        ("node_id", node.as_str()),
        ("check_id", id.as_str()),
        ("kind", check.spec.kind.as_str()),
        ("port", port.as_str()),
    ];
    let at = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    let mut line = out
        .line(CHECK, &tags)
        .float(CHECK_UP.field, if measured.up { 1.0 } else { 0.0 });
    if let Some(ms) = measured.time_ms {
        line = line.float(CHECK_TIME_MS.field, round2(ms));
    }
    if let Some(status) = measured.http_status {
        line = line.float(CHECK_HTTP_STATUS.field, f64::from(status));
    }
    if let Some(run) = tls {
        // Whole days, rounded down: 2.9 days left is 2, and half a day past expiry is -1.
        let days =
            |t: Option<OffsetDateTime>| t.map(|t| ((t - now).as_seconds_f64() / 86_400.0).floor());
        if let Some(days) = days(run.finding.not_after) {
            line = line.float(CHECK_CERT_DAYS_LEFT.field, days);
        }
        if let Some(days) = days(run.finding.chain_not_after) {
            line = line.float(CHECK_CERT_CHAIN_DAYS_LEFT.field, days);
        }
        if run.up() {
            line = line
                .float(
                    CHECK_CERT_VALID.field,
                    if run.valid(now) { 1.0 } else { 0.0 },
                )
                .float(
                    CHECK_CERT_TRUSTED.field,
                    if run.finding.trusted { 1.0 } else { 0.0 },
                );
        }
        line = line.float(CHECK_TLS_LEGACY.field, if run.legacy { 1.0 } else { 0.0 });
    }
    line.finish(at);
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Runs one check once: what it measured, and for `tls` what it found.
pub async fn run_once(
    host: &str,
    node_name: &str,
    check: &TargetCheck,
    http: &reqwest::Client,
    roots: &Arc<RootCertStore>,
) -> (Measured, Option<tls::TlsRun>) {
    let spec = &check.spec;
    let timeout = Duration::from_millis(u64::from(spec.timeout_ms()));
    match spec.kind {
        CheckKind::Http | CheckKind::Https => (http_check(http, host, check).await, None),
        CheckKind::Dns => match address_of(host, spec.port()).await {
            Ok(server) => (dns::run(server, spec, timeout).await, None),
            Err(problem) => (down(problem), None),
        },
        CheckKind::Tcp | CheckKind::Tls => {
            let addr = match address_of(host, spec.port()).await {
                Ok(addr) => addr,
                Err(problem) => return (down(problem), None),
            };
            if spec.kind == CheckKind::Tcp {
                return (tcp(addr, timeout).await, None);
            }
            let server_name = spec
                .server_name
                .clone()
                .unwrap_or_else(|| default_server_name(host, node_name));
            let mut run = tls::run(check.id, addr, &server_name, timeout, roots).await;
            run.require_trust = spec.require_trust();
            // A server speaking only old TLS is up: its age is a finding of its own.
            let measured = Measured {
                up: run.up() || run.legacy,
                time_ms: run.time_ms,
                http_status: None,
                problem: run.finding.error.clone(),
            };
            (measured, Some(run))
        }
    }
}

async fn http_check(client: &reqwest::Client, host: &str, check: &TargetCheck) -> Measured {
    http(client, &url_of(host, check), check).await
}

/// The server name a `tls` check sends unless told: the node's address when it is a name,
/// else the node's name when that is a DNS name, else the address.
fn default_server_name(host: &str, node_name: &str) -> String {
    if host.parse::<IpAddr>().is_err() {
        return host.to_owned();
    }
    let dns_like = node_name.contains('.')
        && node_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if dns_like {
        node_name.to_owned()
    } else {
        host.to_owned()
    }
}

/// The running check tasks.
pub struct Checker {
    lines: LineSender,
    findings: mpsc::Sender<CertificateFinding>,
    http: reqwest::Client,
    roots: Arc<RootCertStore>,
    enabled: bool,
    /// By check id.
    tasks: Tasks,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("checks", &self.tasks.len())
            .finish()
    }
}

impl Checker {
    /// A checker writing to `lines`; the findings of `tls` checks come out of the receiver.
    pub fn new(
        lines: LineSender,
        roots: Arc<RootCertStore>,
        enabled: bool,
    ) -> (Checker, mpsc::Receiver<CertificateFinding>) {
        let (findings, receiver) = mpsc::channel(FINDINGS_QUEUE);
        let checker = Checker {
            lines,
            findings,
            http: http_client(),
            roots,
            enabled,
            tasks: Tasks::default(),
        };
        (checker, receiver)
    }

    /// Number of checks running.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.len() == 0
    }

    /// Runs what `config` lists: new and changed checks (re)start, removed ones stop.
    pub fn apply(&mut self, config: &CollectorConfig) {
        if !self.enabled {
            return;
        }
        let mut wanted: HashMap<i64, (String, Job)> = HashMap::new();
        for target in &config.targets {
            for check in &target.checks {
                let job = Job {
                    node_id: target.node_id,
                    node_name: target.name.clone(),
                    host: host_of(&target.address),
                    check: check.clone(),
                };
                let fingerprint =
                    serde_json::to_string(&(&job.host, &job.node_name, check)).unwrap_or_default();
                wanted.insert(check.id, (fingerprint, job));
            }
        }
        let (lines, findings, http, roots) = (&self.lines, &self.findings, &self.http, &self.roots);
        self.tasks.reconcile(wanted, |job| {
            tokio::spawn(run_check(
                job,
                lines.clone(),
                findings.clone(),
                http.clone(),
                roots.clone(),
            ))
        });
    }

    /// Stops every task.
    pub fn stop(&mut self) {
        self.tasks.stop();
    }
}

struct Job {
    node_id: i64,
    node_name: String,
    host: String,
    check: TargetCheck,
}

/// The roots a check judges trust by: `base` (the system's), and the CA the check gives.
pub fn roots_for(check: &TargetCheck, base: Arc<RootCertStore>) -> Arc<RootCertStore> {
    match &check.spec.ca_pem {
        None => base,
        Some(pem) => plantwatch_shared::client::roots_with(&base, pem).unwrap_or_else(|problem| {
            // The server refuses such a CA; one that still does not load trusts the system's.
            tracing::warn!(check_id = check.id, %problem, "The check's CA is not usable.");
            base
        }),
    }
}

async fn run_check(
    job: Job,
    lines: LineSender,
    findings: mpsc::Sender<CertificateFinding>,
    http: reqwest::Client,
    roots: Arc<RootCertStore>,
) {
    let roots = roots_for(&job.check, roots);
    let every = Duration::from_secs(u64::from(job.check.spec.interval_s().max(1)));
    // Spread the checks over a little of the interval rather than all at once.
    let offset = every
        .min(Duration::from_secs(10))
        .mul_f64(rand::random::<f64>());
    tokio::time::sleep(offset).await;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        let (measured, tls) = run_once(&job.host, &job.node_name, &job.check, &http, &roots).await;
        if let Some(problem) = &measured.problem {
            tracing::debug!(node_id = job.node_id, check = %job.check.spec, %problem, "Check failed.");
        }
        let mut out = Writer::new();
        write(
            &mut out,
            job.node_id,
            &job.check,
            &measured,
            tls.as_ref(),
            OffsetDateTime::now_utc(),
        );
        lines.send_written(out).await;
        if let Some(run) = tls {
            // A full queue drops this finding; the next run brings a fresh one.
            let _ = findings.try_send(run.finding);
        }
    }
}

/// Posts findings to the server, the latest per check, every `every`; keeps them while the
/// server cannot be reached. Ends when every [`Checker`] is gone.
pub async fn report_findings(
    client: plantwatch_shared::Client,
    collector_id: i64,
    mut findings: mpsc::Receiver<CertificateFinding>,
    every: Duration,
) {
    let mut pending: BTreeMap<i64, CertificateFinding> = BTreeMap::new();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            found = findings.recv() => match found {
                Some(finding) => {
                    pending.insert(finding.check_id, finding);
                }
                None => break,
            },
            _ = ticker.tick() => {
                if pending.is_empty() {
                    continue;
                }
                let report = CertificateReport { findings: pending.values().cloned().collect() };
                match client.report_certificates(collector_id, &report).await {
                    Ok(()) => pending.clear(),
                    // A check the server no longer has (removed meanwhile) refuses the batch:
                    // drop it rather than retry forever.
                    Err(error) if error.status() == Some(400) => {
                        tracing::warn!(%error, "The server refused certificate findings.");
                        pending.clear();
                    }
                    Err(error) => tracing::debug!(%error, "Certificate findings not delivered yet."),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_without_their_port() {
        assert_eq!(host_of("10.0.0.5"), "10.0.0.5");
        assert_eq!(host_of("10.0.0.5:1161"), "10.0.0.5");
        assert_eq!(host_of("hmi.plant.local"), "hmi.plant.local");
        assert_eq!(host_of("hmi.plant.local:161"), "hmi.plant.local");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("[::1]:161"), "::1");
    }

    #[test]
    fn the_server_name_defaults_to_a_name_never_made_up() {
        assert_eq!(
            default_server_name("hmi.plant.local", "hmi"),
            "hmi.plant.local"
        );
        assert_eq!(
            default_server_name("10.0.0.5", "hmi.plant.local"),
            "hmi.plant.local"
        );
        assert_eq!(default_server_name("10.0.0.5", "HMI line 1"), "10.0.0.5");
    }
}
