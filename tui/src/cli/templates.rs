//! `plantwatch templates list|reload`: the device templates and Modbus profiles the server
//! knows, and loading the files dropped into its data dir's `templates/` again.

use clap::Subcommand;

use super::Session;

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Every template: what it polls (SNMP values, Modbus points), its interval, where it came
    /// from and how many nodes use it.
    List,
    /// Load the templates again (admins): the built-in ones and the files in the server's
    /// `<data dir>/templates/`; a file at fault changes nothing and is named.
    Reload,
}

pub async fn run(session: &Session, command: TemplatesCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        TemplatesCommand::List => {
            let list = client.list_templates().await?;
            let rows = list
                .items
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.vendor.clone().unwrap_or_default(),
                        t.metric_count.to_string(),
                        t.interval_s.to_string(),
                        t.node_count.to_string(),
                        t.source.clone(),
                    ]
                })
                .collect();
            session.print(
                &list,
                &["NAME", "VENDOR", "VALUES", "INTERVAL_S", "NODES", "SOURCE"],
                rows,
            )
        }
        TemplatesCommand::Reload => {
            let reload = client.reload_templates().await?;
            eprintln!(
                "Loaded {} templates; changed: {}; {} collectors take them with their next \
                 configuration.",
                reload.loaded,
                if reload.changed.is_empty() {
                    "none".to_owned()
                } else {
                    reload.changed.join(", ")
                },
                reload.collectors_marked
            );
            Ok(())
        }
    }
}
