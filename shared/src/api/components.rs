//! Collectors and agents: enrollment tokens and join codes, registration, approval, the
//! configuration a collector pulls, its status report, and the agent heartbeat.

use std::collections::BTreeMap;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{CredentialKind, CredentialParams, NodeType};
use crate::{Fingerprint, Secret};

crate::named_enum! {
    /// What a remote component is.
    pub enum ComponentKind ("component kind") {
        /// Polls devices on a plant network and runs discovery there.
        Collector = "collector",
        /// Runs on a monitored server and reports its own metrics.
        Agent = "agent",
    }
}

crate::named_enum! {
    /// Where a component stands, as lists show it.
    pub enum ComponentStatus ("component status") {
        /// Enrolled, waiting for an admin's approval.
        Pending = "pending",
        /// Approved and heard from within [`OFFLINE_AFTER_SECS`].
        Online = "online",
        /// Approved, silent for longer than [`OFFLINE_AFTER_SECS`].
        Offline = "offline",
        /// Its key was revoked; it must enroll again and be approved.
        Revoked = "revoked",
    }
}

crate::named_enum! {
    /// Whether an enrollment token can still enroll.
    pub enum TokenState ("token state") {
        Active = "active",
        Expired = "expired",
        /// Its use limit is reached.
        Exhausted = "exhausted",
        Revoked = "revoked",
    }
}

/// A component counts as offline after this long without contact.
pub const OFFLINE_AFTER_SECS: i64 = 30;
/// Prefix of join codes.
pub const JOIN_CODE_PREFIX: &str = "pwj1_";
/// Longest component name, machine id, version and host name accepted at registration.
pub const MAX_COMPONENT_NAME_LEN: usize = 128;
pub const MAX_MACHINE_ID_LEN: usize = 128;
pub const MAX_VERSION_LEN: usize = 64;
pub const MAX_HOSTNAME_LEN: usize = 255;
/// Most error lines a collector report carries, and the longest line.
pub const MAX_REPORT_ERRORS: usize = 20;
pub const MAX_REPORT_ERROR_LEN: usize = 500;

/// An enrollment token as lists show it (never the token itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollmentToken {
    pub id: i64,
    pub name: String,
    pub state: TokenState,
    /// Who created it.
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub max_uses: Option<u32>,
    pub uses: u32,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// `POST /enrollment-tokens`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: String,
    /// Seconds from now until the token stops working; none: it never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_s: Option<u64>,
    /// How many components it may enroll; none: any number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    /// The URL collectors and agents reach the server at, put into the join code. Default: the
    /// URL this request was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
}

/// The answer to `POST /enrollment-tokens`: the only time the token is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: EnrollmentToken,
    /// The `pwe_…` token itself.
    pub secret: Secret,
    /// `pwj1_…`: server URL, token and certificate fingerprint in one string.
    pub join_code: Secret,
}

/// Filters of `GET /enrollment-tokens`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// What a join code carries: everything a collector or agent needs to enroll, with the server's
/// certificate pinned from the first connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinCode {
    pub url: String,
    pub token: Secret,
    /// `None` only for a plain-HTTP development server.
    pub fingerprint: Option<Fingerprint>,
    /// The other servers of an active/standby pair, tried when `url` does not answer or is
    /// the standby.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternates: Vec<super::ha::ServerAddress>,
}

/// A string that is not a join code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a plantwatch join code: {0} (it starts with pwj1_; copy it whole from `plantwatch tokens create`)"
)]
pub struct JoinCodeError(String);

impl JoinCode {
    /// `pwj1_` + base64url of the JSON document.
    pub fn encode(&self) -> Secret {
        let json = serde_json::to_vec(self).unwrap_or_default();
        Secret::new(format!(
            "{JOIN_CODE_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(json)
        ))
    }
}

impl FromStr for JoinCode {
    type Err = JoinCodeError;

    /// Whitespace anywhere is ignored, so a code copied from a terminal in several lines works.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let body = compact
            .strip_prefix(JOIN_CODE_PREFIX)
            .ok_or_else(|| JoinCodeError("the prefix is missing".into()))?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| JoinCodeError("it is not base64url (cut short?)".into()))?;
        let code: JoinCode = serde_json::from_slice(&json)
            .map_err(|e| JoinCodeError(format!("its content is not readable: {e}")))?;
        crate::client::normalize_url(&code.url)
            .map_err(|e| JoinCodeError(format!("its server URL is unusable: {e}")))?;
        if !code
            .token
            .expose()
            .starts_with(crate::ENROLLMENT_TOKEN_PREFIX)
        {
            return Err(JoinCodeError("it holds no enrollment token".into()));
        }
        if code.url.starts_with("https://") && code.fingerprint.is_none() {
            return Err(JoinCodeError("it has no certificate fingerprint".into()));
        }
        for other in &code.alternates {
            crate::client::normalize_url(&other.url)
                .map_err(|e| JoinCodeError(format!("an alternate server URL is unusable: {e}")))?;
            if other.url.starts_with("https://") && other.fingerprint.is_none() {
                return Err(JoinCodeError(format!(
                    "the alternate server {} has no certificate fingerprint",
                    other.url
                )));
            }
        }
        Ok(code)
    }
}

