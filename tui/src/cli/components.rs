//! `plantwatch tokens create|list|revoke`, and `plantwatch collectors|agents
//! list|approve|revoke|delete`: enrolling collectors and agents, and approving them.

use anyhow::bail;
use clap::Subcommand;
use plantwatch_shared::Client;
use plantwatch_shared::api::{
    ApproveRequest, Component, ComponentKind, ComponentQuery, ComponentStatus, CreateTokenRequest,
    EnrollmentToken, Listen, MAX_PAGE_LIMIT, TokenQuery,
};

use super::output::Format;
use super::{Session, confirm};
use crate::cells::{config_state, parse_duration, time_cell};
use plantwatch_shared::api::ErrorCode;

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create an enrollment token (admins) and print its join code, shown only now.
    Create {
        /// What the token is for, e.g. the plant or the technician.
        name: String,
        /// Stop working after this long: 30m, 12h, 7d, or seconds [default: never].
        #[arg(long, value_parser = parse_duration)]
        expires: Option<u64>,
        /// Enroll at most this many collectors and agents [default: any number].
        #[arg(long)]
        max_uses: Option<u32>,
        /// The URL collectors and agents reach the server at [default: the context's URL].
        #[arg(long)]
        server_url: Option<String>,
    },
    /// List enrollment tokens (never the tokens themselves).
    #[command(alias = "ls")]
    List,
    /// Revoke a token: it enrolls nothing more (enrolled components stay).
    Revoke {
        /// Token name or id.
        token: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ComponentsCommand {
    /// List them with status, version, last contact and configuration state.
    #[command(alias = "ls")]
    List {
        /// Only this status: pending, online, offline, revoked.
        #[arg(long)]
        status: Option<ComponentStatus>,
    },
    /// Approve an enrolled one (admins): collectors then get their configuration; an agent's
    /// node is matched by its host name or created.
    Approve {
        /// Name or id.
        name: String,
        /// An agent: the existing node it reports for (asked for when a node is named or
        /// addressed like its host).
        #[arg(long, conflicts_with = "new_node")]
        node: Option<String>,
        /// An agent: a new node of its own, named like its host (HOST-agent when taken).
        #[arg(long)]
        new_node: bool,
    },
    /// Revoke one (admins): its key stops working at once; it must enroll again.
    Revoke {
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Delete one (admins); the nodes of a deleted collector keep no collector.
    #[command(alias = "rm")]
    Delete {
        name: String,
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// A collector's event receivers (admins set them): SNMP traps (`--traps udp:162`) and
    /// syslog (`--syslog udp:514,tcp:601`); `none` turns one off. Without options, shows them.
    /// Also `collectors set NAME --traps …`.
    #[command(alias = "set")]
    Receivers {
        name: String,
        #[arg(long, value_name = "udp:PORT,…")]
        traps: Option<String>,
        #[arg(long, value_name = "udp:PORT,tcp:PORT,…")]
        syslog: Option<String>,
    },
}

/// A `--traps`/`--syslog` list, or a usage error naming the option.
fn listens(option: &str, text: Option<&String>) -> anyhow::Result<Option<Vec<Listen>>> {
    match text.map(|t| plantwatch_shared::api::parse_listens(t)) {
        None => Ok(None),
        Some(Ok(list)) => Ok(Some(list)),
        Some(Err(problem)) => super::usage!("--{option}: {problem}"),
    }
}

pub async fn tokens(session: &Session, command: TokensCommand) -> anyhow::Result<()> {
    let (context, client) = session.client()?;
    match command {
        TokensCommand::Create {
            name,
            expires,
            max_uses,
            server_url,
        } => {
            let request = CreateTokenRequest {
                name,
                expires_in_s: expires,
                max_uses,
                server_url: Some(server_url.unwrap_or(context.url)),
            };
            let created = client.create_token(&request).await?;
            if session.format == Format::Json {
                return session.print(&created, &[], Vec::new());
            }
            eprintln!(
                "Created enrollment token {:?} (id {}); its join code is shown only now.",
                created.token.name, created.token.id
            );
            eprintln!("On the collector or agent, run:");
            eprintln!("  plantwatch-collector enroll   (or plantwatch-agent enroll), and paste:");
            println!("{}", created.join_code.expose());
            Ok(())
        }
        TokensCommand::List => {
            let list = client
                .list_tokens(&TokenQuery {
                    limit: Some(MAX_PAGE_LIMIT),
                    offset: None,
                })
                .await?;
            let rows = list.items.iter().map(token_row).collect();
            session.print(
                &list,
                &["ID", "NAME", "STATE", "USES", "EXPIRES", "CREATED", "BY"],
                rows,
            )
        }
        TokensCommand::Revoke { token } => {
            let found = find_token(&client, &token).await?;
            let revoked = client.revoke_token(found.id).await?;
            eprintln!("Revoked enrollment token {:?}.", revoked.name);
            Ok(())
        }
    }
}

fn token_row(token: &EnrollmentToken) -> Vec<String> {
    let uses = match token.max_uses {
        Some(max) => format!("{}/{max}", token.uses),
        None => token.uses.to_string(),
    };
    vec![
        token.id.to_string(),
        token.name.clone(),
        token.state.to_string(),
        uses,
        time_cell(token.expires_at),
        time_cell(Some(token.created_at)),
        token.created_by.clone().unwrap_or_else(|| "-".into()),
    ]
}

async fn find_token(client: &Client, token: &str) -> anyhow::Result<EnrollmentToken> {
    let list = client
        .list_tokens(&TokenQuery {
            limit: Some(MAX_PAGE_LIMIT),
            offset: None,
        })
        .await?;
    let id = token.parse::<i64>().ok();
    only_one(list.items, "enrollment token", token, |t| {
        Some(t.id) == id || t.name == token
    })
}

/// The one item `given` names (by `names`), or an error saying there is none or several.
fn only_one<T>(
    items: Vec<T>,
    what: &str,
    given: &str,
    names: impl Fn(&T) -> bool,
) -> anyhow::Result<T> {
    let mut matches: Vec<T> = items.into_iter().filter(|item| names(item)).collect();
    match matches.len() {
        0 => bail!("there is no {what} {given:?}"),
        1 => Ok(matches.remove(0)),
        n => bail!("{n} of them are called {given:?}; give the id"),
    }
}

/// A collector or agent by name (case-insensitive) or id.
pub async fn find(client: &Client, kind: ComponentKind, name: &str) -> anyhow::Result<Component> {
    let list = client
        .list_components(&ComponentQuery {
            kind: Some(kind),
            limit: Some(MAX_PAGE_LIMIT),
            ..ComponentQuery::default()
        })
        .await?;
    let id = name.parse::<i64>().ok();
    only_one(list.items, kind.as_str(), name, |c| {
        Some(c.id) == id || c.name.eq_ignore_ascii_case(name)
    })
}

fn component_row(kind: ComponentKind, c: &Component) -> Vec<String> {
    let mut row = vec![
        c.id.to_string(),
        if c.is_local {
            format!("{} (server)", c.name)
        } else {
            c.name.clone()
        },
        c.status.to_string(),
        c.version.clone().unwrap_or_else(|| "-".into()),
        time_cell(c.last_seen_at),
    ];
    match kind {
        ComponentKind::Collector => {
            row.push(c.target_count.unwrap_or(0).to_string());
            row.push(config_state(c).to_owned());
            row.push(c.outbox.map_or_else(
                || "-".to_owned(),
                |o| format!("{} ({} s)", o.batches, o.lag_s),
            ));
        }
        ComponentKind::Agent => row.push(c.node.clone().unwrap_or_else(|| "-".into())),
    }
    row.push(c.hostname.clone().unwrap_or_else(|| "-".into()));
    row
}

pub async fn components(
    session: &Session,
    kind: ComponentKind,
    command: ComponentsCommand,
) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        ComponentsCommand::List { status } => {
            let list = client
                .list_components(&ComponentQuery {
                    kind: Some(kind),
                    status,
                    limit: Some(MAX_PAGE_LIMIT),
                    ..ComponentQuery::default()
                })
                .await?;
            let rows = list.items.iter().map(|c| component_row(kind, c)).collect();
            let headers: &[&str] = match kind {
                ComponentKind::Collector => &[
                    "ID",
                    "NAME",
                    "STATUS",
                    "VERSION",
                    "LAST SEEN",
                    "TARGETS",
                    "CONFIG",
                    "OUTBOX",
                    "HOST",
                ],
                ComponentKind::Agent => &[
                    "ID",
                    "NAME",
                    "STATUS",
                    "VERSION",
                    "LAST SEEN",
                    "NODE",
                    "HOST",
                ],
            };
            session.print(&list, headers, rows)
        }
        ComponentsCommand::Approve {
            name,
            node,
            new_node,
        } => {
            let found = find(&client, kind, &name).await?;
            if kind != ComponentKind::Agent && (node.is_some() || new_node) {
                super::usage!("--node and --new-node are for agents");
            }
            let choice = ApproveRequest { node, new_node };
            let approved = match client.approve_agent(found.id, &choice).await {
                Err(error) if error.is(ErrorCode::NodeChoiceNeeded) => {
                    anyhow::bail!(
                        "{error}\n  plantwatch agents approve {name} --node NODE   (report for \
                         that node)\n  plantwatch agents approve {name} --new-node    (a node of \
                         its own)"
                    )
                }
                other => other?,
            };
            match approved.node {
                Some(node) if kind == ComponentKind::Agent => {
                    eprintln!(
                        "Approved agent {:?}; it reports for node {node:?}.",
                        approved.name
                    )
                }
                _ => eprintln!("Approved {kind} {:?}.", approved.name),
            }
            Ok(())
        }
        ComponentsCommand::Revoke { name, yes } => {
            let found = find(&client, kind, &name).await?;
            confirm(
                yes,
                &format!(
                    "Revoke {kind} {:?}? Its key stops working now and it must enroll again.",
                    found.name
                ),
            )?;
            client.revoke_component(found.id).await?;
            eprintln!("Revoked {kind} {:?}.", found.name);
            Ok(())
        }
        ComponentsCommand::Delete { name, yes } => {
            let found = find(&client, kind, &name).await?;
            confirm(yes, &format!("Delete {kind} {:?}?", found.name))?;
            client.delete_component(found.id).await?;
            eprintln!("Deleted {kind} {:?}.", found.name);
            Ok(())
        }
        ComponentsCommand::Receivers {
            name,
            traps,
            syslog,
        } => {
            if kind != ComponentKind::Collector {
                super::usage!("receivers are a collector's; agents have none");
            }
            let (traps, syslog) = (
                listens("traps", traps.as_ref())?,
                listens("syslog", syslog.as_ref())?,
            );
            let found = find(&client, kind, &name).await?;
            let mut receivers = client.receivers(found.id).await?;
            if traps.is_some() || syslog.is_some() {
                if let Some(traps) = traps {
                    receivers.traps = traps;
                }
                if let Some(syslog) = syslog {
                    receivers.syslog = syslog;
                }
                receivers = client.set_receivers(found.id, &receivers).await?;
                eprintln!(
                    "The collector {:?} takes its receivers with its next configuration (10 s).",
                    found.name
                );
            }
            let list = |l: &[Listen]| {
                if l.is_empty() {
                    "off".to_owned()
                } else {
                    l.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                }
            };
            let rows = vec![vec![
                found.name.clone(),
                list(&receivers.traps),
                list(&receivers.syslog),
            ]];
            session.print(&receivers, &["COLLECTOR", "TRAPS", "SYSLOG"], rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("12h"), Ok(43_200));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("2w"), Ok(1_209_600));
        for bad in ["", "0", "5y", "h", "-3d", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
