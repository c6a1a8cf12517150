//! `plantwatch nodes list|get|create|update|delete|import|export`.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use plantwatch_shared::Client;
use plantwatch_shared::api::{
    BulkNodesRequest, CheckSpec, ExportFormat, HostWatch, ImportQuery, ImportReport,
    MAX_PAGE_LIMIT, Node, NodeHost, NodeQuery, NodeSpec, NodeStatus, NodeType, UpdateNodeRequest,
};

use plantwatch_shared::rules::split_list;

use super::output::Format;
use super::usage;
use super::{Partial, Session, confirm};
use crate::bulk::{self, BulkEdit, Condition};
use crate::cells::time_cell;

/// Largest file `nodes import` sends (the server's limit).
const MAX_IMPORT_BYTES: u64 = 50 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// List nodes, filtered and sorted.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Show one node.
    Get {
        /// Node name or id.
        node: String,
    },
    /// A vCenter (or ESXi) node's hosts, VMs and datastores as its last poll found them, with
    /// their state and node; hosts and VMs that left the inventory last, as `gone`.
    Vsphere {
        /// Node name or id.
        node: String,
    },
    /// A server's machine as its agent reported it (OS, build, hardware, serial, hotfixes) and
    /// what the node must run: required Windows services, watched processes.
    Host {
        /// Node name or id.
        node: String,
    },
    /// Set what an agent's node must run: Windows services whose stop is a critical alert
    /// (`windows_service_stopped`), processes counted by name (`process_missing` when none
    /// runs). The lists given replace the node's; `--clear` empties both.
    Watch {
        /// Node name or id.
        node: String,
        /// A Windows service (its service name, e.g. `Spooler`); repeat for more.
        #[arg(long = "service", value_name = "NAME")]
        services: Vec<String>,
        /// A process name (`wincc.exe` or `wincc`); repeat for more.
        #[arg(long = "process", value_name = "NAME")]
        processes: Vec<String>,
        /// Keep the list not given instead of emptying it.
        #[arg(long)]
        keep: bool,
        /// Empty both lists.
        #[arg(long, conflicts_with_all = ["services", "processes", "keep"])]
        clear: bool,
    },
    /// Add a node.
    Create(CreateArgs),
    /// Change a node, or every node `--where` chooses in one transaction after a preview.
    /// Options not given stay as they are; an empty value ("") clears one.
    Update(UpdateArgs),
    /// Delete a node, or every node `--where` chooses in one transaction after a preview.
    #[command(alias = "rm")]
    Delete {
        /// Node name or id.
        #[arg(required_unless_present = "conditions")]
        node: Option<String>,
        /// Every node with KEY=VALUE (name, address, tag, type, status, collector, template,
        /// parent; `*` matches anything); repeat: all must hold.
        #[arg(long = "where", value_name = "KEY=VALUE", conflicts_with = "node")]
        conditions: Vec<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Give a node a further parent (a second uplink): its reachability alerts are then
    /// suppressed only when its parent and every further parent are down.
    AddParent {
        /// Node name or id.
        node: String,
        /// The further parent, by name or id.
        parent: String,
    },
    /// Take a further parent away from a node.
    RemoveParent { node: String, parent: String },
    /// Import nodes from a CSV or JSON file: every row is checked, and nothing is written
    /// unless all rows are valid. Exit code 3 when rows were rejected.
    Import(ImportArgs),
    /// Export every node as CSV (or JSON with --output json), in the columns import takes.
    Export {
        /// Write to this file instead of standard output.
        #[arg(long, short = 'f', value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only nodes of this type (network, server, storage, ups, plc, hmi, printer, other,
    /// vcenter, esxi).
    #[arg(long = "type", value_name = "TYPE")]
    pub node_type: Option<NodeType>,
    /// Only nodes with this status (discovering, healthy, warning, critical, offline,
    /// maintenance).
    #[arg(long)]
    pub status: Option<NodeStatus>,
    /// Only nodes with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only nodes polled by this collector.
    #[arg(long)]
    pub collector: Option<String>,
    /// Only nodes whose name or address contains this text.
    #[arg(long, short = 's')]
    pub search: Option<String>,
    /// name, address, type, status, collector, created_at or updated_at; prefix - to reverse.
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// At most this many nodes.
    #[arg(long, default_value_t = MAX_PAGE_LIMIT)]
    pub limit: u32,
    /// Skip this many nodes.
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Unique name.
    pub name: String,
    /// IPv4 or IPv6 address, or DNS name.
    #[arg(long, short = 'a')]
    pub address: String,
    /// network, server, storage, ups, plc, hmi, printer, other, vcenter or esxi (polled
    /// through the vSphere API with a vsphere credential) [default: other].
    #[arg(long = "type", short = 't', value_name = "TYPE")]
    pub node_type: Option<NodeType>,
    /// A tag (repeat for several).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Collector that polls it [default: the server's own].
    #[arg(long)]
    pub collector: Option<String>,
    /// Device template.
    #[arg(long)]
    pub template: Option<String>,
    /// Credential to try, by name (repeat for several, in priority order).
    #[arg(long = "credential", value_name = "NAME")]
    pub credentials: Vec<String>,
    /// The node it hangs off (a switch or collector).
    #[arg(long)]
    pub parent: Option<String>,
    /// Polling interval override in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<u32>,
    /// The Modbus unit id it answers to (0–255; a device behind a gateway has its own).
    #[arg(long, value_name = "ID")]
    pub modbus_unit: Option<u8>,
    #[arg(long)]
    pub notes: Option<String>,
    /// A service check in the short form: tls:443, http:80/health, tcp:502,
    /// dns:historian.plant.local (repeat for several; `checks add` sets more of their settings).
    #[arg(long = "check", value_name = "CHECK", value_parser = super::checks::parse_check)]
    pub checks: Vec<CheckSpec>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Node name or id.
    #[arg(required_unless_present = "conditions")]
    pub node: Option<String>,
    /// Every node with KEY=VALUE (name, address, tag, type, status, collector, template,
    /// parent; `*` matches anything); repeat: all must hold.
    #[arg(long = "where", value_name = "KEY=VALUE", conflicts_with = "node")]
    pub conditions: Vec<String>,
    /// FIELD=VALUE to set (interval_s, template, collector, parent, tags, credentials, type,
    /// notes, modbus_unit); repeat for several.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// Add this tag (repeat for several).
    #[arg(long, value_name = "TAG")]
    pub add_tag: Vec<String>,
    /// Remove this tag (repeat for several).
    #[arg(long, value_name = "TAG")]
    pub remove_tag: Vec<String>,
    /// Show what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation of a change to several nodes.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, short = 'a')]
    pub address: Option<String>,
    #[arg(long = "type", short = 't', value_name = "TYPE")]
    pub node_type: Option<NodeType>,
    /// Replace the tags, `;`-separated ("" removes them all).
    #[arg(long, value_name = "TAG;TAG")]
    pub tags: Option<String>,
    #[arg(long)]
    pub collector: Option<String>,
    #[arg(long)]
    pub template: Option<String>,
    /// Replace the credentials, `;`-separated in priority order.
    #[arg(long, value_name = "NAME;NAME")]
    pub credentials: Option<String>,
    #[arg(long)]
    pub parent: Option<String>,
    /// Polling interval override in seconds ("" to use the template's).
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<String>,
    /// The Modbus unit id (0–255; "" to use the profile's).
    #[arg(long, value_name = "ID")]
    pub modbus_unit: Option<String>,
    #[arg(long)]
    pub notes: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// CSV (header: name,address,type,tags,collector,template,credentials,parent,interval_s,
    /// notes,checks; only name and address are required) or JSON file; `-` reads standard
    /// input. A checks cell (tls:443;http:80/health) makes the node's checks these.
    pub file: PathBuf,
    /// Show the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Update nodes whose name exists instead of rejecting those rows.
    #[arg(long)]
    pub upsert: bool,
    /// Apply the valid rows even when others are rejected.
    #[arg(long)]
    pub partial: bool,
}

/// A node by name (case-insensitive) or id.
pub async fn find(client: &Client, node: &str) -> anyhow::Result<Node> {
    if let Ok(id) = node.parse::<i64>() {
        return Ok(client.get_node(id).await?);
    }
    Ok(client.node_by_name(node).await?)
}

const HEADERS: &[&str] = &[
    "ID",
    "NAME",
    "ADDRESS",
    "TYPE",
    "STATUS",
    "COLLECTOR",
    "TAGS",
];

fn row(node: &Node) -> Vec<String> {
    vec![
        node.id.to_string(),
        node.name.clone(),
        node.address.clone(),
        node.node_type.to_string(),
        node.status.to_string(),
        node.collector.clone().unwrap_or_else(|| "-".into()),
        node.tags.join(";"),
    ]
}

fn print_node(session: &Session, node: &Node) -> anyhow::Result<()> {
    if session.format != Format::Table {
        return session.print(node, HEADERS, vec![row(node)]);
    }
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    let credentials: Vec<String> = node
        .credentials
        .iter()
        .map(|c| format!("{} ({})", c.name, c.kind))
        .collect();
    let fields = [
        ("id", node.id.to_string()),
        ("name", node.name.clone()),
        ("address", node.address.clone()),
        ("type", node.node_type.to_string()),
        ("status", node.status.to_string()),
        ("tags", node.tags.join(";")),
        ("collector", or_dash(node.collector.clone())),
        ("template", or_dash(node.template.clone())),
        ("credentials", credentials.join(", ")),
        ("parent", or_dash(node.parent.clone())),
        (
            "interval_s",
            or_dash(node.interval_s.map(|s| s.to_string())),
        ),
        (
            "modbus_unit",
            or_dash(node.modbus_unit.map(|u| u.to_string())),
        ),
        ("notes", or_dash(node.notes.clone())),
        ("created", time_cell(Some(node.created_at))),
        ("updated", time_cell(Some(node.updated_at))),
    ];
    let mut out = String::new();
    for (key, value) in fields {
        out.push_str(&format!("{key:<12} {value}\n"));
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

fn print_host(session: &Session, node: &Node, host: &NodeHost) -> anyhow::Result<()> {
    let list = |names: &[String]| {
        if names.is_empty() {
            "-".to_owned()
        } else {
            names.join(", ")
        }
    };
    let mut fields = vec![("node", node.name.clone())];
    match &host.inventory {
        Some(inventory) => {
            for (key, value) in inventory.texts() {
                if let Some(value) = value {
                    fields.push((key, value.to_owned()));
                }
            }
            if let Some(n) = inventory.hotfixes {
                fields.push(("hotfixes", n.to_string()));
            }
            if let Some(n) = inventory.cpu_cores {
                fields.push(("cpu_cores", n.to_string()));
            }
            if let Some(bytes) = inventory.memory_bytes {
                fields.push((
                    "memory",
                    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64),
                ));
            }
            fields.push(("reported", time_cell(host.inventory_at)));
        }
        None => fields.push(("inventory", "none yet (the node's agent sends it)".into())),
    }
    fields.push(("services", list(&host.watch.services)));
    fields.push(("processes", list(&host.watch.processes)));
    let rows = fields
        .into_iter()
        .map(|(key, value)| vec![key.to_owned(), value])
        .collect();
    session.print(host, &["FIELD", "VALUE"], rows)
}

/// `""` means "clear"; anything else is the new value.
fn nullable(value: Option<String>) -> Option<Option<String>> {
    value.map(|v| Some(v).filter(|v| !v.trim().is_empty()))
}

/// The nodes every `--where` condition holds for; none is an error.
async fn chosen(client: &Client, conditions: &[String]) -> anyhow::Result<Vec<Node>> {
    let mut parsed = Vec::new();
    for text in conditions {
        match Condition::parse(text) {
            Ok(condition) => parsed.push(condition),
            Err(problem) => usage!("--where {problem}"),
        }
    }
    let all = crate::views::nodes::all_nodes(client).await?;
    let chosen: Vec<Node> = all
        .items
        .into_iter()
        .filter(|n| bulk::selected(n, &parsed))
        .collect();
    if chosen.is_empty() {
        bail!("no node has {}", conditions.join(" and "));
    }
    Ok(chosen)
}

/// `nodes update --where …` (or one node with `--set`/`--add-tag`): the plan, a preview, one
/// request.
async fn bulk_update(
    session: &Session,
    client: &Client,
    args: &UpdateArgs,
    request: UpdateNodeRequest,
) -> anyhow::Result<()> {
    if !args.conditions.is_empty() && (request.name.is_some() || request.address.is_some()) {
        usage!("--name and --address are one node's own: not with --where");
    }
    let mut edit = BulkEdit {
        set: request,
        add_tags: args.add_tag.clone(),
        remove_tags: args.remove_tag.clone(),
    };
    for field in &args.set {
        if let Err(problem) = edit.set_field(field) {
            usage!("--set {problem}");
        }
    }
    if edit.is_empty() {
        usage!("nothing to change: give --set FIELD=VALUE, --add-tag or another option");
    }
    let chosen = match &args.node {
        Some(node) => vec![find(client, node).await?],
        None => chosen(client, &args.conditions).await?,
    };
    let (updates, changes) = bulk::plan(&chosen, &edit);
    if updates.is_empty() {
        eprintln!(
            "Nothing to change: the {} node(s) chosen already have it.",
            chosen.len()
        );
        return Ok(());
    }
    let rows = changes
        .iter()
        .map(|c| {
            vec![
                c.node.clone(),
                c.field.to_owned(),
                c.before.clone(),
                c.after.clone(),
            ]
        })
        .collect();
    session.print(&changes, &["NODE", "FIELD", "BEFORE", "AFTER"], rows)?;
    if args.dry_run {
        eprintln!(
            "Dry run: {} of {} node(s) would change.",
            updates.len(),
            chosen.len()
        );
        return Ok(());
    }
    if updates.len() > 1 {
        confirm(
            args.yes,
            &format!("Change these {} node(s)?", updates.len()),
        )?;
    }
    let answer = client
        .bulk_nodes(&BulkNodesRequest {
            update: updates,
            ..BulkNodesRequest::default()
        })
        .await?;
    eprintln!(
        "Changed {} node(s) in one transaction.",
        answer.updated.len()
    );
    Ok(())
}

fn update_request(args: &UpdateArgs) -> anyhow::Result<UpdateNodeRequest> {
    let interval_s = match args.interval.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(text) => match text.parse::<u32>() {
            Ok(seconds) => Some(Some(seconds)),
            Err(_) => usage!("--interval {text:?} is not a whole number of seconds"),
        },
    };
    let modbus_unit = match args.modbus_unit.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(text) => match text.parse::<u8>() {
            Ok(unit) => Some(Some(unit)),
            Err(_) => usage!("--modbus-unit {text:?} is not a unit id (0 to 255)"),
        },
    };
    let request = UpdateNodeRequest {
        name: args.name.clone(),
        address: args.address.clone(),
        node_type: args.node_type,
        tags: args.tags.as_deref().map(split_list),
        collector: nullable(args.collector.clone()),
        template: nullable(args.template.clone()),
        credentials: args.credentials.as_deref().map(split_list),
        parent: nullable(args.parent.clone()),
        interval_s,
        modbus_unit,
        notes: nullable(args.notes.clone()),
    };
    check_values(
        request.name.as_deref(),
        request.address.as_deref(),
        request.tags.as_deref().unwrap_or_default(),
        request.interval_s.flatten(),
    )?;
    Ok(request)
}

