//! interface_down: a port administratively up and operationally not. Only a port seen up and
//! then down in the window opens an alert (unused ports, admin up and never connected, do
//! not); an open one holds while the port is down.

use plantwatch_shared::api::{AlertRule, Severity};
use plantwatch_shared::metric_names::{INTERFACE_ADMIN_STATUS, INTERFACE_OPER_STATUS};

use super::{Cycle, Findings, Judge, RuleKind, Series, series_key};
use crate::alerting::messages::{interface_label, series_name};
use crate::alerting::rules::{NodeFacts, TagMatchers};

pub struct InterfaceDown;

impl RuleKind for InterfaceDown {
    fn reads<'r>(&self, _rule: &'r AlertRule) -> Vec<&'r str> {
        vec![INTERFACE_OPER_STATUS.name]
    }

    fn judge<'a>(&self, rule: &'a AlertRule) -> Box<dyn Judge<'a> + 'a> {
        Box::new(InterfaceJudge {
            rule,
            ports: Vec::new(),
        })
    }
}

/// A port worth a look after the pass.
struct Port {
    node_id: i64,
    tags: String,
    oper_status: f64,
    seen_up: bool,
}

struct InterfaceJudge<'a> {
    rule: &'a AlertRule,
    ports: Vec<Port>,
}

impl<'a> Judge<'a> for InterfaceJudge<'a> {
    fn series(
        &mut self,
        _cycle: &Cycle<'a>,
        _node: &'a NodeFacts,
        series: &mut Series<'_>,
        _out: &mut Findings,
    ) {
        let (key, points) = (series.key, series.points);
        let Some(&(_, newest)) = points.back() else {
            return;
        };
        let open = series.open_on_node(self.rule);
        if newest == 1.0 && !open {
            // Up ports (the common case) cost nothing more.
            return;
        }
        // A down one is looked through.
        let seen_up = newest != 1.0 && points.iter().any(|(_, v)| *v == 1.0);
        if seen_up || open {
            self.ports.push(Port {
                node_id: key.node_id,
                tags: key.tags.to_string(),
                oper_status: newest,
                seen_up,
            });
        }
    }

    fn finish(self: Box<Self>, cycle: &Cycle<'a>, out: &mut Findings) {
        let rule = self.rule;
        let severity = if rule.spec.critical.is_some() {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let matchers = TagMatchers::new(&rule.spec.tags);
        for port in self.ports {
            if cycle.in_scope(rule, port.node_id).is_none() || !matchers.matches(&port.tags) {
                continue;
            }
            let down = port.oper_status != 1.0
                && cycle
                    .hot
                    .latest_of(port.node_id, INTERFACE_ADMIN_STATUS.name, &port.tags)
                    .is_some_and(|(_, admin)| admin == 1.0);
            let key = series_key(
                rule.id,
                port.node_id,
                series_name(INTERFACE_OPER_STATUS.name, &port.tags),
            );
            let open = cycle.open.contains_key(&key);
            let label = interface_label(&port.tags);
            if cycle.ignored(rule, port.node_id, &key.series) {
                if open {
                    let message = format!("interface {label} ignored by an operator");
                    out.verdict(key, None, Some(port.oper_status), message);
                }
                continue;
            }
            // A new alert needs the port seen up first; an open one holds while down.
            let down = down && (open || port.seen_up);
            if !down && !open {
                continue;
            }
            let message = format!(
                "interface {label} administratively up, operational status {}",
                port.oper_status as i64
            );
            out.verdict(
                key,
                down.then_some(severity),
                Some(port.oper_status),
                message,
            );
        }
    }
}
