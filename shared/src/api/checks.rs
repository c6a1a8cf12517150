//! Service checks a collector runs against a node: TLS certificates, HTTP(S), TCP ports, DNS
//! answers (`/api/v1/nodes/{id}/checks`), and the certificates they found
//! (`/api/v1/certificates`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::named_enum;

named_enum! {
    /// What a check does.
    pub enum CheckKind ("check kind") {
        /// A TLS handshake: the certificate chain, its expiry and trust, the TLS version.
        Tls = "tls",
        /// An HTTP request: status, body text, response time.
        Http = "http",
        /// An HTTP request over TLS (the certificate is not judged: a `tls` check does that).
        Https = "https",
        /// A TCP connect: whether the port accepts, and how fast.
        Tcp = "tcp",
        /// A DNS query to the node as a name server: whether it answers, and with what.
        Dns = "dns",
    }
}

named_enum! {
    /// The record type a `dns` check asks for.
    pub enum DnsRecord ("record type") {
        A = "A",
        Aaaa = "AAAA",
        Cname = "CNAME",
        Mx = "MX",
        Txt = "TXT",
        Ptr = "PTR",
        Ns = "NS",
        Srv = "SRV",
        Soa = "SOA",
    }
}

impl CheckKind {
    /// The port a check of this kind uses unless told.
    pub fn default_port(self) -> Option<u16> {
        match self {
            CheckKind::Tls | CheckKind::Https => Some(443),
            CheckKind::Http => Some(80),
            CheckKind::Dns => Some(53),
            CheckKind::Tcp => None,
        }
    }

    /// Seconds between two runs unless told: certificates change slowly.
    pub fn default_interval_s(self) -> u32 {
        match self {
            CheckKind::Tls => DEFAULT_TLS_INTERVAL_S,
            _ => DEFAULT_CHECK_INTERVAL_S,
        }
    }
}

/// Seconds between two runs of a `tls` check by default.
pub const DEFAULT_TLS_INTERVAL_S: u32 = 300;
/// Seconds between two runs of the other checks by default.
pub const DEFAULT_CHECK_INTERVAL_S: u32 = 60;
/// Milliseconds a check may take by default (connect, handshake, request and answer).
pub const DEFAULT_CHECK_TIMEOUT_MS: u32 = 10_000;
/// The shortest interval a check may have.
pub const MIN_CHECK_INTERVAL_S: u32 = 10;
/// The longest interval a check may have (a day).
pub const MAX_CHECK_INTERVAL_S: u32 = 86_400;
/// The longest timeout, milliseconds.
pub const MAX_CHECK_TIMEOUT_MS: u32 = 60_000;
/// Most checks on one node.
pub const MAX_CHECKS_PER_NODE: usize = 50;
/// Longest path, server name, name looked up or expected text, in characters.
pub const MAX_CHECK_TEXT: usize = 512;
/// Largest CA bundle a `tls` check may carry, bytes.
pub const MAX_CHECK_CA_BYTES: usize = 64 * 1024;
/// Most of an HTTP answer's body a check reads (for the expected text), bytes.
pub const MAX_CHECK_BODY_BYTES: usize = 256 * 1024;

