//! Rules as the evaluator uses them: the built-in rules' defaults, checks of a submitted rule,
//! and the pure pieces of evaluation (aggregation over a window, severity with hysteresis,
//! tag patterns, scopes).

use std::collections::{BTreeMap, VecDeque};

use plantwatch_shared::api::vsphere::MUST_RUN_TAG;
use plantwatch_shared::api::{
    BuiltinRule, Comparison, EventKind, EventMatch, EventRuleSpec, EventSeverity, RuleAggregation,
    RuleScope, RuleSpec, Severity, tags_from_canonical,
};
use plantwatch_shared::metric_names::{
    CHECK_CERT_DAYS_LEFT, CHECK_CERT_VALID, CHECK_TIME_MS, CHECK_UP, CPU_LOAD_PCT,
    CPU_TOTAL_USAGE_PCT, DISK_USED_PCT, INTERFACE_OPER_STATUS, MEMORY_USED_PCT, MODBUS_UP,
    PROCESS_COUNT, SNMP_UP, STORAGE_USED_PCT, UPS_ON_BATTERY, VSPHERE_DATASTORE_USED_PCT,
    VSPHERE_HOST_CONNECTED, VSPHERE_UP, VSPHERE_VM_POWERED_ON, WINDOWS_SERVICE_STATE, any_of,
};
use plantwatch_shared::rules::glob_matches;