/// `POST /components/register`: enrolls a collector or agent with an enrollment token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub token: Secret,
    pub kind: ComponentKind,
    pub name: String,
    /// Stable id of the machine (`/etc/machine-id`): enrolling again from the same machine
    /// rotates the key of the same component.
    pub machine_id: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// The answer to a registration: the only time the API key is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub component_id: i64,
    pub kind: ComponentKind,
    /// The `pwk_…` key, sent as `X-API-Key`.
    pub api_key: Secret,
    /// Whether the component already enrolled from this machine (its old key now fails).
    pub re_enrolled: bool,
    pub status: ComponentStatus,
}

/// Body of `POST /remote-components/{id}/approve` for an agent whose host name matches an
/// existing node: bind it to that node (`node`), or give it a new one (`new_node`). Without
/// either, such an approval is refused (409 `node_choice_needed`, the candidates in
/// `details.candidates`), so an agent is never silently bound to a node a collector polls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// The existing node (name or id) the agent reports for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// A new node for the agent, named like its host (`HOST-agent` when that name is taken).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_node: bool,
}

/// A collector or agent as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub id: i64,
    pub kind: ComponentKind,
    pub name: String,
    pub status: ComponentStatus,
    /// The server's own in-process collector.
    pub is_local: bool,
    pub machine_id: String,
    pub hostname: Option<String>,
    pub version: Option<String>,
    /// Name of the enrollment token it last enrolled with.
    pub enrolled_with: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub approved_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
    /// An agent's own node.
    pub node_id: Option<i64>,
    pub node: Option<String>,
    /// Collectors: nodes assigned to it.
    pub target_count: Option<u32>,
    /// Collectors: hash of the configuration the server holds for it.
    pub config_sha256: Option<String>,
    /// Collectors: hash of the configuration it last reported holding.
    pub reported_sha256: Option<String>,
    /// Collectors: whether the two agree (none before the first report).
    pub config_in_sync: Option<bool>,
    /// Collectors: errors of its last report.
    #[serde(default)]
    pub last_errors: Vec<String>,
    /// A collector's outbox as it last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<OutboxStatus>,
    /// A collector's event receivers' counts, as it last reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventCounts>,
}

/// Filters of `GET /remote-components`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ComponentKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ComponentStatus>,
    /// Text in the name, host name or machine id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// `name`, `status`, `last_seen_at`, `created_at`, `kind`; `-` for descending. Default:
    /// pending first, then by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// `GET /components/me`: what the server knows of the calling component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentSelf {
    pub id: i64,
    pub kind: ComponentKind,
    pub name: String,
    /// An agent's node, set at approval.
    pub node_id: Option<i64>,
}

/// What a collector polls: `GET /remote-collectors/{id}/config`. It holds nothing but the
/// inventory (no generation time), so an unchanged inventory has an unchanged hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectorConfig {
    pub collector_id: i64,
    /// Every credential a target uses, once, by id, with its secrets in clear.
    pub credentials: Vec<TargetCredential>,
    /// By node id.
    pub targets: Vec<Target>,
    /// The resolved definitions of the templates the targets use, by name.
    #[serde(default)]
    pub templates: BTreeMap<String, super::TemplateDef>,
    /// The event receivers the collector runs (none by default).
    #[serde(default, skip_serializing_if = "super::Receivers::is_empty")]
    pub receivers: super::Receivers,
    /// Seconds between walks of the neighbour tables (LLDP, CDP) of the nodes whose templates
    /// name them; 0 (an older server): the default, 900.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub topology_interval_s: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// Seconds between neighbour walks when the server names none.
pub const DEFAULT_TOPOLOGY_INTERVAL_S: u32 = 900;

impl CollectorConfig {
    /// The credentials of `target`, in the order they are to be tried.
    pub fn credentials_of<'a>(
        &'a self,
        target: &'a Target,
    ) -> impl Iterator<Item = &'a TargetCredential> + 'a {
        target
            .credential_ids
            .iter()
            .filter_map(|id| self.credentials.iter().find(|c| c.id == *id))
            // Checked again here, where the secret would leave: never outside its networks.
            .filter(|c| crate::rules::address_in_networks(&target.address, &c.networks))
    }
}

/// One node a collector polls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub node_id: i64,
    pub name: String,
    pub address: String,
    #[serde(rename = "type")]
    pub node_type: NodeType,
    pub template: Option<String>,
    /// The node's interval, else its template's, else the default 10 s.
    pub interval_s: u32,
    /// Ids of its credentials (in [`CollectorConfig::credentials`]), in the order they are
    /// to be tried.
    pub credential_ids: Vec<i64>,
    /// Its service checks (absent when none, so a configuration without checks hashes as it
    /// did before there were any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<super::TargetCheck>,
    /// Its Modbus unit id, when the node names one (absent otherwise, for the same hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modbus_unit: Option<u8>,
    /// How it is polled through the vSphere API (a `vcenter` or `esxi` node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vsphere: Option<super::vsphere::VsphereTarget>,
}

