//! Notification channels (operators see them; admins change them): where alerts go, by which
//! route. Admins add a webhook, email or syslog channel (`c`), send a test (`t`) and delete
//! one (`d`). Secrets are typed masked and never shown again.

use plantwatch_shared::api::{Channel, ChannelKind, ChannelSettings, ChannelSpec, Role, Severity};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use crate::cells::channel_target as target;
use super::resource::Resource;
use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::Overlay;
use crate::widgets::form::{Field, Form, Purpose};
use crate::widgets::table::{Column, caseless};

// The fields of this view's forms: a label is written once, and a field is read by its id.
crate::field_ids! {
    Name = "Name",
    Kind = "Kind",
    Address = "Address",
    To = "To",
    From = "From",
    Tls = "TLS",
    Secret = "Secret",
    Severity = "Severity",
    Tags = "Tags",
}

pub const SPEC: ViewSpec = ViewSpec {
    name: "channels",
    aliases: &["ch", "notify"],
    about: "notification channels: webhook, email, syslog",
    min_role: Role::Operator,
    make: || Box::new(ChannelsView::new()),
};

crate::asks!(
    CREATE,
    EDIT,
    DELETE,
);

/// Which alerts a channel takes.
pub fn routes(c: &Channel) -> String {
    let mut parts = vec![format!("{}+", c.min_severity)];
    parts.extend(c.tags.iter().map(|t| format!("tag {t}")));
    parts.extend(c.collectors.iter().map(|t| format!("collector {t}")));
    if c.repeat_s > 0 {
        parts.push(format!("repeat {}s", c.repeat_s));
    }
    parts.join(", ")
}

static COLUMNS: &[Column<Channel>] = &[
    Column {
        title: "NAME",
        sort_key: 'n',
        width: Constraint::Length(16),
        cell: |c| c.name.clone(),
        cmp: |a, b| caseless(&a.name, &b.name),
    },
    Column {
        title: "KIND",
        sort_key: 'k',
        width: Constraint::Length(8),
        cell: |c| c.kind.to_string(),
        cmp: |a, b| a.kind.cmp(&b.kind),
    },
    Column {
        title: "TARGET",
        sort_key: 't',
        width: Constraint::Fill(2),
        cell: target,
        cmp: |a, b| target(a).cmp(&target(b)),
    },
    Column {
        title: "ROUTES",
        sort_key: 'r',
        width: Constraint::Fill(1),
        cell: routes,
        cmp: |a, b| routes(a).cmp(&routes(b)),
    },
    Column {
        title: "ON",
        sort_key: 'o',
        width: Constraint::Length(3),
        cell: |c| if c.enabled { "yes" } else { "no" }.into(),
        cmp: |a, b| a.enabled.cmp(&b.enabled),
    },
];

pub struct ChannelsView {
    pub table: Resource<Channel>,
}

impl ChannelsView {
    pub fn new() -> Self {
        ChannelsView {
            table: Resource::new("channel", COLUMNS, |c| c.id.to_string()),
        }
    }
}

impl Default for ChannelsView {
    fn default() -> Self {
        Self::new()
    }
}