/// What a check is: what `POST /nodes/{id}/checks` takes and `PUT …/checks/{id}` replaces.
///
/// The short form, for the command line and the CSV import's `checks` column:
/// `tls:443`, `tls:8443@hmi.plant.local` (the server name sent), `http:80/health`,
/// `https:8443/login`, `tcp:502`, `dns:historian.plant.local` (a name the node must resolve),
/// `dns:historian.plant.local=10.0.0.5` (and the answer it must give),
/// `dns:5353:plant.local/MX` (another port, another record type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub kind: CheckKind,
    /// The port; the kind's default (443, 80) when absent. `tcp` needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `http`/`https`: the path requested, `/` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `tls`/`https`: the server name sent (SNI) and checked against the certificate; the
    /// node's address when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// `http`/`https`: the status expected; any 2xx or 3xx when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<u16>,
    /// `http`/`https`: text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_text: Option<String>,
    /// `dns`: the name looked up (the node is the name server asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `dns`: the record type asked for, `A` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<DnsRecord>,
    /// `dns`: an answer that must be among those returned (an address, a name, a text;
    /// case and a trailing dot do not matter); any answer will do when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_answer: Option<String>,
    /// `tls`: CA certificates (PEM) trusted besides the collector's system roots, for a plant
    /// with its own CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// `tls`: whether a chain that leads to no trusted root makes the certificate invalid
    /// (`check.cert_valid` 0, the `cert_invalid` rule); when absent, true if a CA is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_trust: Option<bool>,
    /// Seconds between runs; 300 for `tls`, 60 for the others when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u32>,
    /// Milliseconds one run may take; 10,000 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
}

impl CheckSpec {
    /// A check of `kind` with every default.
    pub fn new(kind: CheckKind) -> CheckSpec {
        CheckSpec {
            kind,
            port: None,
            path: None,
            server_name: None,
            expect_status: None,
            expect_text: None,
            query: None,
            record: None,
            expect_answer: None,
            ca_pem: None,
            require_trust: None,
            interval_s: None,
            timeout_ms: None,
        }
    }

    /// The port used.
    pub fn port(&self) -> u16 {
        self.port.or(self.kind.default_port()).unwrap_or(0)
    }

    /// Seconds between runs.
    pub fn interval_s(&self) -> u32 {
        self.interval_s
            .unwrap_or_else(|| self.kind.default_interval_s())
    }

    /// Milliseconds one run may take.
    pub fn timeout_ms(&self) -> u32 {
        self.timeout_ms.unwrap_or(DEFAULT_CHECK_TIMEOUT_MS)
    }

    /// The path requested (`http`/`https`).
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("/")
    }

    /// The record type asked for (`dns`).
    pub fn record(&self) -> DnsRecord {
        self.record.unwrap_or(DnsRecord::A)
    }

    /// Whether an untrusted chain makes the certificate invalid (`tls`).
    pub fn require_trust(&self) -> bool {
        self.require_trust.unwrap_or(self.ca_pem.is_some())
    }

    /// What is wrong with the check, if anything: one sentence naming the field.
    pub fn problem(&self) -> Option<String> {
        let web = matches!(self.kind, CheckKind::Http | CheckKind::Https);
        let tls = matches!(self.kind, CheckKind::Tls | CheckKind::Https);
        let dns = self.kind == CheckKind::Dns;
        if self.port == Some(0) || (self.port.is_none() && self.kind.default_port().is_none()) {
            return Some(format!("a {} check needs a port (1-65535)", self.kind));
        }
        if let Some(interval) = self.interval_s
            && !(MIN_CHECK_INTERVAL_S..=MAX_CHECK_INTERVAL_S).contains(&interval)
        {
            return Some(format!(
                "interval_s must be {MIN_CHECK_INTERVAL_S}-{MAX_CHECK_INTERVAL_S} seconds"
            ));
        }
        if let Some(timeout) = self.timeout_ms
            && !(100..=MAX_CHECK_TIMEOUT_MS).contains(&timeout)
        {
            return Some(format!(
                "timeout_ms must be 100-{MAX_CHECK_TIMEOUT_MS} milliseconds"
            ));
        }
        if !web
            && (self.path.is_some() || self.expect_status.is_some() || self.expect_text.is_some())
        {
            return Some(format!(
                "path, expect_status and expect_text are for http and https checks, not {}",
                self.kind
            ));
        }
        if !dns && (self.query.is_some() || self.record.is_some() || self.expect_answer.is_some()) {
            return Some(format!(
                "query, record and expect_answer are for dns checks, not {}",
                self.kind
            ));
        }
        if self.kind != CheckKind::Tls && (self.ca_pem.is_some() || self.require_trust.is_some()) {
            return Some(format!(
                "ca_pem and require_trust are for tls checks, not {}",
                self.kind
            ));
        }
        if dns {
            match &self.query {
                None => return Some("a dns check needs the name to look up (query)".into()),
                Some(query) if !is_dns_name(query) => {
                    return Some(format!("{query:?} is not a name to look up"));
                }
                Some(_) => {}
            }
        }
        if let Some(pem) = &self.ca_pem {
            if pem.len() > MAX_CHECK_CA_BYTES {
                return Some(format!(
                    "ca_pem is at most {} KiB",
                    MAX_CHECK_CA_BYTES / 1024
                ));
            }
            if let Err(problem) = crate::client::pem_certificates(pem) {
                return Some(format!("ca_pem: {problem}"));
            }
        }
        if !tls && self.server_name.is_some() {
            return Some(format!(
                "server_name is for tls and https checks, not {}",
                self.kind
            ));
        }
        if let Some(path) = &self.path
            && (!path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Some("the path must start with / and hold no spaces".into());
        }
        if let Some(status) = self.expect_status
            && !(100..=599).contains(&status)
        {
            return Some("expect_status must be an HTTP status, 100-599".into());
        }
        if let Some(name) = &self.server_name
            && (name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c)))
        {
            return Some(format!("{name:?} is not a server name"));
        }
        let long = [
            &self.path,
            &self.server_name,
            &self.expect_text,
            &self.query,
            &self.expect_answer,
        ]
        .into_iter()
        .flatten()
        .any(|text| text.chars().count() > MAX_CHECK_TEXT);
        if long {
            return Some(format!("texts are at most {MAX_CHECK_TEXT} characters"));
        }
        None
    }
}

