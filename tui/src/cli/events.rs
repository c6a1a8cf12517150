//! `plantwatch events list|tail`: the traps and syslog messages the collectors received.

use std::time::Duration;

use clap::{Args, Subcommand};
use plantwatch_shared::api::{Event, EventKind, EventQuery, EventSeverity, MAX_EVENT_PAGE};
use time::OffsetDateTime;

use super::Session;
use super::nodes::find;
use crate::cells::{parse_duration, time_cell};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Events, newest first.
    #[command(alias = "ls")]
    List {
        #[command(flatten)]
        filter: Filter,
        /// Received within this time (e.g. 1h, 7d).
        #[arg(long, value_parser = parse_duration, conflicts_with = "from")]
        since: Option<u64>,
        /// Received at or after (RFC 3339).
        #[arg(long, value_parser = crate::cells::parse_time)]
        from: Option<OffsetDateTime>,
        /// Received before (RFC 3339).
        #[arg(long, value_parser = crate::cells::parse_time)]
        to: Option<OffsetDateTime>,
        /// How many at most (1-1000).
        #[arg(long, short = 'n', default_value_t = 100)]
        limit: u32,
    },
    /// The latest events, oldest first; with -f, then every new one as it arrives (Ctrl+C
    /// stops).
    Tail {
        #[command(flatten)]
        filter: Filter,
        /// How many of the latest to show first.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: u32,
        /// Keep following.
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

/// What both list and tail filter on.
#[derive(Debug, Args)]
pub struct Filter {
    /// Only this node's (name or id).
    #[arg(long)]
    node: Option<String>,
    /// Only those of senders that are no node.
    #[arg(long, conflicts_with = "node")]
    unknown: bool,
    /// This severity or worse: emergency, alert, critical, error, warning, notice, info, debug.
    #[arg(long)]
    severity: Option<EventSeverity>,
    /// trap or syslog.
    #[arg(long)]
    kind: Option<EventKind>,
    /// Text in the message, the trap's name or OID, the program or the sender.
    #[arg(long, short = 'q')]
    query: Option<String>,
}

const HEADERS: &[&str] = &[
    "ID", "RECEIVED", "SEVERITY", "NODE", "KIND", "WHAT", "MESSAGE",
];

fn row(event: &Event) -> Vec<String> {
    let e = &event.event;
    vec![
        event.id.to_string(),
        time_cell(Some(e.received_at)),
        e.severity.to_string(),
        event.sender(),
        e.kind.to_string(),
        e.what(),
        e.message.replace(['\n', '\r'], " "),
    ]
}

impl Filter {
    async fn query(self, client: &plantwatch_shared::Client) -> anyhow::Result<EventQuery> {
        let node_id = match self.node {
            Some(node) => Some(find(client, &node).await?.id),
            None => None,
        };
        Ok(EventQuery {
            node_id,
            unknown: self.unknown.then_some(true),
            severity: self.severity,
            kind: self.kind,
            q: self.query,
            ..EventQuery::default()
        })
    }
}

pub async fn run(session: &Session, command: EventsCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        EventsCommand::List {
            filter,
            since,
            from,
            to,
            limit,
        } => {
            let mut query = filter.query(&client).await?;
            query.from =
                from.or_else(|| since.map(|s| OffsetDateTime::now_utc() - Duration::from_secs(s)));
            query.to = to;
            query.limit = Some(limit.clamp(1, MAX_EVENT_PAGE));
            let list = client.events(&query).await?;
            let rows = list.items.iter().map(row).collect();
            session.print(&list, HEADERS, rows)
        }
        EventsCommand::Tail {
            filter,
            lines,
            follow,
        } => {
            let mut query = filter.query(&client).await?;
            query.limit = Some(lines.clamp(1, MAX_EVENT_PAGE));
            let mut latest = client.events(&query).await?.items;
            latest.reverse();
            let mut last_id = latest.last().map_or(0, |e| e.id);
            if !follow {
                let rows = latest.iter().map(row).collect();
                return session.print(&latest, HEADERS, rows);
            }
            // Following: one table line (or JSON document) per event, as they come.
            let print = |events: &[Event]| -> anyhow::Result<()> {
                for event in events {
                    match session.format {
                        super::output::Format::Json => {
                            println!("{}", serde_json::to_string(event)?);
                        }
                        _ => println!("{}", row(event).join("  ")),
                    }
                }
                Ok(())
            };
            print(&latest)?;
            query.limit = Some(MAX_EVENT_PAGE);
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                query.after_id = Some(last_id);
                match client.events(&query).await {
                    Ok(page) => {
                        if let Some(last) = page.items.last() {
                            last_id = last.id;
                        }
                        print(&page.items)?;
                    }
                    // The server restarting: keep following.
                    Err(error) => eprintln!("plantwatch: {error}; retrying"),
                }
            }
        }
    }
}