fn list(text: &str) -> Vec<String> {
    text.split([',', ';', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The channel form, empty or filled from `channel` (its secrets never: left empty, they keep
/// their value).
fn channel_form(title: String, purpose: Purpose, channel: Option<&Channel>) -> Form {
    let value = |f: &dyn Fn(&Channel) -> String| channel.map(f).unwrap_or_default();
    let address = value(&|c| {
        let s = &c.settings;
        let with_port = |host: &Option<String>, port: Option<u16>| {
            let host = host.clone().unwrap_or_default();
            port.map_or(host.clone(), |p| format!("{host}:{p}"))
        };
        match c.kind {
            ChannelKind::Webhook => s.url.clone().unwrap_or_default(),
            ChannelKind::Email => with_port(&s.smtp_host, s.smtp_port),
            ChannelKind::Syslog => with_port(&s.host, s.port),
        }
    });
    let kind = channel.map_or("webhook", |c| c.kind.as_str());
    let tls = channel
        .and_then(|c| c.settings.tls.clone())
        .unwrap_or_else(|| "none".into());
    let severity = channel.map_or("warning", |c| c.min_severity.as_str());
    let secret_note = if channel.is_some() {
        " A secret left empty keeps the one set."
    } else {
        ""
    };
    Form::new(
        title,
        purpose,
        vec![
            Field::text(FieldId::Name).with_value(value(&|c| c.name.clone())),
            Field::choice(FieldId::Kind, &["webhook", "email", "syslog"], kind),
            Field::text(FieldId::Address).with_value(address),
            Field::text(FieldId::To)
                .optional()
                .with_value(value(&|c| c.settings.to.join(", "))),
            Field::text(FieldId::From)
                .optional()
                .with_value(value(&|c| c.settings.from.clone().unwrap_or_default())),
            Field::choice(FieldId::Tls, &["none", "starttls", "tls"], &tls),
            Field::secret(FieldId::Secret).optional(),
            Field::choice(FieldId::Severity, &["warning", "critical"], severity),
            Field::text(FieldId::Tags)
                .optional()
                .with_value(value(&|c| c.tags.join(", "))),
        ],
    )
    .with_note(format!(
        "Address: webhook URL, SMTP relay host[:port] or syslog host[:port]. \
         Secret: the webhook's HMAC key or the SMTP password.{secret_note}"
    ))
}

/// A channel whole, its secrets named but never shown.
fn detail_lines(c: &Channel) -> Vec<(String, String)> {
    let or_dash = |v: String| if v.is_empty() { "-".to_owned() } else { v };
    vec![
        ("Name".into(), c.name.clone()),
        ("Kind".into(), c.kind.to_string()),
        ("Sends to".into(), crate::cells::channel_target(c)),
        ("From".into(), or_dash(c.settings.from.clone().unwrap_or_default())),
        ("TLS".into(), or_dash(c.settings.tls.clone().unwrap_or_default())),
        ("Takes".into(), routes(c)),
        ("Resolved".into(), if c.send_resolved { "sent" } else { "not sent" }.into()),
        ("Enabled".into(), if c.enabled { "yes" } else { "no" }.into()),
        (
            "Secrets".into(),
            if c.secrets.is_empty() {
                "-".into()
            } else {
                format!("{} (set, not shown)", c.secrets.join(", "))
            },
        ),
    ]
}

/// The channel a filled form describes.
pub fn read_channel_form(form: &Form) -> ChannelSpec {
    let text = |label: FieldId| Some(form.value(label).trim().to_owned()).filter(|v| !v.is_empty());
    let kind: ChannelKind = form.value(FieldId::Kind).parse().unwrap_or(ChannelKind::Webhook);
    let address = text(FieldId::Address).unwrap_or_default();
    let mut settings = ChannelSettings::default();
    let mut secrets = std::collections::BTreeMap::new();
    match kind {
        ChannelKind::Webhook => {
            settings.url = Some(address);
            if let Some(key) = text(FieldId::Secret) {
                secrets.insert("hmac_key".to_owned(), key.into());
            }
        }
        ChannelKind::Email => {
            let (host, port) = split_port(&address);
            settings.smtp_host = Some(host);
            settings.smtp_port = port;
            settings.tls = text(FieldId::Tls);
            settings.from = text(FieldId::From);
            settings.to = list(form.value(FieldId::To));
            if let Some(password) = text(FieldId::Secret) {
                secrets.insert("password".to_owned(), password.into());
            }
        }
        ChannelKind::Syslog => {
            let (host, port) = split_port(&address);
            settings.host = Some(host);
            settings.port = port;
        }
    }
    ChannelSpec {
        name: form.value(FieldId::Name).trim().to_owned(),
        kind,
        settings,
        secrets,
        min_severity: form.value(FieldId::Severity).parse().unwrap_or(Severity::Warning),
        tags: list(form.value(FieldId::Tags)),
        collectors: Vec::new(),
        repeat_s: 0,
        send_resolved: true,
        enabled: true,
    }
}

/// `host:port` into its parts (the port optional).
fn split_port(address: &str) -> (String, Option<u16>) {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains('/') => match port.parse() {
            Ok(port) => (host.to_owned(), Some(port)),
            Err(_) => (address.to_owned(), None),
        },
        _ => (address.to_owned(), None),
    }
}

impl View for ChannelsView {
    fn title(&self) -> String {
        self.table.title("Notification channels")
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(&[Key::ch('c')], Action::Create, "add a channel")
                .footer("new")
                .role(Role::Admin),
            Binding::new(&[Key::new(KeyCode::Enter)], Action::Open, "the channel whole")
                .footer("details"),
            Binding::new(&[Key::ch('e')], Action::Edit, "edit (a secret left empty keeps its value)")
                .footer("edit")
                .role(Role::Admin),
            Binding::new(&[Key::ch('t')], Action::Test, "send a test notification now")
                .footer("test")
                .role(Role::Admin),
            Binding::new(&[Key::ch('d')], Action::Delete, "delete the channel").role(Role::Admin),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        self.table.render(
            frame,
            area,
            "Notification channels",
            "No channels: alerts are shown here but sent nowhere.",
            ctx.theme,
        );
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        vec![task("loading channels", async move {
            client.list_channels().await.map(Reply::Channels)
        })]
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Vec<Effect> {
        if action == Action::Create {
            return vec![Effect::Open(Overlay::Form(channel_form(
                "New notification channel".into(),
                Purpose::View(CREATE),
                None,
            )))];
        }
        let Some(channel) = self.table.selected().cloned() else {
            return vec![Effect::Info("No channel selected.".into())];
        };
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        let effects = match action {
            Action::Open => vec![Effect::Open(Overlay::Detail {
                title: format!("Channel {}", channel.name),
                lines: detail_lines(&channel),
            })],
            Action::Edit => vec![Effect::Open(Overlay::Form(channel_form(
                format!("Edit channel {}", channel.name),
                Purpose::View(EDIT),
                Some(&channel),
            )))],
            Action::Test => {
                let (id, name) = (channel.id, channel.name.clone());
                vec![
                    Effect::Info(format!("Sending a test through {name}…")),
                    Effect::Call(task("testing the channel", async move {
                        let outcome = client.test_channel(id).await?;
                        Ok(Reply::ChannelTested {
                            name,
                            error: outcome.error,
                        })
                    })),
                ]
            }
            Action::Delete => self.table.ask_delete(
                &channel.name,
                "Queued notifications for it go too.",
                DELETE,
            ),
            _ => return Vec::new(),
        };
        self.table.target = Some(channel);
        effects
    }

    fn on_submit(&mut self, form: &mut Form, ctx: &Ctx) -> Vec<Effect> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        if !form.validate() {
            return Vec::new();
        }
        let mut spec = read_channel_form(form);
        match (form.purpose, self.table.target.clone()) {
            (Purpose::View(CREATE), _) => {
                vec![Effect::Call(form.submit("creating the channel", async move {
                    client
                        .create_channel(&spec)
                        .await
                        .map(|c| Reply::ChannelSaved(Box::new(c)))
                }))]
            }
            (Purpose::View(EDIT), Some(before)) => {
                // What the form does not show stays as it was.
                spec.collectors = before.collectors;
                spec.repeat_s = before.repeat_s;
                spec.send_resolved = before.send_resolved;
                spec.enabled = before.enabled;
                spec.settings.protocol = before.settings.protocol;
                vec![Effect::Call(form.submit("saving the channel", async move {
                    client
                        .update_channel(before.id, &spec)
                        .await
                        .map(|c| Reply::ChannelUpdated(Box::new(c)))
                }))]
            }
            _ => Vec::new(),
        }
    }

    fn on_confirm(&mut self, tag: crate::widgets::form::Ask, ctx: &Ctx) -> Vec<Effect> {
        let (DELETE, Some(channel), Some(client)) = (tag, &self.table.target, ctx.client.cloned()) else {
            return Vec::new();
        };
        let (id, name) = (channel.id, channel.name.clone());
        vec![Effect::Call(task("deleting the channel", async move {
            client.delete_channel(id).await.map(|()| Reply::ChannelDeleted(name))
        }))]
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        match reply {
            Reply::Channels(list) => {
                self.table.set_rows(list.items.clone());
                Vec::new()
            }
            Reply::ChannelSaved(channel) => self.table.saved(&channel.name, true),
            Reply::ChannelUpdated(channel) => self.table.saved(&channel.name, false),
            Reply::ChannelDeleted(name) => self.table.deleted(name),
            Reply::ChannelTested { name, error: None } => {
                vec![Effect::Info(format!("Test sent through {name}."))]
            }
            Reply::ChannelTested {
                name,
                error: Some(error),
            } => vec![Effect::Info(format!("Test through {name} failed: {error}"))],
            _ => Vec::new(),
        }
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut *self.table)
    }
}