/// Whether `text` is a DNS name (letters, digits, `-`, `_`, dots; labels of at most 63).
fn is_dns_name(text: &str) -> bool {
    let name = text.strip_suffix('.').unwrap_or(text);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// The short form (`tls:443`, `http:80/health`, `tls:8443@hmi.plant.local`,
/// `dns:historian.plant.local=10.0.0.5`).
impl fmt::Display for CheckSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == CheckKind::Dns {
            f.write_str("dns:")?;
            if self.port() != 53 {
                write!(f, "{}:", self.port())?;
            }
            f.write_str(self.query.as_deref().unwrap_or_default())?;
            if self.record() != DnsRecord::A {
                write!(f, "/{}", self.record())?;
            }
            if let Some(answer) = &self.expect_answer {
                write!(f, "={answer}")?;
            }
            return Ok(());
        }
        write!(f, "{}:{}", self.kind, self.port())?;
        if matches!(self.kind, CheckKind::Http | CheckKind::Https) {
            f.write_str(self.path())?;
        }
        if let Some(name) = &self.server_name {
            write!(f, "@{name}")?;
        }
        Ok(())
    }
}

impl FromStr for CheckSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<CheckSpec, String> {
        let text = text.trim();
        let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
        let kind: CheckKind = kind
            .trim()
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| format!("{text:?}: the kind must be tls, http, https, tcp or dns"))?;
        let mut spec = CheckSpec::new(kind);
        if kind == CheckKind::Dns {
            parse_dns(rest, &mut spec).map_err(|problem| format!("{text:?}: {problem}"))?;
            return match spec.problem() {
                Some(problem) => Err(format!("{text:?}: {problem}")),
                None => Ok(spec),
            };
        }
        let (rest, name) = match rest.split_once('@') {
            Some((rest, name)) => (rest, Some(name.to_owned())),
            None => (rest, None),
        };
        spec.server_name = name;
        let (port, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(rest[i..].to_owned())),
            None => (rest, None),
        };
        if !port.is_empty() {
            spec.port = Some(
                port.parse()
                    .map_err(|_| format!("{text:?}: {port:?} is not a port"))?,
            );
        }
        spec.path = path;
        match spec.problem() {
            Some(problem) => Err(format!("{text:?}: {problem}")),
            None => Ok(spec),
        }
    }
}

