//! windows_service_stopped: a Windows service of automatic start that is not running
//! (warning), or one its node requires that is not running or not installed (critical).
//! Trigger-start services stop by design when idle (their `start` tag says `auto-trigger`),
//! and so do the services in [`STOP_BY_DESIGN`]; both are left alone unless required. The
//! rule's `for_s` (a minute) lets a service that is starting or restarting get there.

use std::collections::HashSet;

use plantwatch_shared::api::{AlertRule, Severity, tags_from_canonical};
use plantwatch_shared::metric_names::{
    WINDOWS_SERVICE_RUNNING, WINDOWS_SERVICE_STATE, windows_service_state_name,
};
use plantwatch_shared::rules::glob_matches;

use super::{Cycle, Findings, Judge, RuleKind, Series, series_key};
use crate::alerting::messages::series_name;
use crate::alerting::rules::{NodeFacts, TagMatchers};

const RUNNING: f64 = WINDOWS_SERVICE_RUNNING as f64;

/// Services of automatic start that stop on their own on a healthy Windows (lower case, `*`
/// matches any run of characters): updaters that run and exit, licensing and setup services,
/// ones Windows starts on demand although marked automatic, .NET's native image compilers.
pub const STOP_BY_DESIGN: &[&str] = &[
    "bits",
    "cdpsvc",
    "clr_optimization_*",
    "dmwappushservice",
    "edgeupdate*",
    "googleupdater*",
    "gupdate*",
    "mapsbroker",
    "mozillamaintenance",
    "remoteregistry",
    "shellhwdetection",
    "sppsvc",
    "sysmain",
    "tiledatamodelsvc",
    "trustedinstaller",
    "wbiosrvc",
    "wuauserv",
];

/// Whether `service` is one of [`STOP_BY_DESIGN`].
fn stops_by_design(service: &str) -> bool {
    let lower = service.to_lowercase();
    STOP_BY_DESIGN.iter().any(|p| glob_matches(p, &lower))
}

pub struct ServiceStopped;

impl RuleKind for ServiceStopped {
    fn reads<'r>(&self, _rule: &'r AlertRule) -> Vec<&'r str> {
        vec![WINDOWS_SERVICE_STATE.name]
    }

    fn judge<'a>(&self, rule: &'a AlertRule) -> Box<dyn Judge<'a> + 'a> {
        Box::new(ServiceJudge {
            rule,
            matchers: TagMatchers::new(&rule.spec.tags),
            seen: HashSet::new(),
        })
    }
}

struct ServiceJudge<'a> {
    rule: &'a AlertRule,
    matchers: TagMatchers,
    /// (node, service in lower case) reported this cycle; nodes reporting any service.
    seen: HashSet<(i64, String)>,
}

/// The series an alert of `service` on a node is about.
fn alert_series(service: &str) -> String {
    series_name(
        WINDOWS_SERVICE_STATE.name,
        &plantwatch_shared::api::canonical_tags([("service", service)]),
    )
}

fn state_text(state: f64) -> &'static str {
    windows_service_state_name(state as u32).unwrap_or("in an unknown state")
}

impl<'a> Judge<'a> for ServiceJudge<'a> {
    fn series(
        &mut self,
        cycle: &Cycle<'a>,
        node: &'a NodeFacts,
        series: &mut Series<'_>,
        out: &mut Findings,
    ) {
        let rule = self.rule;
        let key = series.key;
        if !super::scoped(rule, node) || !self.matchers.matches(&key.tags) {
            return;
        }
        let from_ms = cycle.now_ms - i64::from(rule.spec.window_s) * 1_000;
        let Some(&(at, state)) = series.points.back() else {
            return;
        };
        if at < from_ms {
            return; // Gone quiet: agent_heartbeat speaks for the machine.
        }
        let tags = tags_from_canonical(&key.tags);
        let Some(service) = tags.get("service") else {
            return;
        };
        self.seen.insert((node.id, service.to_lowercase()));
        self.seen.insert((node.id, String::new()));
        let required = node
            .required_services
            .iter()
            .any(|r| r.eq_ignore_ascii_case(service));
        let start = tags.get("start").map(String::as_str).unwrap_or_default();
        let automatic = matches!(start, "auto" | "auto-delayed") && !stops_by_design(service);
        let down = state != RUNNING && (required || automatic);
        if !down && !series.open_on_node(rule) {
            return;
        }
        let name = alert_series(service);
        let alert = series_key(rule.id, node.id, name);
        if !down && !cycle.open.contains_key(&alert) {
            return;
        }
        if cycle.ignored(rule, node.id, &alert.series) {
            if cycle.open.contains_key(&alert) {
                out.verdict(
                    alert,
                    None,
                    Some(state),
                    format!("service {service} ignored by an operator"),
                );
            }
            return;
        }
        let (severity, message) = if !down {
            (None, format!("service {service} running again"))
        } else if required {
            (
                Some(Severity::Critical),
                format!(
                    "service {service} ({start}) {}, and the node requires it",
                    state_text(state)
                ),
            )
        } else {
            (
                Some(Severity::Warning),
                format!("service {service} of automatic start {}", state_text(state)),
            )
        };
        out.verdict(alert, severity, Some(state), message);
    }

    fn finish(self: Box<Self>, cycle: &Cycle<'a>, out: &mut Findings) {
        let rule = self.rule;
        // A required service the agent does not list at all: not installed (or renamed). Only
        // where the agent reports services, so a silent agent is agent_heartbeat's alone.
        for node in cycle.nodes.values() {
            if node.required_services.is_empty()
                || !self.seen.contains(&(node.id, String::new()))
                || !super::scoped(rule, node)
            {
                continue;
            }
            for service in &node.required_services {
                if self.seen.contains(&(node.id, service.to_lowercase())) {
                    continue;
                }
                let alert = series_key(rule.id, node.id, alert_series(service));
                if cycle.ignored(rule, node.id, &alert.series) {
                    continue;
                }
                let message = format!("service {service} required by the node is not installed");
                out.verdict(alert, Some(Severity::Critical), None, message);
            }
        }
        // An open alert whose service is no longer required nor reported resolves.
        for key in cycle.open.keys() {
            if key.rule_id != rule.id {
                continue;
            }
            let Some(node) = key.node_id.and_then(|id| cycle.nodes.get(&id)) else {
                continue;
            };
            let service = tags_from_canonical(
                key.series
                    .strip_prefix(WINDOWS_SERVICE_STATE.name)
                    .and_then(|t| t.strip_prefix('{'))
                    .and_then(|t| t.strip_suffix('}'))
                    .unwrap_or_default(),
            )
            .remove("service")
            .unwrap_or_default();
            let reported = self.seen.contains(&(node.id, service.to_lowercase()));
            let required = node
                .required_services
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&service));
            if !reported && !required && self.seen.contains(&(node.id, String::new())) {
                let message = format!("service {service} no longer required");
                out.verdict(key.clone(), None, None, message);
            }
        }
    }
}