/// The defaults of every built-in rule, as first stored.
pub fn builtin_defaults() -> Vec<(BuiltinRule, RuleSpec)> {
    let rule = |name: &str, description: &str| RuleSpec {
        description: Some(description.to_owned()),
        ..RuleSpec::new(name, "")
    };
    let threshold = |name: &str,
                     description: &str,
                     metric: &str,
                     aggregation: RuleAggregation,
                     window_s: u32,
                     comparison: Comparison,
                     (warning, critical, clear): (Option<f64>, Option<f64>, Option<f64>),
                     for_s: u32| RuleSpec {
        metric: Some(metric.to_owned()),
        aggregation,
        window_s,
        comparison,
        warning,
        critical,
        clear,
        for_s,
        ..rule(name, description)
    };
    // `check.up` below 1 for checks of `kind`, for a minute: two runs at the default interval.
    let check_down = |name: &str, description: &str, kind: &str| RuleSpec {
        tags: [("kind".to_owned(), kind.to_owned())].into(),
        ..threshold(
            name,
            description,
            CHECK_UP.name,
            RuleAggregation::Last,
            180,
            Comparison::Below,
            (None, Some(1.0), None),
            60,
        )
    };
    use BuiltinRule as B;
    use Comparison::{AtLeast, Below};
    use RuleAggregation::{Avg, Last};
    vec![
        (
            B::NodeUnreachable,
            RuleSpec {
                window_s: 300,
                critical: Some(1.0),
                ..rule(
                    "node_unreachable",
                    "No successful ping or SNMP poll for the window.",
                )
            },
        ),
        (
            B::AgentHeartbeat,
            RuleSpec {
                window_s: 300,
                critical: Some(1.0),
                ..rule("agent_heartbeat", "No agent heartbeat for the window.")
            },
        ),
        (
            B::CollectorOffline,
            RuleSpec {
                window_s: 300,
                critical: Some(1.0),
                ..rule(
                    "collector_offline",
                    "A remote collector not heard from for the window; its nodes are shown \
                     offline and notified as one.",
                )
            },
        ),
        (
            B::SnmpUnreachable,
            threshold(
                "snmp_unreachable",
                "SNMP polls failing while the node may still answer ping.",
                SNMP_UP.name,
                Last,
                60,
                Below,
                (Some(1.0), None, None),
                60,
            ),
        ),
        (
            B::ModbusUnreachable,
            threshold(
                "modbus_unreachable",
                "Modbus reads unanswered while the node (its gateway) may still answer ping.",
                MODBUS_UP.name,
                Last,
                60,
                Below,
                (Some(1.0), None, None),
                60,
            ),
        ),
        (
            B::InterfaceDown,
            RuleSpec {
                metric: Some(INTERFACE_OPER_STATUS.name.to_owned()),
                warning: Some(1.0),
                ..rule(
                    "interface_down",
                    "An interface administratively up (ifAdminStatus 1) and operationally not.",
                )
            },
        ),
        (
            B::CpuHigh,
            threshold(
                "cpu_high",
                "CPU busy, averaged over the window.",
                &any_of(&[CPU_TOTAL_USAGE_PCT, CPU_LOAD_PCT]),
                Avg,
                300,
                AtLeast,
                (Some(90.0), Some(98.0), Some(85.0)),
                0,
            ),
        ),
        (
            B::MemoryHigh,
            threshold(
                "memory_high",
                "Memory in use.",
                MEMORY_USED_PCT.name,
                Avg,
                300,
                AtLeast,
                (Some(90.0), Some(97.0), Some(85.0)),
                0,
            ),
        ),
        (
            B::DiskHigh,
            threshold(
                "disk_high",
                "A file system or storage area filling up.",
                &any_of(&[DISK_USED_PCT, STORAGE_USED_PCT]),
                Last,
                300,
                AtLeast,
                (Some(85.0), Some(95.0), Some(80.0)),
                0,
            ),
        ),
        (
            B::UpsOnBattery,
            threshold(
                "ups_on_battery",
                "A UPS running on battery.",
                UPS_ON_BATTERY.name,
                Last,
                60,
                AtLeast,
                (None, Some(1.0), None),
                0,
            ),
        ),
        (
            B::CollectorOutboxLag,
            RuleSpec {
                window_s: 60,
                warning: Some(300.0),
                critical: Some(3_600.0),
                ..rule(
                    "collector_outbox_lag",
                    "A collector holding undelivered data older than the thresholds (seconds).",
                )
            },
        ),
        // The service checks. A `tls` check runs every 300 s: its rules look back 15 minutes.
        (
            B::CertExpiring,
            threshold(
                "cert_expiring",
                "A certificate expiring within the thresholds (days left).",
                CHECK_CERT_DAYS_LEFT.name,
                Last,
                900,
                Below,
                (Some(30.0), Some(7.0), Some(30.0)),
                0,
            ),
        ),
        (
            B::CertInvalid,
            threshold(
                "cert_invalid",
                "A certificate expired, not yet valid, or not naming the server name checked.",
                CHECK_CERT_VALID.name,
                Last,
                900,
                Below,
                (None, Some(1.0), None),
                0,
            ),
        ),
        (
            B::HttpDown,
            check_down(
                "http_down",
                "An HTTP(S) check failing (no answer, another status, the text missing) for two \
                 runs.",
                "http*",
            ),
        ),
        (
            B::TcpDown,
            check_down(
                "tcp_down",
                "A port not accepting (tcp checks), or no TLS handshake on it (tls checks), for \
                 two runs.",
                "t*",
            ),
        ),
        (
            B::DnsDown,
            check_down(
                "dns_down",
                "A DNS check failing (no answer, an error, no such name, not the answer \
                 expected) for two runs.",
                "dns",
            ),
        ),
        (
            B::HttpSlow,
            RuleSpec {
                tags: [("kind".to_owned(), "http*".to_owned())].into(),
                ..threshold(
                    "http_slow",
                    "An HTTP(S) check answering slowly, averaged over the window (ms).",
                    CHECK_TIME_MS.name,
                    Avg,
                    300,
                    AtLeast,
                    (Some(2_000.0), Some(5_000.0), Some(1_500.0)),
                    0,
                )
            },
        ),
        (
            B::TrapLinkDown,
            event_rule(
                rule(
                    "trap_link_down",
                    "A linkDown trap, one alert per port (ifIndex), cleared by the port's \
                     linkUp (or a day without either).",
                ),
                traps(&["linkDown"]),
                Some(traps(&["linkUp"])),
                &["ifIndex"],
                Severity::Warning,
                86_400,
            ),
        ),
        (
            B::TrapUpsOnBattery,
            event_rule(
                rule(
                    "trap_ups_on_battery",
                    "A UPS on battery by trap: UPS-MIB's upsTrapOnBattery (resent every \
                     minute while on battery) or APC's upsOnBattery; cleared by APC's \
                     powerRestored or 10 minutes after the last.",
                ),
                traps(&["upsTrapOnBattery", "upsOnBattery"]),
                Some(traps(&["powerRestored"])),
                &[],
                Severity::Critical,
                600,
            ),
        ),
        (
            B::TrapDeviceRestarted,
            event_rule(
                rule(
                    "trap_device_restarted",
                    "A device restarted (coldStart or warmStart trap); for 15 minutes.",
                ),
                traps(&["coldStart", "warmStart"]),
                None,
                &[],
                Severity::Warning,
                900,
            ),
        ),
        (
            B::TrapAuthFailure,
            RuleSpec {
                // Off by default: discovery trying the credentials of a network makes
                // devices that send these traps send them.
                enabled: false,
                ..event_rule(
                    rule(
                        "trap_auth_failure",
                        "SNMP requests with a wrong community (authenticationFailure trap); \
                         for an hour. Off by default: discovery's tries cause them too.",
                    ),
                    traps(&["authenticationFailure"]),
                    None,
                    &[],
                    Severity::Warning,
                    3_600,
                )
            },
        ),
        (
            B::SyslogCritical,
            event_rule(
                rule(
                    "syslog_critical",
                    "A syslog message of severity critical or worse, one alert per program; \
                     for an hour after the last.",
                ),
                EventMatch {
                    kind: Some(EventKind::Syslog),
                    severity: Some(EventSeverity::Critical),
                    ..EventMatch::default()
                },
                None,
                &["program"],
                Severity::Warning,
                3_600,
            ),
        ),
        // vSphere: a vCenter is polled every 300 s, so its rules look back 15 minutes.
        (
            B::VsphereUnreachable,
            threshold(
                "vsphere_unreachable",
                "A vCenter not answering its poll, or refusing the login, while it may still \
                 answer ping.",
                VSPHERE_UP.name,
                Last,
                900,
                Below,
                (Some(1.0), None, None),
                0,
            ),
        ),
        (
            B::VsphereHostDisconnected,
            threshold(
                "vsphere_host_disconnected",
                "A host disconnected from its vCenter, or not responding to it.",
                VSPHERE_HOST_CONNECTED.name,
                Last,
                900,
                Below,
                (None, Some(1.0), None),
                0,
            ),
        ),
        (
            B::DatastoreFull,
            threshold(
                "datastore_full",
                "A datastore filling up (percent used): a full one stops its VMs.",
                VSPHERE_DATASTORE_USED_PCT.name,
                Last,
                900,
                AtLeast,
                (Some(85.0), Some(95.0), Some(80.0)),
                0,
            ),
        ),
        (
            B::VmPoweredOff,
            RuleSpec {
                scope: RuleScope::Tag,
                scope_value: Some(MUST_RUN_TAG.to_owned()),
                ..threshold(
                    "vm_powered_off",
                    "A VM tagged must-run powered off.",
                    VSPHERE_VM_POWERED_ON.name,
                    Last,
                    900,
                    Below,
                    (None, Some(1.0), None),
                    0,
                )
            },
        ),
        (
            B::WindowsServiceStopped,
            RuleSpec {
                metric: Some(WINDOWS_SERVICE_STATE.name.to_owned()),
                window_s: 300,
                warning: Some(1.0),
                critical: Some(1.0),
                for_s: 60,
                ..rule(
                    "windows_service_stopped",
                    "A Windows service of automatic start not running for a minute (warning;                      trigger-start services and those known to stop by design left out), or                      one the node requires not running or not installed (critical).",
                )
            },
        ),
        (
            B::ProcessMissing,
            threshold(
                "process_missing",
                "A process the node watches by name running nowhere.",
                PROCESS_COUNT.name,
                Last,
                300,
                Below,
                (None, Some(1.0), None),
                30,
            ),
        ),
    ]
}