/// Reads the part of a `dns` check after `dns:`: `[PORT:]NAME[/TYPE][=ANSWER]`.
fn parse_dns(rest: &str, spec: &mut CheckSpec) -> Result<(), String> {
    let (rest, answer) = match rest.split_once('=') {
        Some((rest, answer)) => (rest, Some(answer.trim().to_owned())),
        None => (rest, None),
    };
    let (rest, record) = match rest.split_once('/') {
        Some((rest, record)) => (
            rest,
            Some(record.parse::<DnsRecord>().map_err(|e| e.to_string())?),
        ),
        None => (rest, None),
    };
    let (port, name) = match rest.split_once(':') {
        Some((port, name)) => (
            Some(
                port.parse::<u16>()
                    .map_err(|_| format!("{port:?} is not a port"))?,
            ),
            name,
        ),
        None => (None, rest),
    };
    spec.port = port;
    spec.query = Some(name.trim().to_owned()).filter(|n| !n.is_empty());
    spec.record = record;
    spec.expect_answer = answer.filter(|a| !a.is_empty());
    Ok(())
}

/// A check of a node, as `GET /nodes/{id}/checks` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub id: i64,
    pub node_id: i64,
    #[serde(flatten)]
    pub spec: CheckSpec,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A check as its collector gets it, inside its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetCheck {
    pub id: i64,
    #[serde(flatten)]
    pub spec: CheckSpec,
}

/// What a `tls` check found (`POST /remote-collectors/{id}/certificates`, and
/// `GET /certificates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateFinding {
    pub check_id: i64,
    /// Filled in by the server: the node checked, its name, the port.
    #[serde(default)]
    pub node_id: i64,
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub port: u16,
    /// The server name sent.
    pub server_name: String,
    /// Why no certificate was had (no connection, no TLS), or `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `TLSv1.3`, `TLSv1.2`, or `TLS <1.2` for a server that speaks nothing newer than TLS 1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub issuer: String,
    /// DNS names and IP addresses of the leaf's subjectAltName.
    #[serde(default)]
    pub sans: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub not_before: Option<OffsetDateTime>,
    /// The leaf's expiry.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub not_after: Option<OffsetDateTime>,
    /// The earliest expiry of any certificate the server sent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub chain_not_after: Option<OffsetDateTime>,
    /// Certificates the server sent, leaf first.
    #[serde(default)]
    pub chain_length: u32,
    /// Whether the server name is one the leaf names.
    #[serde(default)]
    pub name_matches: bool,
    /// Whether the chain leads to a trusted root (the collector's system roots).
    #[serde(default)]
    pub trusted: bool,
    /// Why it is not trusted (unknown issuer, expired, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_problem: Option<String>,
    /// The leaf's signature algorithm (`ecdsa-with-SHA256`, `sha256WithRSAEncryption`).
    #[serde(default)]
    pub signature_algorithm: String,
    /// The leaf's public key: `RSA 2048`, `EC P-256`, `Ed25519`.
    #[serde(default)]
    pub key: String,
    /// SHA-256 of the leaf, hex.
    #[serde(default)]
    pub fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
}

impl CertificateFinding {
    /// Whole days until the leaf expires, rounded down (negative once it has: half a day past
    /// expiry is -1), at `now`: what `check.cert_days_left` says too.
    pub fn days_left(&self, now: OffsetDateTime) -> Option<i64> {
        self.not_after
            .map(|t| ((t - now).as_seconds_f64() / 86_400.0).floor() as i64)
    }
}

/// `POST /remote-collectors/{id}/certificates`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateReport {
    pub findings: Vec<CertificateFinding>,
}