/// The argument values the client can judge itself: a bad one is a usage error (exit 2)
/// before anything is sent.
fn check_values(
    name: Option<&str>,
    address: Option<&str>,
    tags: &[String],
    interval_s: Option<u32>,
) -> anyhow::Result<()> {
    use plantwatch_shared::rules::{
        MAX_NODE_NAME_LEN, address_problem, interval_problem, name_problem, tag_problem,
    };
    if let Some(problem) = name.and_then(|n| name_problem(n, MAX_NODE_NAME_LEN)) {
        usage!("name: {problem}");
    }
    if let Some(problem) = address.and_then(address_problem) {
        usage!("--address: {problem}");
    }
    if let Some(problem) = tags.iter().find_map(|t| tag_problem(t)) {
        usage!("--tag: {problem}");
    }
    if let Some(problem) = interval_s.and_then(interval_problem) {
        usage!("--interval: {problem}");
    }
    Ok(())
}

fn read_import(path: &Path) -> anyhow::Result<(Vec<u8>, bool)> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(MAX_IMPORT_BYTES + 1)
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
    } else {
        let size = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        if size > MAX_IMPORT_BYTES {
            bail!(
                "{} is {} MB; an import takes at most {} MB: split it",
                path.display(),
                size / (1024 * 1024),
                MAX_IMPORT_BYTES / (1024 * 1024)
            );
        }
        bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    }
    if bytes.len() as u64 > MAX_IMPORT_BYTES {
        bail!(
            "the import is larger than {} MB: split it",
            MAX_IMPORT_BYTES / (1024 * 1024)
        );
    }
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    Ok((bytes, json))
}

