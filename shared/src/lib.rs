//! The contract between plantwatch's binaries: wire types of the HTTP API, the pinned HTTPS
//! client every binary uses to talk to the server, and certificate fingerprints.
//!
//! Nothing here knows about SQLite, axum or the terminal: the server, the console, collectors
//! and agents all depend on this crate. One binary links another on purpose: the server runs
//! the collector crate in-process as its local collector (the same polling and discovery code
//! as a remote one, so there is one implementation); no other crate depends on a sibling.

pub mod api;
pub mod client;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod error;
pub mod fingerprint;
pub mod lineproto;
pub mod metric_names;
#[cfg(feature = "daemon")]
pub mod private;
#[cfg(feature = "daemon")]
pub mod push;
pub mod rules;
pub mod secret;

pub use client::{Client, error_chain};
pub use error::{Error, Result};
pub use fingerprint::Fingerprint;
pub use secret::Secret;

/// Prefix of session tokens.
pub const SESSION_TOKEN_PREFIX: &str = "pws_";
/// Prefix of enrollment tokens.
pub const ENROLLMENT_TOKEN_PREFIX: &str = "pwe_";
/// Prefix of component API keys.
pub const API_KEY_PREFIX: &str = "pwk_";
/// Header that carries a component API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Lower-case hex SHA-256 of `bytes`: configuration hashes and `ETag`s.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Name of the HTTP-only cookie that carries a session token for browsers and the console.
pub const SESSION_COOKIE: &str = "pw_session";
