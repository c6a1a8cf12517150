//! `plantwatch checks list|add|remove` (a node's service checks) and `plantwatch certs list`
//! (the certificates the `tls` checks found).

use clap::Subcommand;
use plantwatch_shared::api::{
    CertificateFinding, CertificateQuery, Check, CheckSpec, MAX_CHECK_CA_BYTES,
};
use time::OffsetDateTime;

use super::Session;
use super::nodes::find;
use crate::cells::{parse_duration, time_cell};

#[derive(Debug, Subcommand)]
pub enum ChecksCommand {
    /// The checks of a node.
    List {
        /// Node name or id.
        node: String,
    },
    /// Add checks to a node (operators): tls:443, tls:8443@hmi.plant.local, http:80/health,
    /// https:8443/login, tcp:502, dns:historian.plant.local[=10.0.0.5] (the node is the name
    /// server asked; dns:5353:plant.local/MX for another port and record type).
    Add {
        /// Node name or id.
        node: String,
        /// One or more checks in the short form.
        #[arg(required = true, value_parser = parse_check)]
        checks: Vec<CheckSpec>,
        #[command(flatten)]
        settings: CheckSettings,
    },
    /// Change the settings of a check (operators), by its id: what the short form does not say.
    Set {
        /// Node name or id.
        node: String,
        check_id: i64,
        #[command(flatten)]
        settings: CheckSettings,
        /// tls: trust the system's roots only again.
        #[arg(long, conflicts_with = "ca")]
        no_ca: bool,
    },
    /// Remove a check from a node (operators), by its id (`checks list` shows it).
    Remove {
        /// Node name or id.
        node: String,
        check_id: i64,
    },
}

/// The settings of a check beyond its short form.
#[derive(Debug, clap::Args)]
pub struct CheckSettings {
    /// Seconds between runs (default: 300 for tls, 60 for the others).
    #[arg(long)]
    interval: Option<u32>,
    /// Milliseconds one run may take (default 10000).
    #[arg(long)]
    timeout_ms: Option<u32>,
    /// http/https: the status expected (default: any 2xx or 3xx).
    #[arg(long)]
    expect_status: Option<u16>,
    /// http/https: text the page must contain.
    #[arg(long)]
    expect_text: Option<String>,
    /// tls: a PEM file of the plant's CA, trusted besides the system's roots (trust is then
    /// required: a certificate it does not vouch for is invalid).
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// tls: a certificate that chains to no trusted root is invalid (cert_invalid).
    #[arg(long)]
    require_trust: bool,
}

impl CheckSettings {
    /// `spec` with the settings given (the CA file read); the others stay.
    fn apply(&self, spec: &mut CheckSpec, ca_pem: Option<&String>) {
        spec.interval_s = self.interval.or(spec.interval_s);
        spec.timeout_ms = self.timeout_ms.or(spec.timeout_ms);
        spec.expect_status = self.expect_status.or(spec.expect_status);
        spec.expect_text = self.expect_text.clone().or(spec.expect_text.take());
        spec.ca_pem = ca_pem.cloned().or(spec.ca_pem.take());
        if self.require_trust {
            spec.require_trust = Some(true);
        }
    }

    fn ca_pem(&self) -> anyhow::Result<Option<String>> {
        self.ca.as_deref().map(read_ca).transpose()
    }
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Every certificate the tls checks found, soonest expiry first.
    List {
        /// Only those expiring within this time (e.g. 30d; expired ones included).
        #[arg(long, value_parser = parse_days)]
        expiring: Option<i64>,
        /// Only those of this node (name or id).
        #[arg(long)]
        node: Option<String>,
    },
}

pub(super) fn parse_check(text: &str) -> Result<CheckSpec, String> {
    text.parse()
}

fn parse_days(text: &str) -> Result<i64, String> {
    let secs = parse_duration(text)?;
    Ok(i64::try_from(secs.div_ceil(86_400)).unwrap_or(i64::MAX))
}

const CHECK_HEADERS: &[&str] = &["ID", "CHECK", "KIND", "PORT", "EVERY", "TIMEOUT", "EXPECT"];

