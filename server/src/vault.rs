//! The credentials vault: AES-256-GCM with a random 96-bit nonce per value and the owner and
//! field of each value bound as associated data, so a ciphertext copied to another credential
//! or field does not open.
//!
//! The 32-byte key comes from `PLANTWATCH_VAULT_KEY` (base64 or hex) or the file `vault.key` in
//! the data dir (mode 0600, generated at first start). A check value in `settings` tells a
//! wrong key at start, before any secret is touched. [`rotate`] re-encrypts every secret under
//! a new key in one transaction (`plantwatch-server vault rotate`).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use plantwatch_shared::Secret;
use rand::RngCore as _;
use rusqlite::{Connection, OptionalExtension as _};

use crate::tls::write_new_file;

/// Environment variable that carries the key instead of the key file.
pub const KEY_ENV: &str = "PLANTWATCH_VAULT_KEY";
/// Key file name in the data dir.
pub const KEY_FILE: &str = "vault.key";
/// Where a rotation writes the new key before its transaction commits.
const NEW_KEY_FILE: &str = "vault.key.new";
/// `settings` key of the check value.
const CHECK_SETTING: &str = "vault_check";
const CHECK_AAD: &str = "plantwatch:vault-check";
const CHECK_PLAINTEXT: &str = "plantwatch vault";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// Failures to open a sealed value.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the sealed value is not valid base64 or too short")]
    Malformed,
    #[error(
        "the value does not open with this vault key (wrong key, or the value was moved \
         from another credential or field)"
    )]
    WrongKey,
    #[error("the value is not UTF-8 text")]
    NotText,
    #[error("the value could not be encrypted (too long)")]
    TooLong,
}

/// Where the key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env,
    File(PathBuf),
}

/// An open vault: seals and opens secrets with one key.
#[derive(Clone)]
pub struct Vault {
    cipher: Aes256Gcm,
    source: KeySource,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Associated data of a credential's secret field.
pub fn credential_aad(credential_id: i64, field: &str) -> String {
    format!("credential:{credential_id}:{field}")
}

/// Associated data of a collector's stored configuration (it holds credentials in clear).
pub fn config_aad(collector_id: i64) -> String {
    format!("collector_config:{collector_id}")
}

/// Associated data of a notification channel's secret field.
pub fn channel_aad(channel_id: i64, field: &str) -> String {
    format!("channel:{channel_id}:{field}")
}

impl Vault {
    /// A vault with `key`.
    pub fn from_key(key: &[u8; KEY_LEN], source: KeySource) -> Vault {
        let cipher = Aes256Gcm::new(&(*key).into());
        Vault { cipher, source }
    }

    /// Where the key came from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// Encrypts `plaintext` bound to `aad`: base64 of nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, aad: &str, plaintext: &str) -> Result<String, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: aad.as_bytes(),
        };
        // Encryption fails only for inputs over 64 GiB, which the body limits rule out.
        let ciphertext = self
            .cipher
            .encrypt(&Nonce::from(nonce), payload)
            .map_err(|_| VaultError::TooLong)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(STANDARD.encode(sealed))
    }

    /// Decrypts a value sealed with [`Self::seal`] under the same `aad`.
    pub fn open(&self, aad: &str, sealed: &str) -> Result<Secret, VaultError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| VaultError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(VaultError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Malformed)?;
        let payload = Payload {
            msg: ciphertext,
            aad: aad.as_bytes(),
        };
        let plaintext = self
            .cipher
            .decrypt(&Nonce::from(nonce), payload)
            .map_err(|_| VaultError::WrongKey)?;
        String::from_utf8(plaintext)
            .map(Secret::from)
            .map_err(|_| VaultError::NotText)
    }

    /// Seals every field of `secrets` for `aad_of(field)`, as the JSON the tables store.
    pub fn seal_all(
        &self,
        secrets: &BTreeMap<String, Secret>,
        aad_of: impl Fn(&str) -> String,
    ) -> Result<String, VaultError> {
        let sealed = secrets
            .iter()
            .map(|(field, value)| Ok((field.as_str(), self.seal(&aad_of(field), value.expose())?)))
            .collect::<Result<BTreeMap<&str, String>, VaultError>>()?;
        Ok(serde_json::to_string(&sealed).unwrap_or_else(|_| "{}".to_owned()))
    }

    /// Opens every field of a stored secrets document.
    pub fn open_all(
        &self,
        stored: &str,
        aad_of: impl Fn(&str) -> String,
    ) -> Result<BTreeMap<String, Secret>, VaultError> {
        let sealed: BTreeMap<String, String> =
            serde_json::from_str(stored).map_err(|_| VaultError::Malformed)?;
        sealed
            .into_iter()
            .map(|(field, value)| {
                let secret = self.open(&aad_of(&field), &value)?;
                Ok((field, secret))
            })
            .collect()
    }

    /// Checks that this key is the database's (recording the check value on first use).
    pub fn check(&self, conn: &Connection) -> anyhow::Result<()> {
        let stored: Option<String> = conn
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                [CHECK_SETTING],
                |r| r.get(0),
            )
            .optional()?;
        match stored {
            Some(sealed) => match self.open(CHECK_AAD, &sealed) {
                Ok(_) => Ok(()),
                Err(_) => bail!(
                    "the vault key ({}) is not the key this database's secrets were encrypted \
                     with; restore the right key (nothing was changed)",
                    self.describe_source()
                ),
            },
            None => {
                self.write_check(conn)?;
                Ok(())
            }
        }
    }

    fn write_check(&self, conn: &Connection) -> anyhow::Result<()> {
        let sealed = self.seal(CHECK_AAD, CHECK_PLAINTEXT)?;
        conn.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (CHECK_SETTING, sealed, crate::clock::unix_secs()),
        )?;
        Ok(())
    }

    fn describe_source(&self) -> String {
        match &self.source {
            KeySource::Env => format!("from {KEY_ENV}"),
            KeySource::File(path) => path.display().to_string(),
        }
    }
}

