//! Real TLS servers on loopback for the service-check tests: a private PKI made with rcgen (a
//! root, an intermediate, leaves with any names and dates), served with tokio-rustls exactly as
//! given (so a test can leave the intermediate out); and `openssl s_server` for a server that
//! speaks only TLS 1.0 (package `openssl`, which `scripts/test` installs).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use crate::{free_port, wait_until};

/// A root CA and an intermediate it signed.
pub struct Pki {
    pub root: CertifiedIssuer<'static, KeyPair>,
    pub intermediate: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key.
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub pem: String,
    pub key_pem: String,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params
}

impl Pki {
    pub fn new() -> Pki {
        let root =
            CertifiedIssuer::self_signed(ca_params("Plant Root CA"), KeyPair::generate().unwrap())
                .unwrap();
        let intermediate = CertifiedIssuer::signed_by(
            ca_params("Plant Issuing CA"),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        Pki { root, intermediate }
    }

    /// The root, DER, to trust.
    pub fn root_der(&self) -> CertificateDer<'static> {
        self.root.der().clone()
    }

    /// The root, PEM: what a user gives a check as the plant's CA.
    pub fn root_pem(&self) -> String {
        self.root.pem()
    }

    pub fn intermediate_der(&self) -> CertificateDer<'static> {
        self.intermediate.der().clone()
    }

    /// A leaf for `names`, valid from `not_before` to `not_after`, issued by the intermediate.
    pub fn leaf(
        &self,
        names: &[&str],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.intermediate).unwrap();
        leaf(cert, key)
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

/// A self-signed leaf for `names`, valid for a year.
pub fn self_signed(names: &[&str]) -> Leaf {
    let params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    leaf(cert, key)
}

/// A self-signed certificate for `names` that also says it is a CA, as `openssl req -x509` and
/// many devices make them.
pub fn self_signed_ca(names: &[&str]) -> Leaf {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    leaf(cert, key)
}

fn leaf(cert: rcgen::Certificate, key: KeyPair) -> Leaf {
    Leaf {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// Days from now.
pub fn days(n: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(n)
}

/// Serves TLS on a loopback port with exactly `chain` (leaf first) until the runtime ends:
/// each connection is handshaken, then answered with a minimal HTTP response and closed.
pub async fn serve(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt as _;
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    address
}

/// `openssl s_server` with `leaf`, killed when dropped: speaking only TLS 1.0 ([`start`]), or
/// TLS 1.2 and 1.3 in a process of its own ([`modern`], for benchmarks).
///
/// [`start`]: LegacyServer::start
/// [`modern`]: LegacyServer::modern
pub struct LegacyServer {
    child: Child,
    pub address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for LegacyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LegacyServer {
    pub fn start(leaf: &Leaf) -> LegacyServer {
        LegacyServer::spawn(leaf, &["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"])
    }

    pub fn modern(leaf: &Leaf) -> LegacyServer {
        LegacyServer::spawn(leaf, &[])
    }

    fn spawn(leaf: &Leaf, protocol: &[&str]) -> LegacyServer {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, &leaf.pem).unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet"])
            .args(protocol)
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl (Debian package openssl; scripts/test installs it)");
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_until(
            Duration::from_secs(10),
            "openssl s_server to listen",
            || std::net::TcpStream::connect(address).ok().map(|_| ()),
        );
        LegacyServer {
            child,
            address,
            _dir: dir,
        }
    }
}
