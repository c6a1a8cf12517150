//! The `tls` check: a handshake that takes whatever chain the server sends (recording it,
//! refusing nothing), then the chain judged on its own: dates, the server name, trust in the
//! roots, the leaf's algorithm and key, the TLS version. A server that speaks nothing newer
//! than TLS 1.1 (old PLCs and HMIs) is a finding, not a failure of the check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plantwatch_shared::Fingerprint;
use plantwatch_shared::api::CertificateFinding;
use plantwatch_shared::client::RecordingVerifier;
pub use plantwatch_shared::client::system_roots;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

/// The TLS version of a server that speaks nothing newer than TLS 1.1.
pub const LEGACY_VERSION: &str = "TLS <1.2";

/// What one run found, with the handshake's time.
#[derive(Debug, Clone)]
pub struct TlsRun {
    pub finding: CertificateFinding,
    /// Connect and handshake, milliseconds; `None` when there was no handshake.
    pub time_ms: Option<f64>,
    /// Whether the server speaks only TLS older than 1.2.
    pub legacy: bool,
    /// Whether an untrusted chain makes the certificate invalid (the check says so).
    pub require_trust: bool,
}

impl TlsRun {
    /// Whether a certificate was had.
    pub fn up(&self) -> bool {
        self.finding.error.is_none()
    }

    /// Within its dates, naming the server name, and trusted when the check requires it.
    pub fn valid(&self, now: OffsetDateTime) -> bool {
        let f = &self.finding;
        (f.trusted || !self.require_trust)
            && f.name_matches
            && f.not_before.is_some_and(|t| t <= now)
            && f.not_after.is_some_and(|t| now < t)
    }
}

/// Runs the check against `addr`, sending `server_name`.
pub async fn run(
    check_id: i64,
    addr: SocketAddr,
    server_name: &str,
    timeout: Duration,
    roots: &Arc<RootCertStore>,
) -> TlsRun {
    let now = OffsetDateTime::now_utc();
    let mut finding = CertificateFinding {
        check_id,
        node_id: 0,
        node: String::new(),
        port: addr.port(),
        server_name: server_name.to_owned(),
        error: None,
        tls_version: None,
        subject: String::new(),
        issuer: String::new(),
        sans: Vec::new(),
        not_before: None,
        not_after: None,
        chain_not_after: None,
        chain_length: 0,
        name_matches: false,
        trusted: false,
        trust_problem: None,
        signature_algorithm: String::new(),
        key: String::new(),
        fingerprint: String::new(),
        checked_at: now,
    };
    let failed = |mut finding: CertificateFinding, error: String, legacy: bool| TlsRun {
        finding: {
            finding.error = Some(error);
            finding
        },
        time_ms: None,
        legacy,
        require_trust: false,
    };
    let name = match ServerName::try_from(server_name.to_owned()) {
        Ok(name) => name,
        Err(error) => return failed(finding, format!("{server_name:?}: {error}"), false),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // Whatever chain the server sends is taken (and recorded), then judged on its own.
    let (recorder, chain) = RecordingVerifier::new(None);
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .dangerous()
                .with_custom_certificate_verifier(recorder)
                .with_no_client_auth()
        });
    let mut config = match config {
        Ok(config) => config,
        Err(error) => return failed(finding, error.to_string(), false),
    };
    config.resumption = rustls::client::Resumption::disabled();
    let started = Instant::now();
    let handshake = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| (format!("no connection to {addr}: {e}"), false))?;
        let _ = stream.set_nodelay(true);
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name.clone(), stream)
            .await
            .map_err(|e| handshake_problem(&e))
    };
    let stream = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err((problem, legacy))) => {
            if legacy {
                finding.tls_version = Some(LEGACY_VERSION.into());
            }
            return failed(finding, problem, legacy);
        }
        Err(_) => {
            return failed(
                finding,
                format!("no TLS handshake within {} ms", timeout.as_millis()),
                false,
            );
        }
    };
    let time_ms = started.elapsed().as_secs_f64() * 1000.0;
    finding.tls_version = stream
        .get_ref()
        .1
        .protocol_version()
        .map(|v| v.as_str().unwrap_or("TLS").replace('_', "."));
    drop(stream);
    let chain = chain.lock().map(|c| c.clone()).unwrap_or_default();
    judge(&mut finding, &chain, &name, roots, now);
    TlsRun {
        finding,
        time_ms: Some(time_ms),
        legacy: false,
        require_trust: false,
    }
}

/// A failed handshake in words, and whether it failed because the server speaks only TLS
/// older than 1.2 (which rustls does not).
fn handshake_problem(error: &std::io::Error) -> (String, bool) {
    let inner = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    let legacy = matches!(
        inner,
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::ProtocolVersion
        )) | Some(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13
                | rustls::PeerIncompatible::Tls12NotOffered
        ))
    ) || matches!(
        inner,
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::UnknownProtocolVersion
        ))
    );
    if legacy {
        (
            "the server speaks only TLS older than 1.2 (1.0, 1.1 or SSL); no certificate read: \
             plan its upgrade"
                .into(),
            true,
        )
    } else {
        (format!("TLS handshake failed: {error}"), false)
    }
}

