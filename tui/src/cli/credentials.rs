//! `plantwatch credentials list|get|create|update|delete|attach|detach`. Secrets are read from
//! a prompt without echo, or from standard input with `--secrets-stdin`; never from argv.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use plantwatch_shared::api::{
    AuthProtocol, CreateCredentialRequest, Credential, CredentialKind, CredentialParams,
    CredentialQuery, MAX_PAGE_LIMIT, PrivProtocol, UpdateCredentialRequest,
};
use plantwatch_shared::{Client, Secret};

use super::usage;
use super::{Session, ask_new_secret, confirm, read_stdin_secret};
use crate::cells::time_cell;

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// List credentials (secrets masked).
    #[command(alias = "ls")]
    List {
        /// Only this kind (snmp_v1, snmp_v2c, snmp_v3, windows, ssh).
        #[arg(long)]
        kind: Option<CredentialKind>,
    },
    /// Show one credential; admins may --reveal its secrets (audit-logged).
    Get {
        /// Credential name or id.
        credential: String,
        #[arg(long)]
        reveal: bool,
    },
    /// Add a credential (admins). Its secrets are asked for, or read from standard input.
    Create(CreateArgs),
    /// Change a credential (admins). Options not given stay as they are.
    Update(UpdateArgs),
    /// Delete a credential (admins); it is detached from every node.
    #[command(alias = "rm")]
    Delete {
        credential: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Attach a credential to nodes (operators and admins).
    Attach {
        credential: String,
        /// Node names or ids.
        #[arg(required = true)]
        nodes: Vec<String>,
        /// Try it at this position (lower first) [default: after the others].
        #[arg(long)]
        priority: Option<i64>,
    },
    /// Detach a credential from nodes.
    Detach {
        credential: String,
        #[arg(required = true)]
        nodes: Vec<String>,
    },
}

/// The non-secret fields, as options.
#[derive(Debug, Args, Default)]
pub struct ParamArgs {
    /// User name (SNMPv3, Windows, SSH, vSphere).
    #[arg(long)]
    pub username: Option<String>,
    /// SNMPv3 authentication: md5, sha1, sha224, sha256, sha384, sha512.
    #[arg(long)]
    pub auth_protocol: Option<AuthProtocol>,
    /// SNMPv3 privacy: des, aes128, aes192, aes256.
    #[arg(long)]
    pub priv_protocol: Option<PrivProtocol>,
    /// SNMPv3 context name (`--context` names the plantwatch context to use).
    #[arg(long = "snmp-context", id = "snmp_context", value_name = "NAME")]
    pub context: Option<String>,
    /// Windows or SSH domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// vSphere: the vCenter certificate's SHA-256 fingerprint, trusted whoever issued it
    /// (`SHA256:…` or hex, as `openssl x509 -fingerprint -sha256` prints it). Without it the
    /// certificate must chain to a root the collector trusts.
    #[arg(long)]
    pub fingerprint: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub name: String,
    /// snmp_v1, snmp_v2c, snmp_v3, windows, ssh or vsphere.
    #[arg(long, short = 'k')]
    pub kind: CredentialKind,
    #[command(flatten)]
    pub params: ParamArgs,
    /// A network (CIDR) whose addresses it may be attached to and sent to (repeat for several).
    /// Without one, only admins may attach it.
    #[arg(long = "network", value_name = "CIDR")]
    pub networks: Vec<String>,
    /// Read the secrets from standard input, one line each, in the order the kind needs them
    /// (community; or auth then priv pass phrase; or password).
    #[arg(long)]
    pub secrets_stdin: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub credential: String,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub params: ParamArgs,
    /// Drop the SNMPv3 privacy protocol (and its pass phrase).
    #[arg(long, conflicts_with = "priv_protocol")]
    pub no_priv: bool,
    /// Set a new value for this secret field (repeat for several); asked for, or read from
    /// standard input with --secrets-stdin.
    #[arg(long = "secret", value_name = "FIELD")]
    pub secrets: Vec<String>,
    /// Replace its networks (repeat for several).
    #[arg(long = "network", value_name = "CIDR")]
    pub networks: Vec<String>,
    /// Remove its networks (then only admins may attach it).
    #[arg(long, conflicts_with = "networks")]
    pub no_networks: bool,
    #[arg(long)]
    pub secrets_stdin: bool,
}

/// A credential by name or id.
pub async fn find(client: &Client, credential: &str) -> anyhow::Result<Credential> {
    if let Ok(id) = credential.parse::<i64>() {
        return Ok(client.get_credential(id, false).await?);
    }
    let query = CredentialQuery {
        q: Some(credential.to_owned()),
        limit: Some(MAX_PAGE_LIMIT),
        ..CredentialQuery::default()
    };
    client
        .list_credentials(&query)
        .await?
        .items
        .into_iter()
        .find(|c| c.name == credential)
        .ok_or_else(|| anyhow::anyhow!("there is no credential {credential:?}"))
}

/// The secret fields `kind` with `params` needs, in asking order.
fn needed(kind: CredentialKind, params: &CredentialParams) -> Vec<&'static str> {
    kind.secret_fields()
        .iter()
        .copied()
        .filter(|field| match *field {
            "auth_password" => params.auth_protocol.is_some(),
            "priv_password" => params.priv_protocol.is_some(),
            _ => true,
        })
        .collect()
}

/// Reads `fields` from standard input (one line each) or from prompts without echo.
fn read_secrets(fields: &[&str], from_stdin: bool) -> anyhow::Result<BTreeMap<String, Secret>> {
    let hint = "no terminal to ask for the secrets on; use --secrets-stdin";
    fields
        .iter()
        .map(|field| {
            let value = if from_stdin {
                read_stdin_secret(field)?
            } else {
                ask_new_secret(field, hint)?
            };
            Ok(((*field).to_owned(), value))
        })
        .collect()
}