/// A credential with its secrets in clear: only ever sent to the collector that polls with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetCredential {
    pub id: i64,
    pub name: String,
    pub kind: CredentialKind,
    pub params: CredentialParams,
    pub secrets: BTreeMap<String, Secret>,
    /// The networks (CIDRs) it may be sent to; empty: anywhere an admin attached it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
}

/// `POST /remote-collectors/{id}/report`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectorReport {
    pub version: String,
    /// SHA-256 of the configuration it polls with (its `ETag`).
    pub config_sha256: Option<String>,
    pub target_count: u32,
    /// Its most recent errors, newest last.
    #[serde(default)]
    pub errors: Vec<String>,
    /// Its store-and-forward outbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<OutboxStatus>,
    /// What its event receivers did since it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventCounts>,
}

/// What a collector's event receivers did since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCounts {
    pub received: u64,
    /// Dropped by the per-sender rate limit.
    pub rate_limited: u64,
    /// Datagrams or frames that were no trap or syslog message.
    pub malformed: u64,
    /// Informs acknowledged.
    pub acknowledged: u64,
}

/// What waits in a daemon's on-disk outbox for the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboxStatus {
    pub batches: u64,
    pub bytes: u64,
    /// Age of the oldest batch not yet delivered, in seconds (0 when empty).
    pub lag_s: u64,
    /// Batches dropped because the outbox was full or too old, since the daemon started.
    pub dropped_batches: u64,
    pub dropped_lines: u64,
    /// Lines put into batches since the daemon started.
    #[serde(default)]
    pub sealed_lines: u64,
}

/// `POST /agents/heartbeat/{node_id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub version: String,
    /// Seconds since the agent started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    /// What the machine is, sent with the first heartbeat and whenever it changed; the server
    /// keeps the last one on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<HostInventory>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    pub node_id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
    /// Process names the node watches (`process.count`, `process.cpu_pct` by name).
    #[serde(default)]
    pub processes: Vec<String>,
}

/// Longest text of an inventory field the server keeps.
pub const MAX_INVENTORY_TEXT: usize = 256;

/// What an agent's machine is: its operating system (Windows: from WMI, Linux: os-release and
/// the kernel) and hardware. Every field is optional: WMI may be slow, partial or missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInventory {
    /// `Microsoft Windows Server 2019 Standard`, `Debian GNU/Linux 12 (bookworm)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// `10.0.17763`, `12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// Windows build number (`17763`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_build: Option<String>,
    /// Linux kernel release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Installed updates (Win32_QuickFixEngineering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotfixes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// What could not be read (`WMI: timed out after 20 s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl HostInventory {
    /// The text fields, named, for checks and display.
    pub fn texts(&self) -> [(&'static str, Option<&str>); 9] {
        [
            ("os", self.os.as_deref()),
            ("os_version", self.os_version.as_deref()),
            ("os_build", self.os_build.as_deref()),
            ("kernel", self.kernel.as_deref()),
            ("hostname", self.hostname.as_deref()),
            ("manufacturer", self.manufacturer.as_deref()),
            ("model", self.model.as_deref()),
            ("serial", self.serial.as_deref()),
            ("problem", self.problem.as_deref()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> JoinCode {
        JoinCode {
            url: "https://10.1.2.3:8443".into(),
            token: Secret::new("pwe_abc"),
            fingerprint: Some(Fingerprint::of_der(b"cert")),
            alternates: Vec::new(),
        }
    }

    #[test]
    fn join_codes_round_trip_and_hold_no_padding_or_separators() {
        let encoded = code().encode();
        let text = encoded.expose();
        assert!(text.starts_with("pwj1_"));
        assert!(!text.contains(['=', '+', '/', ' ']));
        assert_eq!(text.parse::<JoinCode>().unwrap(), code());
        assert_eq!(format!(" {text}\n").parse::<JoinCode>().unwrap(), code());
        let wrapped = format!("{}\n  {}\r\n", &text[..30], &text[30..]);
        assert_eq!(
            wrapped.parse::<JoinCode>().unwrap(),
            code(),
            "copied in two lines"
        );
    }

    #[test]
    fn damaged_join_codes_say_what_is_wrong() {
        let text = code().encode().into_inner();
        let err = text[5..].parse::<JoinCode>().unwrap_err();
        assert!(err.to_string().contains("prefix"), "{err}");
        let err = text[..text.len() - 7].parse::<JoinCode>().unwrap_err();
        assert!(err.to_string().contains("pwj1_"), "{err}");
        let mut without_pin = code();
        without_pin.fingerprint = None;
        let err = without_pin
            .encode()
            .expose()
            .parse::<JoinCode>()
            .unwrap_err();
        assert!(err.to_string().contains("fingerprint"), "{err}");
        let mut not_a_token = code();
        not_a_token.token = Secret::new("pwk_1_x");
        assert!(not_a_token.encode().expose().parse::<JoinCode>().is_err());
    }
}
