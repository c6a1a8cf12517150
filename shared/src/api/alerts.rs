//! Alerting: rules (built-in and custom), alerts and their history, maintenance windows and
//! notification channels.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::NodeStatus;
use crate::named_enum;

named_enum! {
    /// How bad an alert is.
    pub enum Severity ("severity") {
        Warning = "warning",
        Critical = "critical",
    }
}

named_enum! {
    /// Where an alert is in its life.
    pub enum AlertState ("alert state") {
        /// The condition holds, but not yet for the rule's `for` duration.
        Pending = "pending",
        Firing = "firing",
        Resolved = "resolved",
    }
}

named_enum! {
    /// How a rule reduces a series' points within its window to one value.
    pub enum RuleAggregation ("aggregation") {
        Last = "last",
        Avg = "avg",
        Min = "min",
        Max = "max",
        /// Per-second increase (counters; resets counted from zero).
        Rate = "rate",
    }
}

named_enum! {
    /// How a value is compared with a rule's thresholds.
    pub enum Comparison ("comparison") {
        Above = ">",
        AtLeast = ">=",
        Below = "<",
        AtMost = "<=",
    }
}

impl Comparison {
    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
        }
    }

    /// Whether `value` is back at or past the clear threshold on the good side. Reaching it
    /// is enough: `snmp.up < 1` clears when `snmp.up` is 1 again (a value that still breaches
    /// a threshold is never cleared: the breach is checked first).
    pub fn cleared(self, value: f64, clear: f64) -> bool {
        match self {
            Comparison::Above | Comparison::AtLeast => value <= clear,
            Comparison::Below | Comparison::AtMost => value >= clear,
        }
    }

    /// The good side's words for a message: "no longer below 1".
    pub fn words(self) -> &'static str {
        match self {
            Comparison::Above => "above",
            Comparison::AtLeast => "at or above",
            Comparison::Below => "below",
            Comparison::AtMost => "at or below",
        }
    }
}

named_enum! {
    /// Which nodes a rule applies to.
    pub enum RuleScope ("scope") {
        All = "all",
        /// Nodes of one type (`scope_value`: `network`, `server`, …).
        Type = "type",
        /// Nodes with one tag.
        Tag = "tag",
        /// Nodes polled with one device template (by name).
        Template = "template",
        /// One node (by name).
        Node = "node",
    }
}

impl RuleScope {
    /// Whether a node (its name, type, tags and template) is in a scope of this kind with
    /// `value`: what the evaluator and the console's threshold lines both decide by.
    pub fn covers(
        self,
        value: Option<&str>,
        name: &str,
        node_type: &str,
        tags: &[String],
        template: Option<&str>,
    ) -> bool {
        let value = value.unwrap_or_default();
        match self {
            RuleScope::All => true,
            RuleScope::Type => node_type == value,
            RuleScope::Tag => tags.iter().any(|t| t == value),
            RuleScope::Template => template == Some(value),
            RuleScope::Node => name.eq_ignore_ascii_case(value),
        }
    }
}

