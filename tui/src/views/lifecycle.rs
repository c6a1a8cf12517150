//! The create/edit/delete lifecycle the resource views share: the question before a delete,
//! and what a save or a delete says, worded the same for nodes, credentials, channels, rules,
//! users, collectors and agents.

use super::Effect;
use crate::overlay::{Confirm, Overlay};
use crate::widgets::form::Ask;

/// Asks before deleting the `noun` called `name`; `consequence` says what goes with it.
pub fn ask_delete(noun: &str, name: &str, consequence: &str, tag: Ask) -> Vec<Effect> {
    vec![Effect::Open(Overlay::Confirm(Confirm {
        title: format!("Delete {noun}"),
        question: format!("Delete {noun} {name}? {consequence}"),
        yes: "delete",
        tag,
    }))]
}

/// A form's save answered: close it, say so, reload.
pub fn saved(noun: &str, name: &str, created: bool) -> Vec<Effect> {
    let done = if created { "created" } else { "saved" };
    changed(format!("✔ {} {name} {done}.", capitalised(noun)))
}

/// A delete answered: say so, reload.
pub fn deleted(noun: &str, name: &str) -> Vec<Effect> {
    vec![
        Effect::Info(format!("✔ {} {name} deleted.", capitalised(noun))),
        Effect::Refresh,
    ]
}

/// Any other change answered from a form: close it, say `message`, reload.
pub fn changed(message: String) -> Vec<Effect> {
    vec![Effect::CloseOverlay, Effect::Info(message), Effect::Refresh]
}

fn capitalised(noun: &str) -> String {
    let mut chars = noun.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Info(text) => Some(text.clone()),
                Effect::Open(Overlay::Confirm(c)) => Some(format!("{}: {}", c.title, c.question)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_resource_speaks_alike() {
        assert_eq!(
            said(&saved("channel", "ops", true)),
            ["✔ Channel ops created."]
        );
        assert_eq!(said(&saved("rule", "hot", false)), ["✔ Rule hot saved."]);
        assert_eq!(said(&deleted("node", "plc-1")), ["✔ Node plc-1 deleted."]);
        assert_eq!(
            said(&ask_delete(
                "user",
                "karl",
                "Their sessions end.",
                Ask("DELETE")
            )),
            ["Delete user: Delete user karl? Their sessions end."]
        );
        assert!(matches!(saved("node", "x", true)[0], Effect::CloseOverlay));
    }
}
