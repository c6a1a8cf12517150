//! `plantwatch sites status|alerts`: every saved context at once, asked in parallel — for a
//! service provider's on-call engineer with ten plants.

use clap::Subcommand;

use super::alerts::{ALERT_HEADERS, alert_row};
use super::{Partial, Session};
use crate::sites;

#[derive(Debug, Subcommand)]
pub enum SitesCommand {
    /// Every saved context: reachable or not, nodes by health, active alerts by severity,
    /// collectors offline; the worst first. Exits 3 when a site could not be read.
    Status,
    /// The active alerts of every site in one list, critical first, with the site's name.
    Alerts,
}

pub async fn run(session: &Session, command: SitesCommand) -> anyhow::Result<()> {
    let profiles = session.load()?;
    if profiles.contexts.is_empty() {
        anyhow::bail!("no saved contexts: `plantwatch login URL --name SITE` adds one");
    }
    match command {
        SitesCommand::Status => {
            let mut all = sites::statuses(&profiles, session.context.as_deref()).await;
            all.sort_by_key(|s| s.urgency());
            let rows = all
                .iter()
                .map(|s| {
                    let count = |n: u64| if s.is_ok() { n.to_string() } else { "-".into() };
                    vec![
                        format!("{}{}", s.site, if s.current { " *" } else { "" }),
                        s.state.clone(),
                        s.nodes_cell(),
                        count(s.alerts_of("critical")),
                        count(s.alerts_of("warning")),
                        if s.is_ok() {
                            format!("{}/{}", s.collectors_offline, s.collectors)
                        } else {
                            "-".into()
                        },
                        s.url.clone(),
                        s.problem.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            session.print(
                &all,
                &[
                    "SITE",
                    "STATE",
                    "NODES",
                    "CRITICAL",
                    "WARNING",
                    "COLLECTORS_OFFLINE",
                    "URL",
                    "PROBLEM",
                ],
                rows,
            )?;
            let down = all.iter().filter(|s| !s.is_ok()).count();
            if down > 0 {
                return Err(Partial(format!("{down} of {} site(s) not read", all.len())).into());
            }
            Ok(())
        }
        SitesCommand::Alerts => {
            let (merged, missing) = sites::alerts(&profiles).await;
            let mut headers = vec!["SITE"];
            headers.extend(ALERT_HEADERS);
            let rows = merged
                .iter()
                .map(|a| {
                    let mut row = vec![a.site.clone()];
                    row.extend(alert_row(&a.alert));
                    row
                })
                .collect();
            session.print(&merged, &headers, rows)?;
            if missing.is_empty() {
                return Ok(());
            }
            let sites: Vec<String> = missing
                .iter()
                .map(|(site, problem)| format!("{site} ({problem})"))
                .collect();
            Err(Partial(format!("not read: {}", sites.join(", "))).into())
        }
    }
}
