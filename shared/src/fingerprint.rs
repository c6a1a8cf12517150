//! SHA-256 certificate fingerprints, written `SHA256:` + unpadded base64 like OpenSSH.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The SHA-256 digest of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Colon-separated upper-case hex, as `openssl x509 -fingerprint -sha256` prints it.
    pub fn to_hex(&self) -> String {
        let hex = hex::encode_upper(self.0);
        hex.as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8_lossy(pair).into_owned())
            .collect::<Vec<_>>()
            .join(":")
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SHA256:{}", STANDARD_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not a SHA-256 fingerprint.
#[derive(Debug, thiserror::Error)]
#[error(
    "not a SHA-256 fingerprint: {0:?} (expected SHA256:<base64>, as `plantwatch-server fingerprint` prints, or 64 hex digits)"
)]
pub struct ParseFingerprintError(String);

impl FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    /// Accepts `SHA256:<base64>` (padded or not) and hex with or without colons, with or
    /// without the `SHA256:` prefix, so fingerprints from OpenSSL paste as they are.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || ParseFingerprintError(input.to_owned());
        let trimmed = input.trim();
        let body = trimmed
            .strip_prefix("SHA256:")
            .or_else(|| trimmed.strip_prefix("sha256:"))
            .unwrap_or(trimmed);
        let hex_digits: String = body.chars().filter(|c| *c != ':').collect();
        let bytes = if hex_digits.len() == 64 && hex_digits.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(&hex_digits).map_err(|_| err())?
        } else {
            STANDARD_NO_PAD
                .decode(body)
                .or_else(|_| STANDARD.decode(body))
                .map_err(|_| err())?
        };
        let digest: [u8; 32] = bytes.try_into().map_err(|_| err())?;
        Ok(Fingerprint(digest))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips_through_parse() {
        let fp = Fingerprint::of_der(b"certificate");
        let parsed: Fingerprint = fp.to_string().parse().unwrap();
        assert_eq!(parsed, fp);
        assert!(fp.to_string().starts_with("SHA256:"));
        assert_eq!(fp.to_string().len(), "SHA256:".len() + 43);
    }

    #[test]
    fn openssl_hex_form_parses_to_the_same_fingerprint() {
        let fp = Fingerprint::of_der(b"certificate");
        assert_eq!(fp.to_hex().parse::<Fingerprint>().unwrap(), fp);
        let lower = format!("sha256:{}", hex::encode(fp.as_bytes()));
        assert_eq!(lower.parse::<Fingerprint>().unwrap(), fp);
    }

    #[test]
    fn garbage_and_wrong_lengths_are_rejected() {
        for bad in ["", "SHA256:", "SHA256:abc", "xyz", &"a".repeat(62)] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad:?} parsed");
        }
    }
}