/// Fills in what the chain says: the leaf's fields, the earliest expiry, the name, the trust.
fn judge(
    finding: &mut CertificateFinding,
    chain: &[CertificateDer<'static>],
    name: &ServerName<'static>,
    roots: &Arc<RootCertStore>,
    now: OffsetDateTime,
) {
    finding.chain_length = chain.len() as u32;
    let Some(leaf_der) = chain.first() else {
        finding.error = Some("the server sent no certificate".into());
        return;
    };
    finding.fingerprint = Fingerprint::of_der(leaf_der.as_ref()).to_hex();
    let parsed: Vec<X509Certificate> = chain
        .iter()
        .filter_map(|der| X509Certificate::from_der(der.as_ref()).ok().map(|(_, c)| c))
        .collect();
    finding.chain_not_after = parsed
        .iter()
        .filter_map(|c| time_of(c.validity().not_after))
        .min();
    let Some(leaf) = parsed.first() else {
        finding.error = Some("the server's certificate cannot be read".into());
        return;
    };
    finding.subject = leaf.subject().to_string();
    finding.issuer = leaf.issuer().to_string();
    finding.not_before = time_of(leaf.validity().not_before);
    finding.not_after = time_of(leaf.validity().not_after);
    finding.signature_algorithm =
        algorithm_name(&leaf.signature_algorithm.algorithm.to_id_string());
    finding.key = key_description(leaf);
    if let Ok(Some(sans)) = leaf.subject_alternative_name() {
        for san in &sans.value.general_names {
            match san {
                GeneralName::DNSName(dns) => finding.sans.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_of(bytes) {
                        finding.sans.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    finding.name_matches = name_matches(&finding.server_name, &finding.sans);
    // Trust, judged apart from the name (which is reported on its own).
    let verifier = WebPkiServerVerifier::builder_with_provider(
        roots.clone(),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build();
    let verdict = verifier
        .map_err(|e| {
            format!("it does not chain to a trusted root: this collector trusts none ({e})")
        })
        .and_then(|verifier| {
            let at = UnixTime::since_unix_epoch(Duration::from_secs(
                u64::try_from(now.unix_timestamp()).unwrap_or(0),
            ));
            verifier
                .verify_server_cert(leaf_der, &chain[1..], name, &[], at)
                .map(|_| ())
                .map_err(|e| match e {
                    rustls::Error::InvalidCertificate(
                        CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. },
                    ) => String::new(),
                    rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                        "it does not chain to a trusted root (self-signed, a private CA, or an \
                     intermediate the server does not send)"
                            .into()
                    }
                    other => other.to_string(),
                })
        });
    match verdict {
        Ok(()) => finding.trusted = true,
        Err(problem) if problem.is_empty() => finding.trusted = true,
        // The certificate given on the check is the one served (a device's self-signed
        // certificate, often marked as a CA, which webpki will not take as a leaf): trusted as
        // that key, which the handshake proved the server holds.
        Err(_) if is_anchor(leaf, roots) => finding.trusted = true,
        Err(problem) => finding.trust_problem = Some(problem),
    }
}

/// Whether the leaf's public key is that of one of the trusted roots.
fn is_anchor(leaf: &X509Certificate, roots: &RootCertStore) -> bool {
    // A trust anchor keeps the SubjectPublicKeyInfo's contents, without its SEQUENCE header.
    let spki = leaf.public_key().raw;
    roots.roots.iter().any(|anchor| {
        let key = anchor.subject_public_key_info.as_ref();
        !key.is_empty()
            && spki.len() > key.len()
            && spki.len() - key.len() <= 4
            && spki.ends_with(key)
    })
}

fn time_of(asn1: x509_parser::time::ASN1Time) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(asn1.timestamp()).ok()
}

fn ip_of(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// Whether `server_name` is one of `sans` (a `*.` wildcard covering one left-most label).
/// The subject's CN is not looked at, as no current client does.
pub fn name_matches(server_name: &str, sans: &[String]) -> bool {
    let name = server_name.trim_end_matches('.').to_ascii_lowercase();
    if let Ok(ip) = name.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return sans
            .iter()
            .any(|san| san.parse::<std::net::IpAddr>().is_ok_and(|s| s == ip));
    }
    sans.iter().any(|san| {
        let san = san.trim_end_matches('.').to_ascii_lowercase();
        match san.strip_prefix("*.") {
            Some(parent) => name
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => san == name,
        }
    })
}

fn algorithm_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassa-pss",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "Ed25519",
        other => other,
    }
    .to_owned()
}

fn key_description(cert: &X509Certificate) -> String {
    use x509_parser::public_key::PublicKey;
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "EC P-256".to_owned(),
                Some("1.3.132.0.34") => "EC P-384".to_owned(),
                Some("1.3.132.0.35") => "EC P-521".to_owned(),
                _ => format!("EC {}", point.key_size()),
            }
        }
        Ok(PublicKey::Unknown(_)) if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => {
            "Ed25519".to_owned()
        }
        Ok(_) | Err(_) => algorithm_name(&spki.algorithm.algorithm.to_id_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_exactly_or_by_one_wildcard_label() {
        let sans = vec![
            "hmi.plant.local".to_owned(),
            "*.line1.plant.local".to_owned(),
            "10.0.0.5".to_owned(),
        ];
        assert!(name_matches("HMI.plant.local.", &sans));
        assert!(name_matches("press.line1.plant.local", &sans));
        assert!(!name_matches("a.press.line1.plant.local", &sans));
        assert!(!name_matches("line1.plant.local", &sans));
        assert!(name_matches("10.0.0.5", &sans));
        assert!(!name_matches("10.0.0.6", &sans));
        assert!(!name_matches("historian.plant.local", &sans));
    }
}