fn check_row(check: &Check) -> Vec<String> {
    let spec = &check.spec;
    let mut expect = Vec::new();
    if let Some(status) = spec.expect_status {
        expect.push(format!("status {status}"));
    }
    if let Some(text) = &spec.expect_text {
        expect.push(format!("text {text:?}"));
    }
    if let Some(answer) = &spec.expect_answer {
        expect.push(format!("answer {answer}"));
    }
    if spec.ca_pem.is_some() {
        expect.push("plant CA".into());
    }
    if spec.require_trust() {
        expect.push("trusted".into());
    }
    vec![
        check.id.to_string(),
        spec.to_string(),
        spec.kind.to_string(),
        spec.port().to_string(),
        format!("{} s", spec.interval_s()),
        format!("{} ms", spec.timeout_ms()),
        expect.join(", "),
    ]
}

const CERT_HEADERS: &[&str] = &[
    "NODE",
    "PORT",
    "NAME",
    "DAYS LEFT",
    "EXPIRES",
    "ISSUER",
    "TRUSTED",
    "NAME OK",
    "TLS",
    "CHECKED",
];

fn cert_row(finding: &CertificateFinding, now: OffsetDateTime) -> Vec<String> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let got = finding.error.is_none();
    vec![
        finding.node.clone(),
        finding.port.to_string(),
        finding.server_name.clone(),
        finding
            .days_left(now)
            .map_or_else(|| "-".to_owned(), |d| d.to_string()),
        time_cell(finding.not_after),
        if got {
            finding.issuer.clone()
        } else {
            finding.error.clone().unwrap_or_default()
        },
        if got {
            yes_no(finding.trusted)
        } else {
            "-".into()
        },
        if got {
            yes_no(finding.name_matches)
        } else {
            "-".into()
        },
        finding.tls_version.clone().unwrap_or_else(|| "-".into()),
        time_cell(Some(finding.checked_at)),
    ]
}

pub async fn checks(session: &Session, command: ChecksCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        ChecksCommand::List { node } => {
            let node = find(&client, &node).await?;
            let list = client.checks(node.id).await?;
            let rows = list.items.iter().map(check_row).collect();
            session.print(&list, CHECK_HEADERS, rows)
        }
        ChecksCommand::Add {
            node,
            checks,
            settings,
        } => {
            let ca_pem = settings.ca_pem()?;
            let node = find(&client, &node).await?;
            let mut added = Vec::new();
            for mut spec in checks {
                settings.apply(&mut spec, ca_pem.as_ref());
                added.push(client.add_check(node.id, &spec).await?);
            }
            let rows = added.iter().map(check_row).collect();
            session.print(&added, CHECK_HEADERS, rows)
        }
        ChecksCommand::Set {
            node,
            check_id,
            settings,
            no_ca,
        } => {
            let ca_pem = settings.ca_pem()?;
            let node = find(&client, &node).await?;
            let list = client.checks(node.id).await?;
            let Some(check) = list.items.into_iter().find(|c| c.id == check_id) else {
                anyhow::bail!(
                    "{} has no check {check_id} (`plantwatch checks list {}` shows its ids)",
                    node.name,
                    node.name
                );
            };
            let mut spec = check.spec;
            settings.apply(&mut spec, ca_pem.as_ref());
            if no_ca {
                spec.ca_pem = None;
            }
            let changed = client.replace_check(node.id, check_id, &spec).await?;
            session.print(&changed, CHECK_HEADERS, vec![check_row(&changed)])
        }
        ChecksCommand::Remove { node, check_id } => {
            let node = find(&client, &node).await?;
            client.remove_check(node.id, check_id).await?;
            eprintln!("Removed check {check_id} from {}.", node.name);
            Ok(())
        }
    }
}

/// The CA file given with `--ca`, read whole unless it is larger than a check may carry.
fn read_ca(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read the CA file {}", path.display()))?
        .len();
    if size > MAX_CHECK_CA_BYTES as u64 {
        anyhow::bail!(
            "{} is {size} bytes; a check's CA is at most {} KiB",
            path.display(),
            MAX_CHECK_CA_BYTES / 1024
        );
    }
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the CA file {} as text", path.display()))
}

pub async fn certs(session: &Session, command: CertsCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        CertsCommand::List { expiring, node } => {
            let node_id = match node {
                Some(node) => Some(find(&client, &node).await?.id),
                None => None,
            };
            let list = client
                .certificates(&CertificateQuery {
                    expiring_days: expiring,
                    node_id,
                })
                .await?;
            let now = OffsetDateTime::now_utc();
            let rows = list.items.iter().map(|f| cert_row(f, now)).collect();
            session.print(&list, CERT_HEADERS, rows)
        }
    }
}