/// A match of traps by name.
fn traps(names: &[&str]) -> EventMatch {
    EventMatch {
        traps: names.iter().map(|n| (*n).to_owned()).collect(),
        ..EventMatch::default()
    }
}

/// `base` made an event rule.
fn event_rule(
    base: RuleSpec,
    on: EventMatch,
    clear: Option<EventMatch>,
    key: &[&str],
    severity: Severity,
    expire_s: u32,
) -> RuleSpec {
    RuleSpec {
        metric: None,
        event: Some(EventRuleSpec {
            on,
            clear,
            key: key.iter().map(|k| (*k).to_owned()).collect(),
            severity,
            expire_s,
        }),
        ..base
    }
}

/// Whether a rule reads a metric series (the others watch presence and reports).
pub fn reads_metric(builtin: Option<BuiltinRule>) -> bool {
    !matches!(
        builtin,
        Some(
            BuiltinRule::NodeUnreachable
                | BuiltinRule::AgentHeartbeat
                | BuiltinRule::CollectorOffline
                | BuiltinRule::CollectorOutboxLag
                | BuiltinRule::TrapLinkDown
                | BuiltinRule::TrapUpsOnBattery
                | BuiltinRule::TrapDeviceRestarted
                | BuiltinRule::TrapAuthFailure
                | BuiltinRule::SyslogCritical
        )
    )
}