named_enum! {
    /// The built-in rules: each is a behaviour of the evaluator that can be tuned or
    /// disabled, not deleted.
    pub enum BuiltinRule ("built-in rule") {
        /// No successful ping or SNMP poll for `window_s`.
        NodeUnreachable = "node_unreachable",
        /// No agent heartbeat for `window_s`.
        AgentHeartbeat = "agent_heartbeat",
        /// A remote collector not heard from for `window_s`.
        CollectorOffline = "collector_offline",
        /// SNMP polls failing (`snmp.up` below 1).
        SnmpUnreachable = "snmp_unreachable",
        /// Modbus reads unanswered (`modbus.up` below 1): the device behind a gateway that
        /// still answers ping.
        ModbusUnreachable = "modbus_unreachable",
        /// An interface administratively up and operationally not.
        InterfaceDown = "interface_down",
        CpuHigh = "cpu_high",
        MemoryHigh = "memory_high",
        DiskHigh = "disk_high",
        UpsOnBattery = "ups_on_battery",
        /// A collector's outbox holding data older than the thresholds (seconds).
        CollectorOutboxLag = "collector_outbox_lag",
        /// A certificate a `tls` check found expires within the thresholds (days).
        CertExpiring = "cert_expiring",
        /// A certificate expired, not yet valid, or not naming the server name.
        CertInvalid = "cert_invalid",
        /// An `http`/`https` check failing.
        HttpDown = "http_down",
        /// A `tcp` check's port not accepting.
        TcpDown = "tcp_down",
        /// An `http`/`https` check answering slowly (milliseconds).
        HttpSlow = "http_slow",
        /// A `dns` check failing: no answer, an error, or not the answer expected.
        DnsDown = "dns_down",
        /// A linkDown trap, per port (ifIndex), cleared by the port's linkUp.
        TrapLinkDown = "trap_link_down",
        /// A UPS on battery by trap (UPS-MIB, resent every minute; APC's cleared by
        /// powerRestored).
        TrapUpsOnBattery = "trap_ups_on_battery",
        /// A device restarted (coldStart or warmStart trap).
        TrapDeviceRestarted = "trap_device_restarted",
        /// SNMP requests with a wrong community (authenticationFailure trap).
        TrapAuthFailure = "trap_auth_failure",
        /// A syslog message of severity critical or worse, per program.
        SyslogCritical = "syslog_critical",
        /// A vCenter not answering its poll, or refusing the login (`vsphere.up` below 1).
        VsphereUnreachable = "vsphere_unreachable",
        /// A host disconnected from (or not responding to) its vCenter.
        VsphereHostDisconnected = "vsphere_host_disconnected",
        /// A datastore filling up (percent used).
        DatastoreFull = "datastore_full",
        /// A VM tagged `must-run` powered off.
        VmPoweredOff = "vm_powered_off",
        /// A Windows service of automatic start that is not running (trigger-start services
        /// and a list of services known to stop by design left out), or a service the node
        /// requires that is not running or not installed.
        WindowsServiceStopped = "windows_service_stopped",
        /// A process the node watches by name that runs nowhere (`process.count` below 1).
        ProcessMissing = "process_missing",
    }
}

/// An alert rule (`alert_definitions`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertRule {
    pub id: i64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// The built-in behaviour this rule tunes; `None` for a custom rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinRule>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What `POST /alert-definitions` takes and `PUT /alert-definitions/{id}` replaces. Of a
/// built-in rule only `enabled`, the scope, window, thresholds and `for` can change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `measurement.field`; alternatives separated by `|` (`cpu_total.usage_pct|cpu.load_pct`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Tag → pattern; `*` matches any run of characters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default = "all_scope")]
    pub scope: RuleScope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_value: Option<String>,
    #[serde(default = "last")]
    pub aggregation: RuleAggregation,
    #[serde(default = "minute")]
    pub window_s: u32,
    #[serde(default = "above")]
    pub comparison: Comparison,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<f64>,
    /// An open alert resolves only once the value is back past this (hysteresis); defaults to
    /// the lowest threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<f64>,
    /// How long the condition must hold before the alert fires.
    #[serde(default)]
    pub for_s: u32,
    /// An event rule: the traps and syslog messages that open and clear its alert (the
    /// metric, window and thresholds are not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<super::EventRuleSpec>,
}

fn yes() -> bool {
    true
}
fn all_scope() -> RuleScope {
    RuleScope::All
}
fn last() -> RuleAggregation {
    RuleAggregation::Last
}
fn minute() -> u32 {
    60
}
fn above() -> Comparison {
    Comparison::Above
}

impl RuleSpec {
    /// A custom rule with the defaults, for builders and tests.
    pub fn new(name: &str, metric: &str) -> Self {
        RuleSpec {
            name: name.to_owned(),
            enabled: true,
            description: None,
            metric: Some(metric.to_owned()),
            tags: BTreeMap::new(),
            scope: RuleScope::All,
            scope_value: None,
            aggregation: RuleAggregation::Last,
            window_s: 60,
            comparison: Comparison::Above,
            warning: None,
            critical: None,
            clear: None,
            for_s: 0,
            event: None,
        }
    }
}

