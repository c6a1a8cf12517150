//! `plantwatch templates list|show|validate|reload`: the device templates and Modbus profiles
//! the server knows, one whole, a file checked before it is copied to the server, and loading
//! the files dropped into its data dir's `templates/` again.

use anyhow::Context as _;
use clap::Subcommand;
use plantwatch_shared::api::{TemplateDef, template_problems};

use super::Session;

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Every template: what it polls (SNMP values, Modbus points), its interval, where it came
    /// from and how many nodes use it.
    List,
    /// One template whole, as the server resolved it (parents included), as TOML.
    Show {
        /// The template's name.
        name: String,
    },
    /// Checks a template file before it is copied to the server: the same checks the server
    /// makes; a template it extends is looked up on the server when signed in.
    Validate {
        /// The TOML file.
        file: std::path::PathBuf,
    },
    /// Load the templates again (admins): the built-in ones and the files in the server's
    /// `<data dir>/templates/`; a file at fault changes nothing and is named.
    Reload,
}

/// Largest template file read (the server's limit too).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Checks one template file; the problems, or the template.
fn validate(file: &std::path::Path) -> anyhow::Result<Result<TemplateDef, Vec<String>>> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        return Ok(Err(vec![format!(
            "the file has {size} bytes; at most {MAX_FILE_BYTES} are read"
        )]));
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let def: TemplateDef = match toml::from_str(&text) {
        Ok(def) => def,
        Err(error) => return Ok(Err(vec![error.to_string().trim().to_owned()])),
    };
    let problems = template_problems(&def);
    Ok(if problems.is_empty() {
        Ok(def)
    } else {
        Err(problems)
    })
}

pub async fn run(session: &Session, command: TemplatesCommand) -> anyhow::Result<()> {
    if let TemplatesCommand::Validate { file } = &command {
        let def = match validate(file)? {
            Ok(def) => def,
            Err(problems) => {
                for problem in &problems {
                    eprintln!("{}: {problem}", file.display());
                }
                anyhow::bail!(
                    "{}: not a valid template ({} problem(s))",
                    file.display(),
                    problems.len()
                );
            }
        };
        // A parent it extends must exist on the server; without a session that is not checked.
        let mut note = String::new();
        if !def.extends.is_empty() {
            match session.client() {
                Ok((_, client)) => {
                    let known = client.list_templates().await?;
                    let missing: Vec<&String> = def
                        .extends
                        .iter()
                        .filter(|p| !known.items.iter().any(|t| &t.name == *p))
                        .collect();
                    if !missing.is_empty() {
                        anyhow::bail!(
                            "{}: extends {} the server does not have",
                            file.display(),
                            missing
                                .iter()
                                .map(|m| m.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                    note = format!(", extends {}", def.extends.join(", "));
                }
                Err(_) => {
                    note = format!(
                        ", extends {} (not checked: not signed in)",
                        def.extends.join(", ")
                    )
                }
            }
        }
        let values: usize = def.scalars.iter().map(|g| g.fields.len()).sum::<usize>()
            + def.tables.iter().map(|t| t.fields.len()).sum::<usize>()
            + def.modbus.as_ref().map_or(0, |m| m.points.len());
        println!(
            "{}: template {} is valid ({values} value(s){note}).",
            file.display(),
            def.name
        );
        return Ok(());
    }
    let (_, client) = session.client()?;
    match command {
        TemplatesCommand::Validate { .. } => Ok(()),
        TemplatesCommand::Show { name } => {
            let list = client.list_templates().await?;
            let Some(found) = list.items.iter().find(|t| t.name == name) else {
                let names: Vec<&str> = list.items.iter().map(|t| t.name.as_str()).collect();
                anyhow::bail!("no template {name:?}; the server has {}", names.join(", "));
            };
            let template = client.get_template(found.id).await?;
            if session.format != super::output::Format::Table {
                return session.print(&template, &[], Vec::new());
            }
            println!(
                "# {} — {} value(s) every {} s, {} node(s), from {}",
                template.name,
                template.metric_count,
                template.interval_s,
                template.node_count,
                template.source
            );
            if let Some(def) = &template.definition {
                print!(
                    "{}",
                    toml::to_string_pretty(def).context("writing the template")?
                );
            }
            Ok(())
        }
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
