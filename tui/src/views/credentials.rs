//! Credentials: the vault as the console shows it. Everyone sees names, kinds and which
//! secrets are set; admins create (the kind first, then its fields, secrets typed masked),
//! edit (the form opens with the secrets, revealed for the admin and audit-logged), reveal and
//! delete; operators attach a credential to nodes.

use std::collections::BTreeMap;

use plantwatch_shared::Secret;
use plantwatch_shared::api::{
    CreateCredentialRequest, Credential, CredentialKind, CredentialParams, CredentialQuery,
    MAX_PAGE_LIMIT, Role, UpdateCredentialRequest,
};
use plantwatch_shared::rules::{MAX_CREDENTIAL_NAME_LEN, name_problem, split_list};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::resource::Resource;
use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::cells::time_cell;
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::Overlay;
use crate::widgets::form::{Field, Form, Purpose};
use crate::widgets::table::{Column, caseless};

// The fields of this view's forms: a label is written once, and a field is read by its id.
crate::field_ids! {
    Networks = "Networks",
    Auth = "Auth",
    Privacy = "Privacy",
    Name = "Name",
    Kind = "Kind",
    Nodes = "Nodes",
    User = "User",
    Context = "Context",
    Domain = "Domain",
    Community = "Community",
    AuthPass = "Auth pass",
    PrivPass = "Priv pass",
    Password = "Password",
    Fingerprint = "Fingerprint",
}

pub const SPEC: ViewSpec = ViewSpec {
    name: "credentials",
    aliases: &["cr", "cred", "creds", "vault"],
    about: "SNMP, Windows and SSH credentials (secrets masked)",
    min_role: Role::Viewer,
    make: || Box::new(CredentialsView::new()),
};

crate::asks!(
    CREATE_KIND,
    CREATE,
    EDIT,
    DELETE,
    ATTACH,
);

const KINDS: &[&str] = &["snmp_v2c", "snmp_v1", "snmp_v3", "windows", "ssh"];
const AUTH: &[&str] = &["none", "md5", "sha1", "sha224", "sha256", "sha384", "sha512"];
const PRIV: &[&str] = &["none", "des", "aes128", "aes192", "aes256"];

/// Which secrets are set, never their values: `community ***`, `auth, priv ***`.
fn secrets_cell(credential: &Credential) -> String {
    if credential.secrets.is_empty() {
        return "-".to_owned();
    }
    let fields: Vec<&str> = credential
        .secrets
        .keys()
        .map(|field| field.strip_suffix("_password").unwrap_or(field))
        .collect();
    format!("{} ***", fields.join(", "))
}

static COLUMNS: &[Column<Credential>] = &[
    Column {
        title: "NAME",
        sort_key: 'n',
        width: Constraint::Fill(2),
        cell: |c| c.name.clone(),
        cmp: |a, b| caseless(&a.name, &b.name),
    },
    Column {
        title: "KIND",
        sort_key: 'k',
        width: Constraint::Length(9),
        cell: |c| c.kind.to_string(),
        cmp: |a, b| a.kind.cmp(&b.kind),
    },
    Column {
        title: "USER",
        sort_key: 'u',
        width: Constraint::Fill(1),
        cell: |c| c.params.username.clone().unwrap_or_else(|| "-".into()),
        cmp: |a, b| a.params.username.cmp(&b.params.username),
    },
    Column {
        title: "SECRETS",
        sort_key: 's',
        width: Constraint::Fill(2),
        cell: secrets_cell,
        cmp: |a, b| a.secrets.len().cmp(&b.secrets.len()),
    },
    Column {
        title: "NODES",
        sort_key: 'o',
        width: Constraint::Length(6),
        cell: |c| c.nodes.to_string(),
        cmp: |a, b| a.nodes.cmp(&b.nodes),
    },
    Column {
        title: "UPDATED",
        sort_key: 'd',
        width: Constraint::Length(20),
        cell: |c| time_cell(Some(c.updated_at)),
        cmp: |a, b| a.updated_at.cmp(&b.updated_at),
    },
];

pub struct CredentialsView {
    pub table: Resource<Credential>,
    /// Name and kind chosen in the first step of a create.
    creating: Option<(String, CredentialKind)>,
}

impl CredentialsView {
    pub fn new() -> Self {
        CredentialsView {
            table: Resource::new("credential", COLUMNS, |c| c.id.to_string()),
            creating: None,
        }
    }
}

impl Default for CredentialsView {
    fn default() -> Self {
        Self::new()
    }
}

fn name_check(value: &str) -> Result<(), String> {
    if value.contains(';') {
        return Err("the name must not contain ';'".into());
    }
    name_problem(value, MAX_CREDENTIAL_NAME_LEN).map_or(Ok(()), Err)
}