/// What is wrong with a rule a user submitted, if anything. `builtin` rules keep their
/// name and metric.
pub fn problem(
    spec: &RuleSpec,
    builtin: Option<BuiltinRule>,
    trap_names: &std::collections::HashSet<String>,
) -> Option<String> {
    let name = spec.name.trim();
    if name.is_empty() || name.len() > 64 {
        return Some("name must be 1 to 64 characters".into());
    }
    if spec.description.as_ref().is_some_and(|d| d.len() > 1_000) {
        return Some("description must be at most 1000 characters".into());
    }
    if let Some(event) = &spec.event {
        if spec.metric.is_some() {
            return Some("an event rule has no metric".into());
        }
        let named = |name: &str| trap_names.contains(&name.to_lowercase());
        return event.problem(&named).or_else(|| scope_problem(spec));
    }
    if spec.window_s == 0 || spec.window_s > 900 {
        return Some("window_s must be between 1 and 900 (the hot window holds 15 minutes)".into());
    }
    if spec.for_s > 86_400 {
        return Some("for_s must be at most 86400".into());
    }
    if spec.warning.is_none() && spec.critical.is_none() {
        return Some("give a warning or a critical threshold (or both)".into());
    }
    for value in [spec.warning, spec.critical, spec.clear]
        .into_iter()
        .flatten()
    {
        if !value.is_finite() {
            return Some("thresholds must be finite numbers".into());
        }
    }
    if let (Some(warning), Some(critical)) = (spec.warning, spec.critical)
        && spec.comparison.breaches(warning, critical)
    {
        return Some(format!(
            "the critical threshold must be past the warning one in the direction of '{}'",
            spec.comparison
        ));
    }
    if let Some(clear) = spec.clear {
        let lowest = lowest_threshold(spec).unwrap_or(clear);
        if spec.comparison.breaches(clear, lowest) {
            return Some(
                "the clear threshold must be on the good side of the thresholds".to_owned(),
            );
        }
    }
    if spec.tags.len() > 16 || spec.tags.iter().any(|(k, v)| k.len() > 64 || v.len() > 256) {
        return Some(
            "at most 16 tag matchers, keys up to 64 and patterns up to 256 characters".into(),
        );
    }
    if let Some(problem) = scope_problem(spec) {
        return Some(problem);
    }
    if builtin.is_none() || reads_metric(builtin) {
        let Some(metric) = spec.metric.as_deref().filter(|m| !m.trim().is_empty()) else {
            return Some("a custom rule needs a metric (measurement.field)".into());
        };
        if metric.len() > 256 {
            return Some("metric must be at most 256 characters".into());
        }
        for one in metric.split('|') {
            let parts: Vec<&str> = one.trim().split('.').collect();
            if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
                return Some(format!(
                    "metric '{one}' is not measurement.field (alternatives separated by '|')"
                ));
            }
        }
    }
    None
}

/// What is wrong with a rule's scope, if anything.
fn scope_problem(spec: &RuleSpec) -> Option<String> {
    match (spec.scope, &spec.scope_value) {
        (RuleScope::All, _) => None,
        (_, None) => Some(format!("scope '{}' needs a scope_value", spec.scope)),
        (RuleScope::Type, Some(value))
            if value.parse::<plantwatch_shared::api::NodeType>().is_err() =>
        {
            Some(format!("unknown node type '{value}'"))
        }
        _ => None,
    }
}

/// The threshold nearest the good side: what clears an alert by default.
pub fn lowest_threshold(spec: &RuleSpec) -> Option<f64> {
    spec.warning.or(spec.critical)
}