/// Query of `GET /alert-definitions/{id}/preview`: which nodes a rule matches now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RulePreviewRow {
    pub node_id: i64,
    pub node: String,
    pub series: String,
    pub value: Option<f64>,
    /// The severity the value would have now, ignoring `for`.
    pub severity: Option<Severity>,
}

/// An alert, with its node and rule named.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub id: i64,
    pub rule_id: i64,
    pub rule: String,
    pub node_id: Option<i64>,
    pub node: Option<String>,
    pub collector_id: Option<i64>,
    pub collector: Option<String>,
    /// The series the alert is about, empty for node-level rules.
    pub series: String,
    pub state: AlertState,
    pub severity: Severity,
    pub value: Option<f64>,
    pub message: String,
    /// Fired and resolved too often lately: shown, not notified again.
    pub flapping: bool,
    /// Held by a maintenance window: shown, not notified.
    pub held: bool,
    /// Suppressed: every parent of the node is down.
    pub suppressed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub acked_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_comment: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub fired_at: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub resolved_at: Option<OffsetDateTime>,
}

/// One entry of an alert's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `pending`, `firing`, `severity`, `resolved`, `acked`, `unacked`, `flapping`, `held`,
    /// `suppressed`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `GET /alerts/{id}`: the alert, its history and its notifications.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: Alert,
    pub events: Vec<AlertEvent>,
    pub deliveries: Vec<Delivery>,
}

/// Query of `GET /alerts`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AlertQuery {
    /// `active` (pending and firing, the default), `resolved` or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i64>,
    /// Only alerts whose node, rule, series or message contains this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// `POST /alerts/{id}/ack`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Body of `POST /alerts/ack`: many alerts, one comment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkAckRequest {
    pub ids: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// An alert a bulk acknowledgement left alone, and why (resolved meanwhile, no such alert).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckSkipped {
    pub id: i64,
    pub reason: String,
}

/// Answer of `POST /alerts/ack`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkAckAnswer {
    pub acked: Vec<Alert>,
    pub skipped: Vec<AckSkipped>,
}

/// A change of a node's health (`GET /nodes/{id}/health`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthChange {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub from: NodeStatus,
    pub to: NodeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

named_enum! {
    /// What a maintenance window covers.
    pub enum MaintenanceScope ("maintenance scope") {
        /// One node (by name).
        Node = "node",
        /// Every node with a tag.
        Tag = "tag",
        /// Every node of a collector (by name), and the collector itself.
        Collector = "collector",
    }
}

named_enum! {
    /// How a maintenance window repeats.
    pub enum Recurrence ("recurrence") {
        None = "none",
        Weekly = "weekly",
        Monthly = "monthly",
    }
}

/// `POST /maintenance-windows`: either `duration_s` from now, or `starts_at` and `ends_at`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpec {
    pub name: String,
    pub scope: MaintenanceScope,
    /// Node name, tag or collector name.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u64>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub starts_at: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ends_at: Option<OffsetDateTime>,
    #[serde(default = "no_recurrence")]
    pub recurrence: Recurrence,
}

fn no_recurrence() -> Recurrence {
    Recurrence::None
}

/// A maintenance window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MaintenanceWindow {
    pub id: i64,
    pub name: String,
    pub scope: MaintenanceScope,
    pub target: String,
    /// The first occurrence.
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    pub recurrence: Recurrence,
    /// Whether an occurrence is under way now.
    pub active: bool,
    /// The current occurrence, else the next one (none once over).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_start: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_end: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ended_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

named_enum! {
    /// How a notification channel delivers.
    pub enum ChannelKind ("channel kind") {
        /// HTTP POST of a JSON body signed with HMAC-SHA256.
        Webhook = "webhook",
        /// SMTP email.
        Email = "email",
        /// RFC 5424 syslog over UDP or TCP.
        Syslog = "syslog",
    }
}

