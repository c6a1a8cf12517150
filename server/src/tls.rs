//! The server's TLS certificate: a self-signed one generated into the data dir at first start,
//! or the operator's own from `--tls-cert`/`--tls-key`. Clients pin its SHA-256 fingerprint.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use plantwatch_shared::Fingerprint;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use crate::config::Config;

/// Certificate chain and key in PEM, and the fingerprint of the leaf certificate.
pub struct TlsMaterial {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub fingerprint: Fingerprint,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

fn generated_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("server.crt"), dir.join("server.key"))
}

/// Loads the configured certificate, or the generated one, generating it if there is none yet.
pub fn load_or_generate(config: &Config) -> anyhow::Result<TlsMaterial> {
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        return load(cert, key);
    }
    let (cert_path, key_path) = generated_paths(&config.data_dir);
    if cert_path.exists() || key_path.exists() {
        warn_if_key_readable_by_others(&key_path);
        return load(&cert_path, &key_path);
    }
    generate(&cert_path, &key_path)
}

/// Fingerprint of the certificate the server serves, for `plantwatch-server fingerprint`.
pub fn existing_fingerprint(config: &Config) -> anyhow::Result<Fingerprint> {
    let cert_path = match &config.tls_cert {
        Some(path) => path.clone(),
        None => generated_paths(&config.data_dir).0,
    };
    if !cert_path.exists() {
        return Err(anyhow!(
            "no certificate at {}: start the server once to generate it (or pass --tls-cert)",
            cert_path.display()
        ));
    }
    let pem = fs::read(&cert_path)
        .with_context(|| format!("reading the certificate {}", cert_path.display()))?;
    leaf_fingerprint(&pem, &cert_path)
}

fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<TlsMaterial> {
    let cert_pem = fs::read(cert_path)
        .with_context(|| format!("reading the TLS certificate {}", cert_path.display()))?;
    let key_pem = fs::read(key_path)
        .with_context(|| format!("reading the TLS key {}", key_path.display()))?;
    let fingerprint = leaf_fingerprint(&cert_pem, cert_path)?;
    Ok(TlsMaterial {
        cert_pem,
        key_pem,
        fingerprint,
    })
}

fn leaf_fingerprint(pem: &[u8], path: &Path) -> anyhow::Result<Fingerprint> {
    let leaf = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or_else(|| anyhow!("{} holds no PEM certificate", path.display()))?
        .with_context(|| format!("parsing the certificate {}", path.display()))?;
    Ok(Fingerprint::of_der(leaf.as_ref()))
}

fn generate(cert_path: &Path, key_path: &Path) -> anyhow::Result<TlsMaterial> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() && !names.iter().any(|n| n == host) {
            names.push(host.to_owned());
        }
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .context("generating the self-signed TLS certificate")?;
    let cert_pem = certified.cert.pem().into_bytes();
    let key_pem = certified.signing_key.serialize_pem().into_bytes();
    let dir = cert_path
        .parent()
        .ok_or_else(|| anyhow!("no directory for {}", cert_path.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))?;
    write_new_file(key_path, &key_pem, 0o600)?;
    write_new_file(cert_path, &cert_pem, 0o644)?;
    Ok(TlsMaterial {
        fingerprint: Fingerprint::of_der(certified.cert.der()),
        cert_pem,
        key_pem,
    })
}

/// Writes `contents` to a file that must not exist yet, created with `mode` from the start (a
/// key is never readable by others, not even for an instant).
pub fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn warn_if_key_readable_by_others(key_path: &Path) {
    if let Ok(meta) = fs::metadata(key_path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %key_path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "TLS key is readable by other users; chmod 600 it."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_private_and_reloads_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let first = load_or_generate(&config).unwrap();
        let (_, key_path) = generated_paths(dir.path());
        let mode = fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = load_or_generate(&config).unwrap();
        assert_eq!(first.fingerprint, second.fingerprint);
        assert_eq!(existing_fingerprint(&config).unwrap(), first.fingerprint);
    }

    #[test]
    fn fingerprint_without_a_certificate_says_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let err = existing_fingerprint(&config).unwrap_err();
        assert!(err.to_string().contains("start the server once"), "{err}");
    }
}