fn secret_value(credential: Option<&Credential>, field: &str) -> String {
    credential
        .and_then(|c| c.secrets.get(field))
        .and_then(|v| v.as_ref())
        .map(|v| v.expose().to_owned())
        .unwrap_or_default()
}

/// The fields of `kind`, filled from `existing` (revealed) when editing.
fn kind_fields(kind: CredentialKind, existing: Option<&Credential>) -> Vec<Field> {
    let mut fields = kind_secret_fields(kind, existing);
    let networks = existing.map(|c| c.networks.join(", ")).unwrap_or_default();
    fields.push(
        Field::text(FieldId::Networks)
            .with_value(networks)
            .optional()
            .checked(networks_check),
    );
    fields
}

fn networks_check(value: &str) -> Result<(), String> {
    match plantwatch_shared::rules::networks_problem(&split_networks(value)) {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

/// CIDRs separated by commas, semicolons or spaces.
fn split_networks(value: &str) -> Vec<String> {
    value
        .split([',', ';', ' '])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

fn kind_secret_fields(kind: CredentialKind, existing: Option<&Credential>) -> Vec<Field> {
    let params = existing.map(|c| c.params.clone()).unwrap_or_default();
    let text =
        |label: FieldId, value: Option<String>| Field::text(label).with_value(value.unwrap_or_default());
    let secret = |label: FieldId, field| Field::secret(label).with_value(secret_value(existing, field));
    match kind {
        CredentialKind::SnmpV1 | CredentialKind::SnmpV2c => vec![secret(FieldId::Community, "community")],
        CredentialKind::SnmpV3 => vec![
            text(FieldId::User, params.username),
            Field::choice(FieldId::Auth, AUTH, params.auth_protocol.map_or("none", |p| p.as_str())),
            secret(FieldId::AuthPass, "auth_password").optional(),
            Field::choice(FieldId::Privacy, PRIV, params.priv_protocol.map_or("none", |p| p.as_str())),
            secret(FieldId::PrivPass, "priv_password").optional(),
            text(FieldId::Context, params.context).optional(),
        ],
        CredentialKind::Windows | CredentialKind::Ssh => vec![
            text(FieldId::User, params.username),
            text(FieldId::Domain, params.domain).optional(),
            secret(FieldId::Password, "password"),
        ],
        CredentialKind::Vsphere => vec![
            text(FieldId::User, params.username),
            secret(FieldId::Password, "password"),
            text(FieldId::Fingerprint, params.fingerprint)
                .optional()
                .checked(fingerprint_check),
        ],
    }
}

fn fingerprint_check(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Ok(());
    }
    value
        .trim()
        .parse::<plantwatch_shared::Fingerprint>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Params and secrets from a filled kind form.
fn read_form(kind: CredentialKind, form: &Form) -> (CredentialParams, BTreeMap<String, Secret>) {
    let optional =
        |label: FieldId| Some(form.value(label).trim().to_owned()).filter(|v| !v.is_empty());
    let chosen = |label: FieldId| Some(form.value(label)).filter(|v| *v != "none");
    let mut secrets = BTreeMap::new();
    let mut put = |field: &str, label: FieldId| {
        if !form.value(label).is_empty() {
            secrets.insert(field.to_owned(), form.secret(label));
        }
    };
    let params = match kind {
        CredentialKind::SnmpV1 | CredentialKind::SnmpV2c => {
            put("community", FieldId::Community);
            CredentialParams::default()
        }
        CredentialKind::SnmpV3 => {
            let params = CredentialParams {
                username: optional(FieldId::User),
                auth_protocol: chosen(FieldId::Auth).and_then(|p| p.parse().ok()),
                priv_protocol: chosen(FieldId::Privacy).and_then(|p| p.parse().ok()),
                context: optional(FieldId::Context),
                domain: None,
                fingerprint: None,
            };
            if params.auth_protocol.is_some() {
                put("auth_password", FieldId::AuthPass);
            }
            if params.priv_protocol.is_some() {
                put("priv_password", FieldId::PrivPass);
            }
            params
        }
        CredentialKind::Windows | CredentialKind::Ssh => {
            put("password", FieldId::Password);
            CredentialParams {
                username: optional(FieldId::User),
                domain: optional(FieldId::Domain),
                ..CredentialParams::default()
            }
        }
        CredentialKind::Vsphere => {
            put("password", FieldId::Password);
            CredentialParams {
                username: optional(FieldId::User),
                fingerprint: optional(FieldId::Fingerprint),
                ..CredentialParams::default()
            }
        }
    };
    (params, secrets)
}

impl View for CredentialsView {
    fn title(&self) -> String {
        self.table.title("Credentials")
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(&[Key::ch('c')], Action::Create, "add a credential")
                .footer("create")
                .role(Role::Admin),
            Binding::new(
                &[Key::ch('e')],
                Action::Edit,
                "edit (reveals the secrets; audit-logged)",
            )
            .footer("edit")
            .role(Role::Admin),
            Binding::new(
                &[Key::ch('v')],
                Action::Reveal,
                "show the secrets in clear (audit-logged)",
            )
            .footer("reveal")
            .role(Role::Admin),
            Binding::new(
                &[Key::ch('d'), Key::new(KeyCode::Delete)],
                Action::Delete,
                "delete the credential (asks first)",
            )
            .footer("delete")
            .role(Role::Admin),
            Binding::new(
                &[Key::ch('a')],
                Action::Attach,
                "attach the credential to nodes",
            )
            .footer("attach")
            .role(Role::Operator),
            Binding::new(
                &[Key::new(KeyCode::Enter)],
                Action::Open,
                "details (secrets masked)",
            ),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let empty = if ctx.role() == Role::Admin {
            "No credentials yet: c adds one."
        } else {
            "No credentials yet."
        };
        self.table.render(frame, area, "Credentials", empty, ctx.theme);
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        vec![task("loading the credentials", async move {
            let query = CredentialQuery {
                limit: Some(MAX_PAGE_LIMIT),
                ..CredentialQuery::default()
            };
            client.list_credentials(&query).await.map(Reply::Credentials)
        })]
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Vec<Effect> {
        if action == Action::Create {
            let form = Form::new(
                "New credential",
                Purpose::View(CREATE_KIND),
                vec![
                    Field::text(FieldId::Name).checked(name_check),
                    Field::choice(FieldId::Kind, KINDS, "snmp_v2c"),
                ],
            )
            .with_note("Choose the kind; its fields come next.");
            return vec![Effect::Open(Overlay::Form(form))];
        }
        let Some(credential) = self.table.selected().cloned() else {
            return vec![Effect::Info("No credential selected.".into())];
        };
        let effects = match action {
            Action::Edit | Action::Reveal => {
                let Some(client) = ctx.client.cloned() else {
                    return Vec::new();
                };
                let (id, edit) = (credential.id, action == Action::Edit);
                vec![Effect::Call(task("revealing the credential", async move {
                    let credential = client.get_credential(id, true).await?;
                    Ok(Reply::CredentialRevealed {
                        credential: Box::new(credential),
                        edit,
                    })
                }))]
            }
            Action::Delete => self.table.ask_delete(
                &format!("{} ({})", credential.name, credential.kind),
                &format!(
                    "It is detached from {} node(s). This cannot be undone.",
                    credential.nodes
                ),
                DELETE,
            ),
            Action::Attach => vec![Effect::Open(Overlay::Form(
                Form::new(
                    format!("Attach {} to nodes", credential.name),
                    Purpose::View(ATTACH),
                    vec![Field::text(FieldId::Nodes)],
                )
                .with_note("Node names separated by ';' (or mark nodes in :nodes and press a)."),
            ))],
            Action::Open => vec![Effect::Open(Overlay::Detail {
                title: format!("Credential {}", credential.name),
                lines: detail_lines(&credential),
            })],
            _ => return Vec::new(),
        };
        self.table.target = Some(credential);
        effects
    }

    fn on_submit(&mut self, form: &mut Form, ctx: &Ctx) -> Vec<Effect> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        if !form.validate() {
            return Vec::new();
        }
        let call = match form.purpose {
            Purpose::View(CREATE_KIND) => {
                let name = form.value(FieldId::Name).trim().to_owned();
                let kind = form.value(FieldId::Kind).parse().unwrap_or(CredentialKind::SnmpV2c);
                let next = Form::new(
                    format!("New {kind} credential {name}"),
                    Purpose::View(CREATE),
                    kind_fields(kind, None),
                )
                .with_note("Secrets are typed masked and stored encrypted.");
                self.creating = Some((name, kind));
                return vec![Effect::Open(Overlay::Form(next))];
            }
            Purpose::View(CREATE) => {
                let Some((name, kind)) = self.creating.clone() else {
                    return Vec::new();
                };
                let (params, secrets) = read_form(kind, form);
                let request = CreateCredentialRequest {
                    name,
                    kind,
                    params,
                    secrets,
                    networks: split_networks(form.value(FieldId::Networks)),
                };
                form.submit("creating the credential", async move {
                    let credential = client.create_credential(&request).await?;
                    Ok(Reply::CredentialSaved {
                        credential: Box::new(credential),
                        created: true,
                    })
                })
            }
            Purpose::View(EDIT) => {
                let Some(target) = &self.table.target else {
                    return Vec::new();
                };
                let (params, mut secrets) = read_form(target.kind, form);
                // Send only the secrets that were changed.
                secrets.retain(|field, value| {
                    target.secrets.get(field).and_then(|v| v.as_ref()) != Some(value)
                });
                let name = form.value(FieldId::Name).trim().to_owned();
                let networks = split_networks(form.value(FieldId::Networks));
                let request = UpdateCredentialRequest {
                    name: (name != target.name).then_some(name),
                    params: (params != target.params).then_some(params),
                    secrets,
                    networks: (networks != target.networks).then_some(networks),
                };
                if request == UpdateCredentialRequest::default() {
                    return vec![Effect::CloseOverlay, Effect::Info("Nothing changed.".into())];
                }
                let id = target.id;
                form.submit("saving the credential", async move {
                    let credential = client.update_credential(id, &request).await?;
                    Ok(Reply::CredentialSaved {
                        credential: Box::new(credential),
                        created: false,
                    })
                })
            }
            Purpose::View(ATTACH) => {
                let Some(target) = &self.table.target else {
                    return Vec::new();
                };
                let names = split_list(form.value(FieldId::Nodes));
                let (id, credential) = (target.id, target.name.clone());
                form.submit("attaching the credential", async move {
                    for name in &names {
                        let node = client.node_by_name(name).await?;
                        client.attach_credential(node.id, id, None).await?;
                    }
                    Ok(Reply::Attached {
                        credential,
                        nodes: names.len(),
                    })
                })
            }
            _ => return Vec::new(),
        };
        vec![Effect::Call(call)]
    }

    fn on_confirm(&mut self, tag: crate::widgets::form::Ask, ctx: &Ctx) -> Vec<Effect> {
        match (tag, self.table.target.clone(), ctx.client.cloned()) {
            (DELETE, Some(credential), Some(client)) => vec![
                Effect::Call(task("deleting the credential", async move {
                    client.delete_credential(credential.id).await?;
                    Ok(Reply::CredentialDeleted(credential.name))
                })),
                Effect::Info("Deleting…".into()),
            ],
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        match reply {
            Reply::Credentials(list) => {
                self.table.set_rows(list.items.clone());
                Vec::new()
            }
            Reply::CredentialRevealed { credential, edit: true } => {
                let mut fields = vec![Field::text(FieldId::Name)
                    .with_value(credential.name.clone())
                    .checked(name_check)];
                fields.extend(kind_fields(credential.kind, Some(credential)));
                let form = Form::new(
                    format!("Edit {} ({})", credential.name, credential.kind),
                    Purpose::View(EDIT),
                    fields,
                )
                .with_note("Secrets are masked; type over one to change it.");
                self.table.target = Some(credential.as_ref().clone());
                vec![Effect::Open(Overlay::Form(form))]
            }
            Reply::CredentialRevealed { credential, edit: false } => {
                let mut lines = detail_lines(credential);
                lines.push((
                    "Audit".into(),
                    "this reveal was recorded in the audit log".into(),
                ));
                vec![Effect::Open(Overlay::Detail {
                    title: format!("Credential {} (revealed)", credential.name),
                    lines,
                })]
            }
            Reply::CredentialSaved { credential, created } => {
                self.table.saved(&credential.name, *created)
            }
            Reply::CredentialDeleted(name) => vec![
                Effect::Info(format!("✔ Credential {name} deleted.")),
                Effect::Refresh,
            ],
            Reply::Attached { credential, nodes } => {
                vec![
                Effect::CloseOverlay,
                Effect::Info(format!("✔ {credential} attached to {nodes} node(s).")),
                Effect::Refresh,
                ]
            }
            _ => Vec::new(),
        }
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut *self.table)
    }
}

/// A credential's fields; secrets masked unless it was revealed.
pub fn detail_lines(credential: &Credential) -> Vec<(String, String)> {
    let params = &credential.params;
    let mut lines = vec![
        ("Name".to_owned(), credential.name.clone()),
        ("Kind".to_owned(), credential.kind.to_string()),
    ];
    let optional = [
        ("User", params.username.clone()),
        ("Auth", params.auth_protocol.map(|p| p.to_string())),
        ("Privacy", params.priv_protocol.map(|p| p.to_string())),
        ("Context", params.context.clone()),
        ("Domain", params.domain.clone()),
        ("Fingerprint", params.fingerprint.clone()),
    ];
    for (label, value) in optional {
        if let Some(value) = value {
            lines.push((label.to_owned(), value));
        }
    }
    for (field, value) in &credential.secrets {
        let shown = value
            .as_ref()
            .map_or("******** (hidden)".to_owned(), |v| v.expose().to_owned());
        lines.push((field.clone(), shown));
    }
    lines.push(("Nodes".to_owned(), credential.nodes.to_string()));
    lines.push(("Updated".to_owned(), time_cell(Some(credential.updated_at))));
    lines
}
