//! agent_heartbeat: an approved agent not heard from for the rule's window.

use plantwatch_shared::api::{AlertRule, Severity};

use super::{Cycle, Findings, Judge, RuleKind, node_key};

pub struct AgentHeartbeat;

impl RuleKind for AgentHeartbeat {
    fn judge<'a>(&self, rule: &'a AlertRule) -> Box<dyn Judge<'a> + 'a> {
        Box::new(HeartbeatJudge(rule))
    }

    fn reachability(&self) -> bool {
        true
    }

    fn offline(&self) -> bool {
        true
    }
}

struct HeartbeatJudge<'a>(&'a AlertRule);

impl<'a> Judge<'a> for HeartbeatJudge<'a> {
    fn finish(self: Box<Self>, cycle: &Cycle<'a>, out: &mut Findings) {
        let rule = self.0;
        let now = cycle.inputs.now;
        for agent in &cycle.inputs.agents {
            if cycle.in_scope(rule, agent.node_id).is_none() {
                continue;
            }
            let silent = agent.last_seen.map(|t| now - t);
            let down = silent.is_none_or(|s| s >= i64::from(rule.spec.window_s));
            let message = match silent {
                Some(s) => format!("no heartbeat from agent {} for {s} s", agent.name),
                None => format!("agent {} has never sent a heartbeat", agent.name),
            };
            out.verdict(
                node_key(rule.id, agent.node_id),
                down.then_some(Severity::Critical),
                silent.map(|s| s as f64),
                message,
            );
        }
    }
}
