//! Errors the client reports to its callers.

use crate::Fingerprint;
use crate::api::ErrorCode;

/// Result of a client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to a plantwatch server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server presented a certificate other than the pinned one. Never retried, never
    /// silently accepted: either the server's certificate was replaced or the connection is
    /// being intercepted.
    #[error(
        "the server's certificate fingerprint is {actual}, but {expected} is pinned for it; \
         either its certificate was replaced or someone is intercepting the connection \
         (if the change is expected, log in again and trust the new fingerprint)"
    )]
    FingerprintMismatch {
        expected: Fingerprint,
        actual: Fingerprint,
    },
    /// The server answered with an error document.
    #[error("{message} ({status} {code})")]
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
        details: Option<serde_json::Value>,
    },
    /// The server could not be reached or the connection failed.
    #[error("cannot reach {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The server URL is not usable.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The server answered something that is not the expected document.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
    /// A TLS configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

impl Error {
    /// Whether this is an API error with `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        matches!(self, Error::Api { code: c, .. } if *c == code)
    }

    /// HTTP status of an API error, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Machine-readable error code of an API error, if this is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Api { code, .. } => Some(code.clone()),
            _ => None,
        }
    }
}
