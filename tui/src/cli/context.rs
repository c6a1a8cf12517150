//! `plantwatch context list|use|remove`.

use clap::Subcommand;
use serde::Serialize;

use super::Session;

#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// List the saved server contexts.
    #[command(alias = "ls")]
    List,
    /// Make a context the current one.
    Use {
        /// Context name, as `context list` shows it.
        name: String,
    },
    /// Forget a context, its pinned fingerprint and its session.
    #[command(alias = "rm")]
    Remove {
        /// Context name.
        name: String,
    },
}

/// A context as listed: never with its token.
#[derive(Serialize)]
struct ContextView {
    name: String,
    url: String,
    username: Option<String>,
    fingerprint: Option<String>,
    signed_in: bool,
    current: bool,
}

pub fn run(session: &Session, command: ContextCommand) -> anyhow::Result<()> {
    let mut profiles = session.load()?;
    match command {
        ContextCommand::List => {
            let views: Vec<ContextView> = profiles
                .contexts
                .iter()
                .map(|c| ContextView {
                    name: c.name.clone(),
                    url: c.url.clone(),
                    username: c.username.clone(),
                    fingerprint: c.fingerprint.map(|f| f.to_string()),
                    signed_in: c.token.is_some(),
                    current: profiles.current.as_deref() == Some(c.name.as_str()),
                })
                .collect();
            let rows = views
                .iter()
                .map(|v| {
                    vec![
                        if v.current { "*" } else { "" }.to_owned(),
                        v.name.clone(),
                        v.url.clone(),
                        v.username.clone().unwrap_or_else(|| "-".into()),
                        if v.signed_in { "yes" } else { "no" }.to_owned(),
                        v.fingerprint.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            session.print(
                &views,
                &[
                    "CURRENT",
                    "NAME",
                    "SERVER",
                    "USER",
                    "SIGNED IN",
                    "FINGERPRINT",
                ],
                rows,
            )
        }
        ContextCommand::Use { name } => {
            profiles.use_context(&name)?;
            session.save(&profiles)?;
            println!("Switched to context {name}.");
            Ok(())
        }
        ContextCommand::Remove { name } => {
            profiles.remove(&name)?;
            session.save(&profiles)?;
            println!("Removed context {name}.");
            Ok(())
        }
    }
}