/// Reduces the points within `[now - window, now]` to one value.
pub fn aggregate(
    points: &VecDeque<(i64, f64)>,
    aggregation: RuleAggregation,
    from_ms: i64,
) -> Option<f64> {
    let start = points.partition_point(|(ts, _)| *ts < from_ms);
    let recent = points.range(start..);
    match aggregation {
        RuleAggregation::Last => points.back().filter(|(ts, _)| *ts >= from_ms).map(|p| p.1),
        RuleAggregation::Avg => {
            let (sum, count) = recent.fold((0.0, 0u32), |(s, n), (_, v)| (s + v, n + 1));
            (count > 0).then(|| sum / f64::from(count))
        }
        RuleAggregation::Min => recent.map(|p| p.1).reduce(f64::min),
        RuleAggregation::Max => recent.map(|p| p.1).reduce(f64::max),
        RuleAggregation::Rate => {
            let mut increase = 0.0;
            let mut previous: Option<(i64, f64)> = None;
            let mut first_ts = None;
            let mut last_ts = None;
            for &(ts, value) in recent {
                if let Some((_, before)) = previous {
                    // A counter that went back was reset: it counted up from zero since.
                    increase += if value >= before {
                        value - before
                    } else {
                        value
                    };
                } else {
                    first_ts = Some(ts);
                }
                last_ts = Some(ts);
                previous = Some((ts, value));
            }
            let span_s = (last_ts? - first_ts?) as f64 / 1_000.0;
            (span_s > 0.0).then(|| increase / span_s)
        }
    }
}

/// The severity `value` has under `spec`, given the severity of the alert already open
/// (`None` when none is): a breach of a threshold raises it; an open alert keeps its lowest
/// severity until the value reaches the clear threshold (the lowest threshold when none is
/// set), so a value hovering between the two does not resolve and re-fire every cycle.
pub fn severity_of(spec: &RuleSpec, value: f64, open: Option<Severity>) -> Option<Severity> {
    let breaches =
        |threshold: Option<f64>| threshold.is_some_and(|t| spec.comparison.breaches(value, t));
    if breaches(spec.critical) {
        return Some(Severity::Critical);
    }
    if breaches(spec.warning) {
        return Some(Severity::Warning);
    }
    let open = open?;
    let clear = spec.clear.or_else(|| lowest_threshold(spec))?;
    if spec.comparison.cleared(value, clear) || value.is_nan() {
        None
    } else if spec.warning.is_some() {
        Some(Severity::Warning)
    } else {
        Some(open)
    }
}

/// One tag matcher: the series' tag `key` matches `pattern`, or with `negated` (written
/// `key!` in a rule: `descr!=*memory*`) does not (a series without the tag passes).
#[derive(Debug, Clone)]
struct TagMatcher {
    key: String,
    pattern: String,
    negated: bool,
}

impl TagMatcher {
    fn accepts(&self, value: Option<&str>) -> bool {
        let matched = value.is_some_and(|v| glob_matches(&self.pattern, v));
        matched != self.negated
    }
}

/// A rule's tag matchers, ready to test a series' canonical tags.
#[derive(Debug, Clone, Default)]
pub struct TagMatchers(Vec<TagMatcher>);

impl TagMatchers {
    pub fn new(tags: &BTreeMap<String, String>) -> Self {
        TagMatchers(
            tags.iter()
                .map(|(k, v)| match k.strip_suffix('!') {
                    Some(key) => TagMatcher {
                        key: key.to_owned(),
                        pattern: v.clone(),
                        negated: true,
                    },
                    None => TagMatcher {
                        key: k.clone(),
                        pattern: v.clone(),
                        negated: false,
                    },
                })
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the canonical tags `k=v,k=v` satisfy every matcher. Without escapes in the
    /// text (the usual case) nothing is allocated.
    pub fn matches(&self, canonical: &str) -> bool {
        if self.0.is_empty() {
            return true;
        }
        if canonical.contains('\\') {
            let tags = tags_from_canonical(canonical);
            return self
                .0
                .iter()
                .all(|m| m.accepts(tags.get(&m.key).map(String::as_str)));
        }
        self.0.iter().all(|m| {
            let value = canonical
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == m.key)
                .map(|(_, value)| value);
            m.accepts(value)
        })
    }
}

/// What a node offers to a rule's scope.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub node_type: String,
    pub tags: Vec<String>,
    pub template: Option<String>,
    pub collector_id: Option<i64>,
    pub parent_id: Option<i64>,
    /// Further parents beside `parent_id`.
    pub other_parents: Vec<i64>,
    pub health: String,
    pub health_reason: Option<String>,
    /// Windows services the node must have running (`PUT /nodes/{id}/host`).
    pub required_services: Vec<String>,
}