const HEADERS: &[&str] = &["ID", "NAME", "KIND", "USER", "SECRETS", "NODES", "UPDATED"];

fn row(credential: &Credential) -> Vec<String> {
    let secrets: Vec<String> = credential
        .secrets
        .iter()
        .map(|(field, value)| match value {
            Some(value) => format!("{field}={}", value.expose()),
            None => format!("{field}=***"),
        })
        .collect();
    vec![
        credential.id.to_string(),
        credential.name.clone(),
        credential.kind.to_string(),
        credential
            .params
            .username
            .clone()
            .unwrap_or_else(|| "-".into()),
        secrets.join(" "),
        credential.nodes.to_string(),
        time_cell(Some(credential.updated_at)),
    ]
}

fn params_of(args: ParamArgs) -> CredentialParams {
    CredentialParams {
        username: args.username,
        auth_protocol: args.auth_protocol,
        priv_protocol: args.priv_protocol,
        context: args.context,
        domain: args.domain,
        fingerprint: args.fingerprint,
    }
}

/// `base` with every option that was given.
fn merged(base: &CredentialParams, args: ParamArgs, no_priv: bool) -> CredentialParams {
    let mut params = base.clone();
    let given = params_of(args);
    params.username = given.username.or(params.username);
    params.auth_protocol = given.auth_protocol.or(params.auth_protocol);
    params.priv_protocol = given.priv_protocol.or(params.priv_protocol);
    params.context = given.context.or(params.context);
    params.domain = given.domain.or(params.domain);
    params.fingerprint = given.fingerprint.or(params.fingerprint);
    if no_priv {
        params.priv_protocol = None;
    }
    params
}

pub async fn run(session: &Session, command: CredentialsCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        CredentialsCommand::List { kind } => {
            let query = CredentialQuery {
                kind,
                limit: Some(MAX_PAGE_LIMIT),
                ..CredentialQuery::default()
            };
            let page = client.list_credentials(&query).await?;
            let rows = page.items.iter().map(row).collect();
            session.print(&page, HEADERS, rows)
        }
        CredentialsCommand::Get { credential, reveal } => {
            let found = find(&client, &credential).await?;
            let shown = if reveal {
                client.get_credential(found.id, true).await?
            } else {
                found
            };
            session.print(&shown, HEADERS, vec![row(&shown)])
        }
        CredentialsCommand::Create(args) => {
            if let Some(problem) = plantwatch_shared::rules::networks_problem(&args.networks) {
                usage!("--network: {problem}");
            }
            let params = params_of(args.params);
            let secrets = read_secrets(&needed(args.kind, &params), args.secrets_stdin)?;
            let request = CreateCredentialRequest {
                name: args.name,
                kind: args.kind,
                params,
                secrets,
                networks: args.networks,
            };
            let created = client.create_credential(&request).await?;
            session.print(&created, HEADERS, vec![row(&created)])
        }
        CredentialsCommand::Update(args) => {
            if let Some(problem) = plantwatch_shared::rules::networks_problem(&args.networks) {
                usage!("--network: {problem}");
            }
            let current = find(&client, &args.credential).await?;
            let params = merged(&current.params, args.params, args.no_priv);
            // New protocols need their pass phrase if none is stored yet.
            let mut fields: Vec<String> = args.secrets.clone();
            for field in needed(current.kind, &params) {
                if !current.secrets.contains_key(field) && !fields.iter().any(|f| f == field) {
                    fields.push(field.to_owned());
                }
            }
            let allowed = current.kind.secret_fields();
            if let Some(bad) = fields.iter().find(|f| !allowed.contains(&f.as_str())) {
                usage!(
                    "a {} credential has no secret {bad:?}; it has {}",
                    current.kind,
                    allowed.join(", ")
                );
            }
            let names: Vec<&str> = fields.iter().map(String::as_str).collect();
            let secrets = read_secrets(&names, args.secrets_stdin)?;
            let networks = if args.no_networks {
                Some(Vec::new())
            } else {
                (!args.networks.is_empty()).then_some(args.networks)
            };
            let request = UpdateCredentialRequest {
                name: args.name,
                params: (params != current.params).then_some(params),
                secrets,
                networks,
            };
            if request == UpdateCredentialRequest::default() {
                usage!("nothing to change: give at least one option");
            }
            let updated = client.update_credential(current.id, &request).await?;
            session.print(&updated, HEADERS, vec![row(&updated)])
        }
        CredentialsCommand::Delete { credential, yes } => {
            let target = find(&client, &credential).await?;
            confirm(
                yes,
                &format!(
                    "Delete credential {} ({}), attached to {} node(s)?",
                    target.name, target.kind, target.nodes
                ),
            )?;
            client.delete_credential(target.id).await?;
            println!("Deleted credential {}.", target.name);
            Ok(())
        }
        CredentialsCommand::Attach {
            credential,
            nodes,
            priority,
        } => {
            let target = find(&client, &credential).await?;
            for name in nodes {
                let node = super::nodes::find(&client, &name).await?;
                client
                    .attach_credential(node.id, target.id, priority)
                    .await?;
                println!("Attached {} to {}.", target.name, node.name);
            }
            Ok(())
        }
        CredentialsCommand::Detach { credential, nodes } => {
            let target = find(&client, &credential).await?;
            for name in nodes {
                let node = super::nodes::find(&client, &name).await?;
                client.detach_credential(node.id, target.id).await?;
                println!("Detached {} from {}.", target.name, node.name);
            }
            Ok(())
        }
    }
}