/// Query of `GET /api/v1/certificates`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateQuery {
    /// Only certificates expiring within this many days (expired ones included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiring_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_short_form_reads_and_writes_back() {
        for (text, written) in [
            ("tls:443", "tls:443"),
            ("tls", "tls:443"),
            ("tls:8443@hmi.plant.local", "tls:8443@hmi.plant.local"),
            ("http:80/health", "http:80/health"),
            ("HTTPS:8443/login", "https:8443/login"),
            ("https", "https:443/"),
            ("tcp:502", "tcp:502"),
            ("dns:historian.plant.local", "dns:historian.plant.local"),
            ("dns:53:historian.plant.local", "dns:historian.plant.local"),
            (
                "dns:hist.plant.local=10.0.0.5",
                "dns:hist.plant.local=10.0.0.5",
            ),
            ("dns:5353:plant.local/mx", "dns:5353:plant.local/MX"),
            ("dns:plant.local/TXT=v=spf1", "dns:plant.local/TXT=v=spf1"),
        ] {
            let spec: CheckSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), written, "{text}");
            // Written out, it reads back as the same check (a default port now spelled out).
            let again = written.parse::<CheckSpec>().unwrap();
            assert_eq!(
                (again.to_string(), again.port()),
                (spec.to_string(), spec.port())
            );
        }
        let http: CheckSpec = "http:8080/health".parse().unwrap();
        assert_eq!((http.port(), http.path()), (8080, "/health"));
        assert_eq!(http.interval_s(), 60);
        assert_eq!("tls:443".parse::<CheckSpec>().unwrap().interval_s(), 300);
        let dns: CheckSpec = "dns:5353:plant.local/MX=mail.plant.local".parse().unwrap();
        assert_eq!(
            (
                dns.port(),
                dns.query.as_deref(),
                dns.record(),
                dns.expect_answer.as_deref()
            ),
            (
                5353,
                Some("plant.local"),
                DnsRecord::Mx,
                Some("mail.plant.local")
            )
        );
        assert_eq!(dns.interval_s(), 60);
    }

    #[test]
    fn trust_is_required_when_a_ca_is_given_unless_told() {
        let mut tls = CheckSpec::new(CheckKind::Tls);
        assert!(!tls.require_trust());
        tls.ca_pem = Some("not a certificate".into());
        assert!(
            tls.problem().unwrap().contains("ca_pem"),
            "{:?}",
            tls.problem()
        );
        assert!(tls.require_trust());
        tls.require_trust = Some(false);
        assert!(!tls.require_trust());
        let mut tcp = CheckSpec::new(CheckKind::Tcp);
        tcp.port = Some(502);
        tcp.require_trust = Some(true);
        assert!(tcp.problem().unwrap().contains("for tls checks"));
    }

    #[test]
    fn bad_checks_say_what_is_wrong() {
        for (text, problem) in [
            ("tcp", "needs a port"),
            ("tcp:0", "needs a port"),
            ("ftp:21", "the kind must be"),
            ("tls:99999", "is not a port"),
            ("tcp:502/x", "are for http and https"),
            ("http:80@name", "server_name is for tls"),
            ("tls:443@bad name", "is not a server name"),
            ("dns", "needs the name to look up"),
            ("dns:=10.0.0.1", "needs the name to look up"),
            ("dns:bad name.plant", "is not a name to look up"),
            ("dns:plant.local/BOGUS", "record type"),
            ("dns:x:plant.local", "is not a port"),
        ] {
            let error = text.parse::<CheckSpec>().unwrap_err();
            assert!(error.contains(problem), "{text}: {error}");
        }
        let mut spec = CheckSpec::new(CheckKind::Http);
        spec.interval_s = Some(5);
        assert!(spec.problem().unwrap().contains("interval_s"));
        spec.interval_s = None;
        spec.path = Some("health".into());
        assert!(spec.problem().unwrap().contains("start with /"));
    }
}