/// A notification channel's settings. Which fields apply depends on the kind:
/// webhook `url` (+ secret `hmac_key`), email `smtp_host`/`smtp_port`/`tls`/`from`/`to`
/// (+ `username` and secret `password`), syslog `host`/`port`/`protocol`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    /// `none` (plain), `starttls` or `tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// PEM of a certificate to trust besides the system's roots: the plant relay's own
    /// certificate or its CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Syslog transport: `udp` (default) or `tcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// `POST /notification-channels` and `PUT /notification-channels/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub name: String,
    pub kind: ChannelKind,
    #[serde(default)]
    pub settings: ChannelSettings,
    /// `hmac_key` (webhook) or `password` (email). On update, fields left out keep their value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, crate::Secret>,
    #[serde(default = "warning")]
    pub min_severity: Severity,
    /// Only alerts of nodes with one of these tags (none: every node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Only alerts of nodes under one of these collectors (none: every collector).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collectors: Vec<String>,
    /// Repeat an unacknowledged critical alert this often (0: never).
    #[serde(default)]
    pub repeat_s: u32,
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn warning() -> Severity {
    Severity::Warning
}

/// A notification channel; its secrets are never answered, only their names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub settings: ChannelSettings,
    /// Names of the secrets set.
    pub secrets: Vec<String>,
    pub min_severity: Severity,
    pub tags: Vec<String>,
    pub collectors: Vec<String>,
    pub repeat_s: u32,
    pub send_resolved: bool,
    pub enabled: bool,
}

/// One notification, queued or delivered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub channel: String,
    /// `firing`, `escalated`, `repeat`, `resolved` or `test`.
    pub event: String,
    /// `queued`, `sent` or `failed`.
    pub state: String,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub sent_at: Option<OffsetDateTime>,
}

/// A series a rule leaves alone (`GET /ignored-series`): an operator ignored it from one of
/// its alerts (`POST /alerts/{id}/ignore`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IgnoredSeries {
    pub id: i64,
    pub rule: String,
    pub node: String,
    pub series: String,
    pub ignored_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The JSON body a webhook receives (and what email and syslog messages are made from).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    /// `firing`, `escalated`, `repeat`, `resolved` or `test`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<i64>,
    pub rule: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<String>,
    pub series: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub message: String,
    /// Children whose alerts this one stands for (a collector or switch down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected_nodes: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Further alerts of the same rule on the same node that fired (or resolved) in the same
    /// evaluation cycle: one notification lists them all (49 ports down: one email).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<GroupedAlert>,
}

/// One more alert in a grouped notification.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupedAlert {
    pub alert_id: i64,
    pub series: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub message: String,
}

/// The header carrying a webhook body's signature: `sha256=` and the hex HMAC-SHA256 of the
/// body under the channel's key.
pub const SIGNATURE_HEADER: &str = "x-plantwatch-signature";

/// `POST /notification-channels/{id}/test`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChannelTest {
    pub delivered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearing_is_strict_so_a_value_at_the_clear_threshold_keeps_the_alert() {
        assert!(Comparison::Above.breaches(90.1, 90.0));
        assert!(!Comparison::Above.breaches(90.0, 90.0));
        assert!(Comparison::Above.cleared(80.0, 80.0));
        assert!(!Comparison::Above.cleared(80.1, 80.0));
        assert!(Comparison::Above.cleared(79.9, 80.0));
        assert!(Comparison::Below.cleared(1.5, 1.0));
        // Reaching the clear threshold clears: snmp.up back at 1.
        assert!(Comparison::Below.cleared(1.0, 1.0));
        assert!(!Comparison::Below.cleared(0.5, 1.0));
    }

    #[test]
    fn a_rule_spec_takes_defaults_and_refuses_unknown_fields() {
        let spec: RuleSpec =
            serde_json::from_str(r#"{"name": "hot", "metric": "temp.celsius", "warning": 60}"#)
                .unwrap();
        assert_eq!(spec.window_s, 60);
        assert_eq!(spec.comparison, Comparison::Above);
        assert!(spec.enabled);
        assert!(serde_json::from_str::<RuleSpec>(r#"{"name": "x", "threshold": 1}"#).is_err());
    }
}