const PLAN_HEADERS: &[&str] = &["ROW", "NAME", "OUTCOME", "COLUMN", "REASON"];

fn plan_rows(report: &ImportReport) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for row in &report.rows {
        let base = |column: String, reason: String| {
            vec![
                row.row.to_string(),
                row.name.clone().unwrap_or_default(),
                row.outcome.to_string(),
                column,
                reason,
            ]
        };
        if row.errors.is_empty() {
            rows.push(base(String::new(), String::new()));
        }
        for error in &row.errors {
            rows.push(base(
                error.column.clone().unwrap_or_default(),
                error.reason.clone(),
            ));
        }
    }
    rows
}

fn summary(report: &ImportReport) -> String {
    let s = report.summary;
    let what = if report.applied {
        "applied"
    } else if report.dry_run {
        "dry run, nothing written"
    } else {
        "nothing was applied"
    };
    format!(
        "{} rows: {} create, {} update, {} unchanged, {} rejected ({what}).",
        report.rows.len(),
        s.create,
        s.update,
        s.unchanged,
        s.error
    )
}

pub async fn run(session: &Session, command: NodesCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        NodesCommand::List(args) => {
            let query = NodeQuery {
                status: args.status,
                node_type: args.node_type,
                tag: args.tag,
                collector: args.collector,
                q: args.search,
                sort: args.sort,
                limit: Some(args.limit),
                offset: Some(args.offset),
            };
            let page = client.list_nodes(&query).await?;
            let rows = page.items.iter().map(row).collect();
            session.print(&page, HEADERS, rows)?;
            if session.format == Format::Table && page.total > page.items.len() as u64 {
                eprintln!(
                    "Showing {} of {} nodes; use --offset for more.",
                    page.items.len(),
                    page.total
                );
            }
            Ok(())
        }
        NodesCommand::Get { node } => print_node(session, &find(&client, &node).await?),
        NodesCommand::Host { node } => {
            let node = find(&client, &node).await?;
            print_host(session, &node, &client.node_host(node.id).await?)
        }
        NodesCommand::Watch {
            node,
            services,
            processes,
            keep,
            clear,
        } => {
            let node = find(&client, &node).await?;
            if !clear && services.is_empty() && processes.is_empty() {
                anyhow::bail!("give --service or --process names (or --clear to empty both)");
            }
            let mut watch = HostWatch {
                services,
                processes,
            };
            if keep {
                let now = client.node_host(node.id).await?.watch;
                if watch.services.is_empty() {
                    watch.services = now.services;
                }
                if watch.processes.is_empty() {
                    watch.processes = now.processes;
                }
            }
            let host = client.set_node_host(node.id, &watch).await?;
            print_host(session, &node, &host)
        }
        NodesCommand::Vsphere { node } => {
            let node = find(&client, &node).await?;
            if !node.node_type.is_vsphere() {
                anyhow::bail!(
                    "{} is a {} node; only vcenter and esxi nodes are polled through vSphere",
                    node.name,
                    node.node_type
                );
            }
            if !node
                .credentials
                .iter()
                .any(|c| c.kind == plantwatch_shared::api::CredentialKind::Vsphere)
            {
                anyhow::bail!(
                    "{} has no vsphere credential, so it is not polled: \
                     plantwatch credentials create NAME -k vsphere --username USER, then \
                     plantwatch nodes update {} --credentials NAME",
                    node.name,
                    node.name
                );
            }
            let list = client.vsphere_objects(node.id).await?;
            if list.items.is_empty() && session.format == Format::Table {
                // Said instead of an empty table.
                println!(
                    "{} has sent no inventory yet (its collector polls it every {} s; see `plantwatch alerts list --node {}`)",
                    node.name,
                    node.interval_s
                        .unwrap_or(plantwatch_shared::api::vsphere::DEFAULT_VSPHERE_INTERVAL_S),
                    node.name
                );
                return Ok(());
            }
            let rows = list
                .items
                .iter()
                .map(|o| {
                    vec![
                        o.kind.clone(),
                        o.name.clone(),
                        o.state.clone(),
                        o.detail.clone(),
                        o.moref.clone(),
                        o.node_id.map_or_else(|| "-".into(), |id| id.to_string()),
                    ]
                })
                .collect();
            session.print(
                &list,
                &["KIND", "NAME", "STATE", "DETAIL", "MOREF", "NODE"],
                rows,
            )
        }
        NodesCommand::Create(args) => {
            check_values(
                Some(&args.name),
                Some(&args.address),
                &args.tags,
                args.interval,
            )?;
            let spec = NodeSpec {
                name: args.name,
                address: args.address,
                node_type: args.node_type,
                tags: args.tags,
                collector: args.collector,
                template: args.template,
                credentials: args.credentials,
                parent: args.parent,
                interval_s: args.interval,
                modbus_unit: args.modbus_unit,
                notes: args.notes,
                checks: (!args.checks.is_empty()).then_some(args.checks),
            };
            print_node(session, &client.create_node(&spec).await?)
        }
        NodesCommand::Update(args) => {
            let request = update_request(&args)?;
            let many = !(args.conditions.is_empty()
                && args.set.is_empty()
                && args.add_tag.is_empty()
                && args.remove_tag.is_empty());
            if many {
                return bulk_update(session, &client, &args, request).await;
            }
            if request.is_empty() {
                usage!("nothing to change: give at least one option");
            }
            let target = find(&client, args.node.as_deref().unwrap_or_default()).await?;
            print_node(session, &client.update_node(target.id, &request).await?)
        }
        NodesCommand::Delete {
            node,
            conditions,
            yes,
        } => {
            let Some(node) = node else {
                let chosen = chosen(&client, &conditions).await?;
                let names: Vec<&str> = chosen.iter().map(|n| n.name.as_str()).collect();
                eprintln!("{} node(s) match: {}", names.len(), names.join(", "));
                confirm(
                    yes,
                    &format!(
                        "Delete these {} node(s)? Their collectors stop polling them; this \
                         cannot be undone.",
                        names.len()
                    ),
                )?;
                let request = BulkNodesRequest {
                    delete: chosen.iter().map(|n| n.id).collect(),
                    ..BulkNodesRequest::default()
                };
                let answer = client.bulk_nodes(&request).await?;
                eprintln!(
                    "Deleted {} node(s) in one transaction.",
                    answer.deleted.len()
                );
                return Ok(());
            };
            let target = find(&client, &node).await?;
            confirm(
                yes,
                &format!("Delete node {} ({})?", target.name, target.address),
            )?;
            client.delete_node(target.id).await?;
            println!("Deleted node {}.", target.name);
            Ok(())
        }
        NodesCommand::AddParent { node, parent } => {
            let (node, parent) = (find(&client, &node).await?, find(&client, &parent).await?);
            let node = client.add_parent(node.id, parent.id).await?;
            eprintln!(
                "{} now hangs off {}.",
                node.name,
                std::iter::once(node.parent.clone().unwrap_or_default())
                    .chain(node.other_parents.iter().cloned())
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join(" and ")
            );
            Ok(())
        }
        NodesCommand::RemoveParent { node, parent } => {
            let (node, parent) = (find(&client, &node).await?, find(&client, &parent).await?);
            client.remove_parent(node.id, parent.id).await?;
            eprintln!("{} is no longer a parent of {}.", parent.name, node.name);
            Ok(())
        }
        NodesCommand::Import(args) => {
            let (bytes, json) = read_import(&args.file)?;
            let query = ImportQuery {
                dry_run: args.dry_run,
                upsert: args.upsert,
                partial: args.partial,
            };
            if std::io::stderr().is_terminal() {
                eprintln!(
                    "Checking {} ({} KiB) on the server…",
                    args.file.display(),
                    bytes.len().div_ceil(1024)
                );
            }
            let report = client.import_nodes(bytes, json, &query).await?;
            let refused = report.summary.error > 0 && !report.applied && !report.dry_run;
            if refused && session.format == Format::Table {
                // The problems, and only them: the good rows are a count.
                let problems = ImportReport {
                    rows: report
                        .rows
                        .iter()
                        .filter(|r| !r.errors.is_empty())
                        .cloned()
                        .collect(),
                    ..report.clone()
                };
                session.print(&problems, PLAN_HEADERS, plan_rows(&problems))?;
            } else {
                session.print(&report, PLAN_HEADERS, plan_rows(&report))?;
            }
            let line = summary(&report);
            if report.summary.error > 0 {
                if refused {
                    let good = report.rows.len() as u64 - report.summary.error;
                    return Err(Partial(format!(
                        "{} row(s) with problems (above); {good} good row(s) not written: \
                         fix the file, or import with --partial to write the good ones.",
                        report.summary.error
                    ))
                    .into());
                }
                return Err(Partial(line).into());
            }
            eprintln!("{line}");
            Ok(())
        }
        NodesCommand::Export { file } => {
            let format = match session.format {
                Format::Json => ExportFormat::Json,
                Format::Table | Format::Csv => ExportFormat::Csv,
            };
            let bytes = client.export_nodes(format).await?;
            match file {
                Some(path) => {
                    std::fs::write(&path, &bytes)
                        .with_context(|| format!("writing {}", path.display()))?;
                    let rows = bytes.iter().filter(|b| **b == b'\n').count();
                    eprintln!("Wrote {} ({rows} lines).", path.display());
                }
                None => std::io::stdout().lock().write_all(&bytes)?,
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantwatch_shared::api::ImportOutcome;

    #[test]
    fn empty_values_clear_and_lists_split_on_semicolons() {
        let args = UpdateArgs {
            node: Some("x".into()),
            conditions: vec![],
            set: vec![],
            add_tag: vec![],
            remove_tag: vec![],
            dry_run: false,
            yes: false,
            name: None,
            address: None,
            node_type: None,
            tags: Some("a; b;".into()),
            collector: None,
            template: None,
            credentials: None,
            parent: Some(String::new()),
            interval: Some("30".into()),
            modbus_unit: None,
            notes: None,
        };
        let request = update_request(&args).unwrap();
        assert_eq!(request.tags, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(request.parent, Some(None));
        assert_eq!(request.interval_s, Some(Some(30)));
    }

    #[test]
    fn the_plan_lists_one_line_per_problem() {
        let report = ImportReport {
            applied: false,
            dry_run: false,
            summary: Default::default(),
            rows: vec![plantwatch_shared::api::ImportRow {
                row: 7,
                name: Some("x".into()),
                outcome: ImportOutcome::Error,
                errors: vec![
                    plantwatch_shared::api::ImportProblem {
                        column: Some("address".into()),
                        reason: "bad".into(),
                    },
                    plantwatch_shared::api::ImportProblem {
                        column: None,
                        reason: "worse".into(),
                    },
                ],
            }],
        };
        let rows = plan_rows(&report);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], ["7", "x", "error", "address", "bad"]);
    }
}
