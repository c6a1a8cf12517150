//! Credentials of people: password hashing, session tokens and the login rate limiter.

pub mod api_keys;
pub mod directory;
pub mod ldap;
pub mod rate_limit;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plantwatch_shared::Secret;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// bcrypt cost of stored passwords (about 240 ms a hash on this project's reference machine).
pub const BCRYPT_COST: u32 = 12;
pub use plantwatch_shared::rules::{
    MAX_PASSWORD_BYTES, MIN_PASSWORD_LEN, password_problem, username_problem,
};

/// Hashes a password on the blocking pool.
pub async fn hash_password(password: Secret) -> anyhow::Result<String> {
    Ok(tokio::task::spawn_blocking(move || bcrypt::hash(password.expose(), BCRYPT_COST)).await??)
}

/// Checks a password against a hash on the blocking pool. A malformed hash never matches.
pub async fn verify_password(password: Secret, hash: String) -> anyhow::Result<bool> {
    Ok(tokio::task::spawn_blocking(move || {
        bcrypt::verify(password.expose(), &hash).unwrap_or(false)
    })
    .await?)
}

/// A hash that no password matches, verified when the user does not exist so that an unknown
/// user costs as much time as a wrong password.
pub fn decoy_hash() -> String {
    bcrypt::hash(random_token(""), BCRYPT_COST).unwrap_or_default()
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new random token: `prefix` then 32 random bytes in base64url.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a session or enrollment token: hex SHA-256.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A one-time setup code, easy to read aloud and type: three groups of four.
pub fn setup_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_unique_and_hash_stably() {
        let a = random_token("pws_");
        let b = random_token("pws_");
        assert!(a.starts_with("pws_"));
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
        assert!(!token_hash(&a).contains(&a));
    }

    #[test]
    fn setup_codes_have_three_groups_of_four() {
        let code = setup_code();
        assert_eq!(code.len(), 14);
        assert_eq!(code.split('-').count(), 3);
    }
}
