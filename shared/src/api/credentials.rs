//! The credentials vault: SNMP communities and users, Windows and SSH accounts. Secrets go in
//! and, for admins who ask, come out; everyone else sees which secrets are set, never them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Secret, named_enum};

named_enum! {
    /// What a credential is for.
    pub enum CredentialKind ("credential kind") {
        SnmpV1 = "snmp_v1",
        SnmpV2c = "snmp_v2c",
        SnmpV3 = "snmp_v3",
        /// Windows / WMI account.
        Windows = "windows",
        Ssh = "ssh",
        /// A vCenter or ESXi account for the vSphere API.
        Vsphere = "vsphere",
    }
}

impl CredentialKind {
    /// The secret fields of this kind.
    pub fn secret_fields(self) -> &'static [&'static str] {
        match self {
            CredentialKind::SnmpV1 | CredentialKind::SnmpV2c => &["community"],
            CredentialKind::SnmpV3 => &["auth_password", "priv_password"],
            CredentialKind::Windows | CredentialKind::Ssh | CredentialKind::Vsphere => {
                &["password"]
            }
        }
    }

    /// Whether this kind is an SNMP credential.
    pub fn is_snmp(self) -> bool {
        matches!(
            self,
            CredentialKind::SnmpV1 | CredentialKind::SnmpV2c | CredentialKind::SnmpV3
        )
    }
}

named_enum! {
    /// SNMPv3 authentication protocol.
    pub enum AuthProtocol ("auth protocol") {
        Md5 = "md5",
        Sha1 = "sha1",
        Sha224 = "sha224",
        Sha256 = "sha256",
        Sha384 = "sha384",
        Sha512 = "sha512",
    }
}

named_enum! {
    /// SNMPv3 privacy (encryption) protocol.
    pub enum PrivProtocol ("privacy protocol") {
        Des = "des",
        Aes128 = "aes128",
        Aes192 = "aes192",
        Aes256 = "aes256",
    }
}

/// The fields of a credential that are not secret. Which apply depends on the kind: SNMPv3
/// takes `username`, `auth_protocol`, `priv_protocol` and `context`; Windows and SSH take
/// `username` and `domain`; vSphere takes `username` and `fingerprint`; SNMP v1 and v2c take
/// none.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CredentialParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_protocol: Option<AuthProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priv_protocol: Option<PrivProtocol>,
    /// SNMPv3 context name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// vSphere: the SHA-256 fingerprint of the vCenter's certificate, trusted whoever issued
    /// it; absent, the certificate must chain to a root the collector trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// A credential as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Credential {
    pub id: i64,
    pub name: String,
    pub kind: CredentialKind,
    pub params: CredentialParams,
    /// Every secret field that is set: its value when revealed to an admin, `null` (masked)
    /// otherwise.
    pub secrets: BTreeMap<String, Option<Secret>>,
    /// Whether `secrets` holds the values.
    pub revealed: bool,
    /// Number of nodes it is attached to.
    pub nodes: u64,
    /// The networks (CIDRs) whose addresses it may be attached to and sent to; empty: only
    /// admins may attach it, anywhere.
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `POST /credentials` (admin).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CreateCredentialRequest {
    pub name: String,
    pub kind: CredentialKind,
    #[serde(default)]
    pub params: CredentialParams,
    /// Secret fields by name (see [`CredentialKind::secret_fields`]).
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret>,
    /// CIDRs of the addresses it may be attached to (and a collector may send it to).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
}

/// `PATCH /credentials/{id}` (admin). The kind never changes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpdateCredentialRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Replaces every non-secret field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<CredentialParams>,
    /// Secret fields to replace; the others keep their value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, Secret>,
    /// Replaces the networks (`[]`: none, admins only may attach it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<String>>,
}

/// Query of `GET /credentials` and `GET /credentials/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CredentialQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CredentialKind>,
    /// Only credentials whose name contains this text (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Answer the secrets in clear (admins; one audit entry per credential shown).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reveal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_use_their_wire_names() {
        assert_eq!(
            serde_json::to_string(&CredentialKind::SnmpV2c).unwrap(),
            "\"snmp_v2c\""
        );
        assert_eq!(
            "SNMP_V3".parse::<CredentialKind>().unwrap(),
            CredentialKind::SnmpV3
        );
    }

    #[test]
    fn debug_of_a_create_request_hides_the_secrets() {
        let request = CreateCredentialRequest {
            name: "plant".into(),
            kind: CredentialKind::SnmpV2c,
            params: CredentialParams::default(),
            secrets: BTreeMap::from([("community".to_owned(), Secret::from("s3cr3t-comm"))]),
            networks: Vec::new(),
        };
        assert!(!format!("{request:?}").contains("s3cr3t-comm"));
    }
}