/// Parses a key given as text: 64 hex digits or base64 of 32 bytes.
pub fn parse_key(text: &str) -> anyhow::Result<[u8; KEY_LEN]> {
    let text = text.trim();
    let bytes = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()
    } else {
        STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .ok()
    };
    bytes
        .and_then(|b| <[u8; KEY_LEN]>::try_from(b).ok())
        .context("a vault key is 32 bytes written as 64 hex digits or as base64")
}

fn random_key() -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    rand::rng().fill_bytes(&mut key);
    key
}

fn read_key_file(path: &Path) -> anyhow::Result<[u8; KEY_LEN]> {
    let bytes =
        fs::read(path).with_context(|| format!("reading the vault key {}", path.display()))?;
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "the vault key {} is readable by other users (mode {mode:o}); run chmod 600 on it",
            path.display()
        );
    }
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
        anyhow::anyhow!(
            "the vault key {} must hold exactly {KEY_LEN} bytes, not {}",
            path.display(),
            bytes.len()
        )
    })
}

fn has_check(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM settings WHERE key = ?1",
        [CHECK_SETTING],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Opens the vault of `data_dir` for the database `conn`: the key from `env_key` or the key
/// file (generated when neither exists and the database has no secrets yet), checked against
/// the database. Finishes a rotation that was interrupted after its commit.
pub fn open(data_dir: &Path, env_key: Option<&Secret>, conn: &Connection) -> anyhow::Result<Vault> {
    if let Some(text) = env_key {
        let key = parse_key(text.expose()).with_context(|| format!("reading {KEY_ENV}"))?;
        let vault = Vault::from_key(&key, KeySource::Env);
        vault.check(conn)?;
        return Ok(vault);
    }
    let path = data_dir.join(KEY_FILE);
    let new_path = data_dir.join(NEW_KEY_FILE);
    if new_path.exists() {
        recover_rotation(&path, &new_path, conn)?;
    }
    if !path.exists() {
        if has_check(conn)? {
            bail!(
                "the vault key {} is missing but the database holds encrypted secrets; restore \
                 the key file (or set {KEY_ENV})",
                path.display()
            );
        }
        write_new_file(&path, &random_key(), 0o600)?;
        tracing::info!(path = %path.display(), "Generated the vault key.");
    }
    let vault = Vault::from_key(&read_key_file(&path)?, KeySource::File(path));
    vault.check(conn)?;
    Ok(vault)
}

/// A rotation wrote `vault.key.new` and may or may not have committed: keep whichever key opens
/// the database.
fn recover_rotation(path: &Path, new_path: &Path, conn: &Connection) -> anyhow::Result<()> {
    let opens = |p: &Path| -> bool {
        read_key_file(p)
            .map(|key| {
                Vault::from_key(&key, KeySource::File(p.to_owned()))
                    .check(conn)
                    .is_ok()
            })
            .unwrap_or(false)
    };
    if path.exists() && opens(path) {
        fs::remove_file(new_path)?;
        tracing::warn!("Removed the key of a vault rotation that did not commit.");
    } else if opens(new_path) {
        fs::rename(new_path, path)?;
        tracing::warn!("Finished a vault rotation that was interrupted after its commit.");
    }
    Ok(())
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotation {
    /// Number of secret values re-encrypted.
    pub secrets: usize,
    /// The new key when the old one came from the environment: the caller must show it, as it is
    /// stored nowhere else.
    pub new_env_key: Option<Secret>,
}

/// Re-encrypts every secret of the database under a new key, in one transaction. A wrong
/// current key, or any value that does not open, changes nothing.
pub fn rotate(
    data_dir: &Path,
    env_key: Option<&Secret>,
    conn: &mut Connection,
) -> anyhow::Result<Rotation> {
    let old = open(data_dir, env_key, conn)?;
    let new_key = random_key();
    let new_source = match old.source() {
        KeySource::Env => KeySource::Env,
        KeySource::File(_) => KeySource::File(data_dir.join(KEY_FILE)),
    };
    let new = Vault::from_key(&new_key, new_source);
    let new_path = data_dir.join(NEW_KEY_FILE);
    if old.source != KeySource::Env {
        write_new_file(&new_path, &new_key, 0o600)?;
    }
    let result = reencrypt(&old, &new, conn);
    match (&result, &old.source) {
        (Err(_), KeySource::File(_)) => {
            let _ = fs::remove_file(&new_path);
        }
        (Ok(_), KeySource::File(path)) => {
            fs::rename(&new_path, path)
                .with_context(|| format!("moving the new key into {}", path.display()))?;
        }
        _ => {}
    }
    let secrets = result?;
    let new_env_key =
        (old.source == KeySource::Env).then(|| Secret::from(STANDARD.encode(new_key)));
    Ok(Rotation {
        secrets,
        new_env_key,
    })
}

fn reencrypt(old: &Vault, new: &Vault, conn: &mut Connection) -> anyhow::Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut count = 0;
    for (table, aad) in [
        ("credentials", credential_aad as fn(i64, &str) -> String),
        ("notification_channels", channel_aad),
    ] {
        let rows: Vec<(i64, String)> = tx
            .prepare(&format!("SELECT id, secrets FROM {table}"))?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, stored) in rows {
            let secrets = old
                .open_all(&stored, |field| aad(id, field))
                .with_context(|| {
                    format!("opening the secrets of {table} row {id}; nothing was changed")
                })?;
            count += secrets.len();
            let sealed = new.seal_all(&secrets, |field| aad(id, field))?;
            tx.execute(
                &format!("UPDATE {table} SET secrets = ?2 WHERE id = ?1"),
                (id, sealed),
            )?;
        }
    }
    // Collector configurations carry the credentials in clear, sealed whole.
    let configs: Vec<(i64, String)> = tx
        .prepare("SELECT collector_id, config FROM collector_configs")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, stored) in configs {
        let document = old.open(&config_aad(id), &stored).with_context(|| {
            format!("opening the configuration of collector {id}; nothing was changed")
        })?;
        let sealed = new.seal(&config_aad(id), document.expose())?;
        tx.execute(
            "UPDATE collector_configs SET config = ?2 WHERE collector_id = ?1",
            (id, sealed),
        )?;
    }
    new.write_check(&tx)?;
    tx.commit()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::from_key(&[7u8; 32], KeySource::Env)
    }

    #[test]
    fn a_value_opens_only_with_its_key_and_associated_data() {
        let vault = vault();
        let sealed = vault
            .seal("credential:1:community", "public-plant")
            .unwrap();
        assert!(!sealed.contains("public-plant"));
        assert_eq!(
            vault
                .open("credential:1:community", &sealed)
                .unwrap()
                .expose(),
            "public-plant"
        );
        assert!(matches!(
            vault.open("credential:2:community", &sealed),
            Err(VaultError::WrongKey)
        ));
        let other = Vault::from_key(&[8u8; 32], KeySource::Env);
        assert!(other.open("credential:1:community", &sealed).is_err());
        assert!(matches!(vault.open("x", "abc"), Err(VaultError::Malformed)));
    }

    #[test]
    fn the_same_value_seals_differently_each_time() {
        let vault = vault();
        assert_ne!(
            vault.seal("a", "same").unwrap(),
            vault.seal("a", "same").unwrap()
        );
    }

    #[test]
    fn keys_parse_from_hex_or_base64() {
        let hex_key = "07".repeat(32);
        assert_eq!(parse_key(&hex_key).unwrap(), [7u8; 32]);
        assert_eq!(parse_key(&STANDARD.encode([9u8; 32])).unwrap(), [9u8; 32]);
        assert!(parse_key("short").is_err());
    }
}