/// Whether a rule with this scope applies to `node`.
pub fn in_scope(scope: RuleScope, value: Option<&str>, node: &NodeFacts) -> bool {
    scope.covers(
        value,
        &node.name,
        &node.node_type,
        &node.tags,
        node.template.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(values: &[(i64, f64)]) -> VecDeque<(i64, f64)> {
        values.iter().copied().collect()
    }

    #[test]
    fn aggregations_use_only_the_window() {
        let p = points(&[(0, 100.0), (10_000, 1.0), (20_000, 3.0), (30_000, 2.0)]);
        assert_eq!(aggregate(&p, RuleAggregation::Last, 10_000), Some(2.0));
        assert_eq!(aggregate(&p, RuleAggregation::Avg, 10_000), Some(2.0));
        assert_eq!(aggregate(&p, RuleAggregation::Min, 10_000), Some(1.0));
        assert_eq!(aggregate(&p, RuleAggregation::Max, 10_000), Some(3.0));
        assert_eq!(aggregate(&p, RuleAggregation::Last, 40_000), None);
        assert_eq!(aggregate(&p, RuleAggregation::Avg, 40_000), None);
    }

    #[test]
    fn rate_counts_a_reset_from_zero() {
        let p = points(&[(0, 100.0), (10_000, 200.0), (20_000, 50.0)]);
        // 100 up, then reset and 50 more: 150 over 20 s.
        assert_eq!(aggregate(&p, RuleAggregation::Rate, 0), Some(7.5));
    }

    #[test]
    fn hysteresis_keeps_an_alert_until_the_clear_threshold() {
        let spec = RuleSpec {
            warning: Some(80.0),
            critical: Some(90.0),
            clear: Some(70.0),
            ..RuleSpec::new("t", "x.y")
        };
        assert_eq!(severity_of(&spec, 75.0, None), None);
        assert_eq!(severity_of(&spec, 85.0, None), Some(Severity::Warning));
        assert_eq!(severity_of(&spec, 95.0, None), Some(Severity::Critical));
        // Back under critical: warning again; under warning but above clear: still warning.
        assert_eq!(
            severity_of(&spec, 85.0, Some(Severity::Critical)),
            Some(Severity::Warning)
        );
        assert_eq!(
            severity_of(&spec, 75.0, Some(Severity::Warning)),
            Some(Severity::Warning)
        );
        assert_eq!(
            severity_of(&spec, 70.1, Some(Severity::Warning)),
            Some(Severity::Warning)
        );
        // Reaching the clear threshold resolves.
        assert_eq!(severity_of(&spec, 70.0, Some(Severity::Warning)), None);
        assert_eq!(severity_of(&spec, 69.9, Some(Severity::Warning)), None);
    }

    /// Every built-in threshold rule resolves once its value is back at the clear threshold
    /// (the lowest threshold when none is set) — from either severity — and never while a
    /// threshold is still breached. `snmp_unreachable` once kept firing at `snmp.up` 1.
    #[test]
    fn every_builtin_rule_resolves_at_its_clear_threshold() {
        for (builtin, spec) in builtin_defaults() {
            if !reads_metric(Some(builtin))
                || matches!(
                    builtin,
                    BuiltinRule::InterfaceDown | BuiltinRule::WindowsServiceStopped
                )
            {
                continue;
            }
            let clear = spec.clear.or_else(|| lowest_threshold(&spec)).unwrap();
            for open in [Severity::Warning, Severity::Critical] {
                let at_clear = severity_of(&spec, clear, Some(open));
                let breaching = [spec.warning, spec.critical]
                    .into_iter()
                    .flatten()
                    .any(|t| spec.comparison.breaches(clear, t));
                if breaching {
                    assert!(at_clear.is_some(), "{builtin}: a breach must not clear");
                } else {
                    assert_eq!(at_clear, None, "{builtin} stays open at {clear}");
                }
            }
        }
        // The healthy values themselves: SNMP answering, a UPS on mains.
        let of = |b: BuiltinRule| {
            builtin_defaults()
                .into_iter()
                .find(|(x, _)| *x == b)
                .unwrap()
                .1
        };
        let snmp = of(BuiltinRule::SnmpUnreachable);
        assert_eq!(severity_of(&snmp, 0.0, None), Some(Severity::Warning));
        assert_eq!(severity_of(&snmp, 1.0, Some(Severity::Warning)), None);
        let ups = of(BuiltinRule::UpsOnBattery);
        assert_eq!(severity_of(&ups, 1.0, None), Some(Severity::Critical));
        assert_eq!(severity_of(&ups, 0.0, Some(Severity::Critical)), None);
    }

    #[test]
    fn below_rules_clear_upwards() {
        let spec = RuleSpec {
            comparison: Comparison::Below,
            warning: Some(1.0),
            ..RuleSpec::new("snmp", "snmp.up")
        };
        assert_eq!(severity_of(&spec, 0.0, None), Some(Severity::Warning));
        assert_eq!(
            severity_of(&spec, 0.5, Some(Severity::Warning)),
            Some(Severity::Warning)
        );
        assert_eq!(severity_of(&spec, 1.0, Some(Severity::Warning)), None);
        assert_eq!(severity_of(&spec, 1.0, None), None);
    }

    #[test]
    fn globs_and_tag_matchers() {
        assert!(glob_matches("Gi*", "Gi0/1"));
        assert!(glob_matches("*0/1", "Gi0/1"));
        assert!(glob_matches("G*0*1", "Gi0/1"));
        assert!(!glob_matches("Te*", "Gi0/1"));
        assert!(glob_matches("eth0", "eth0"));
        assert!(!glob_matches("eth0", "eth01"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a**b", "ab"));
        assert!(glob_matches("a*b*c", "a-b-c"));
        assert!(!glob_matches("a*b*c", "a-c-b"));
        assert!(!glob_matches("ab*ba", "aba"), "the ends may not overlap");
        let m = TagMatchers::new(&BTreeMap::from([("ifName".to_owned(), "Gi*".to_owned())]));
        assert!(m.matches("ifIndex=1,ifName=Gi0/1"));
        assert!(!m.matches("ifIndex=1,ifName=Te0/1"));
        assert!(!m.matches("ifIndex=1"));
        // Escaped separators in values take the slow path and still match.
        let escaped = TagMatchers::new(&BTreeMap::from([("descr".to_owned(), "a,b*".to_owned())]));
        assert!(escaped.matches(r"descr=a\,b\=c,ifIndex=2"));
        assert!(!escaped.matches(r"descr=a\=c"));
        // Negative matchers (`descr!=…`) exclude series; a series without the tag passes.
        let not_memory = TagMatchers::new(&BTreeMap::from([
            ("descr!".to_owned(), "*memory*".to_owned()),
            ("hrStorageIndex".to_owned(), "*".to_owned()),
        ]));
        assert!(not_memory.matches("descr=/,hrStorageIndex=31"));
        assert!(!not_memory.matches("descr=Cached memory,hrStorageIndex=7"));
        assert!(!not_memory.matches(r"descr=Shared memory\, tmp,hrStorageIndex=8"));
        let no_tmp = TagMatchers::new(&BTreeMap::from([("mount!".to_owned(), "/tmp".to_owned())]));
        assert!(no_tmp.matches("descr=/"));
        assert!(!no_tmp.matches("mount=/tmp"));
    }

    #[test]
    fn submitted_rules_are_checked() {
        let ok = RuleSpec {
            warning: Some(80.0),
            critical: Some(90.0),
            ..RuleSpec::new("t", "cpu.load_pct")
        };
        assert_eq!(problem(&ok, None, &Default::default()), None);
        let swapped = RuleSpec {
            warning: Some(95.0),
            ..ok.clone()
        };
        assert!(
            problem(&swapped, None, &Default::default())
                .unwrap()
                .contains("critical")
        );
        let no_threshold = RuleSpec::new("t", "cpu.load_pct");
        assert!(problem(&no_threshold, None, &Default::default()).is_some());
        let bad_metric = RuleSpec {
            metric: Some("cpu".into()),
            ..ok.clone()
        };
        assert!(
            problem(&bad_metric, None, &Default::default())
                .unwrap()
                .contains("measurement.field")
        );
        let bad_clear = RuleSpec {
            clear: Some(85.0),
            ..ok.clone()
        };
        assert!(
            problem(&bad_clear, None, &Default::default())
                .unwrap()
                .contains("clear")
        );
        for (builtin, spec) in builtin_defaults() {
            assert_eq!(
                problem(&spec, Some(builtin), &Default::default()),
                None,
                "{builtin}"
            );
        }
    }
}
