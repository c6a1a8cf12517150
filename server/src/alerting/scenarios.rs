//! Table-driven alerting scenarios (`scenarios/*.toml`): samples arrive step by step into a
//! real hot window, and each step runs one cycle's judge and transitions, with no database
//! and no clock — what the evaluator would open, fire, flag and send at each moment.

use std::collections::HashMap;

use plantwatch_shared::api::{AlertRule, AlertState, Comparison, RuleAggregation, RuleSpec};
use serde::Deserialize;

use super::evaluate::{AlertKey, Evaluator, Inputs};
use super::rules::NodeFacts;
use super::transitions::Write;
use crate::metrics_store::{HotWindow, Sample};

#[derive(Debug, Deserialize)]
struct File {
    scenario: Vec<Scenario>,
}

#[derive(Debug, Deserialize)]
struct Scenario {
    name: String,
    rule: Rule,
    #[serde(default)]
    repeat_s: i64,
    step: Vec<Step>,
}

#[derive(Debug, Deserialize)]
struct Rule {
    metric: String,
    warning: Option<f64>,
    critical: Option<f64>,
    clear: Option<f64>,
    window_s: u32,
    #[serde(default)]
    for_s: u32,
    aggregation: Option<RuleAggregation>,
    comparison: Option<Comparison>,
}

#[derive(Debug, Deserialize)]
struct Step {
    at: i64,
    samples: Vec<(String, f64)>,
    #[serde(default)]
    maintenance: bool,
    #[serde(default)]
    acked: bool,
    /// The service checks that exist from this step on (default: those of the step before;
    /// at first, none).
    checks: Option<Vec<i64>>,
    open: Vec<String>,
    queued: Vec<String>,
}

/// The start of every scenario, UNIX seconds.
const START: i64 = 1_700_000_000;

fn run(scenario: &Scenario) {
    let spec = RuleSpec {
        warning: scenario.rule.warning,
        critical: scenario.rule.critical,
        clear: scenario.rule.clear,
        window_s: scenario.rule.window_s,
        for_s: scenario.rule.for_s,
        aggregation: scenario.rule.aggregation.unwrap_or(RuleAggregation::Last),
        comparison: scenario.rule.comparison.unwrap_or(Comparison::AtLeast),
        ..RuleSpec::new("rule", &scenario.rule.metric)
    };
    let rule = AlertRule {
        id: 1,
        spec,
        builtin: None,
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        updated_at: time::OffsetDateTime::UNIX_EPOCH,
    };
    let node = NodeFacts {
        id: 1,
        name: "n1".into(),
        health: "discovering".into(),
        ..NodeFacts::default()
    };
    let hot = HotWindow::default();
    let mut evaluator = Evaluator::default();
    let mut next_id = 1;
    // When each alert was last sent on the one channel (what the writer reads back).
    let mut last_sent: HashMap<i64, i64> = HashMap::new();
    let mut checks = std::collections::HashSet::new();
    for (i, step) in scenario.step.iter().enumerate() {
        if let Some(now_there) = &step.checks {
            checks = now_there.iter().copied().collect();
        }
        let now = START + step.at;
        let samples: Vec<Sample> = step
            .samples
            .iter()
            .map(|(series, value)| Sample::of(1, series, now * 1_000, *value))
            .collect();
        hot.record(&samples, &Default::default(), i64::MIN);
        let mut inputs = Inputs {
            now,
            rules: vec![rule.clone()],
            nodes: vec![node.clone()],
            channels: Vec::new(),
            checks: checks.clone(),
            ..Inputs::default()
        };
        if step.maintenance {
            inputs.maintenance.nodes.insert(1, "works".into());
        }
        if step.acked {
            inputs.acked = evaluator.memory.open.values().map(|a| a.id).collect();
        }
        let judgement = evaluator.judge(&inputs, &hot);
        let writes = evaluator.memory.transitions(&inputs, &judgement);
        // What the writer would do with the ids and the notifications.
        let mut queued = Vec::new();
        for write in writes {
            match write {
                Write::Insert(key) => {
                    evaluator.memory.open.get_mut(&key).unwrap().id = next_id;
                    next_id += 1;
                }
                Write::Queue { event, alerts, .. } => {
                    let id = evaluator
                        .memory
                        .open
                        .get(&AlertKey::of(&alerts[0]))
                        .map_or(alerts[0].id, |a| a.id);
                    last_sent.insert(id, now);
                    queued.push(event.to_owned());
                }
                Write::Repeat(key) => {
                    let id = evaluator.memory.open[&key].id;
                    let due = last_sent
                        .get(&id)
                        .is_none_or(|t| now - t >= scenario.repeat_s);
                    if scenario.repeat_s > 0 && due {
                        last_sent.insert(id, now);
                        queued.push("repeat".to_owned());
                    }
                }
                _ => {}
            }
        }
        let mut open: Vec<String> = evaluator
            .memory
            .open
            .values()
            .map(|a| {
                let state = match a.state {
                    AlertState::Pending => "pending",
                    AlertState::Firing => "firing",
                    _ => "resolved",
                };
                let mut text = format!("{} {state} {}", a.series, a.severity.as_str());
                for (flag, name) in [
                    (a.held, "held"),
                    (a.suppressed, "suppressed"),
                    (a.flapping, "flapping"),
                ] {
                    if flag {
                        text.push(' ');
                        text.push_str(name);
                    }
                }
                text
            })
            .collect();
        open.sort();
        let context = format!("{}: step {i} (at {} s)", scenario.name, step.at);
        assert_eq!(open, step.open, "{context}: open alerts");
        assert_eq!(queued, step.queued, "{context}: notifications");
    }
}

#[test]
fn threshold_scenarios() {
    let file: File = toml::from_str(include_str!("scenarios/thresholds.toml")).unwrap();
    assert!(file.scenario.len() >= 5);
    for scenario in &file.scenario {
        run(scenario);
    }
}
