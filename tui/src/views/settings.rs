//! Server settings (admins): sign-in through the plant's directory (LDAP, Active Directory).
//! `e` edits the connection, `r` how users and groups are found and mapped to roles, `t` runs the sign-in chain for a user step by step and shows
//! each step's outcome; nobody is signed in by a test. The bind password is typed masked and
//! never shown; a CA bundle is set with `plantwatch ldap set --ca-file` (a fingerprint pin can
//! be typed here).

use plantwatch_shared::api::{
    GroupLookup, GroupRole, LdapSettings, LdapSettingsUpdate, LdapTestReport, LdapTestRequest,
    Role,
};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};

use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::cells::{ldap_report_rows, ldap_settings_rows};
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::Overlay;
use crate::widgets::form::{Field, Form, Purpose};
use crate::widgets::table::{Column, DataTable, caseless};

crate::field_ids! {
    Enabled = "Sign-in via directory",
    Urls = "URLs",
    StartTls = "StartTLS",
    Fingerprint = "Pinned fingerprint",
    BindDn = "Bind DN",
    BindPassword = "Bind password",
    UserBase = "User base DN",
    UserFilter = "User filter",
    Groups = "Groups from",
    GroupBase = "Group base DN",
    GroupFilter = "Group filter",
    Nested = "Nested groups",
    Map = "Group → role",
    DefaultRole = "Default role",
    Timeout = "Timeout (s)",
    Username = "Username",
    Password = "Password",
}

pub const SPEC: ViewSpec = ViewSpec {
    name: "settings",
    aliases: &["set", "ldap"],
    about: "server settings: sign-in through LDAP / Active Directory",
    min_role: Role::Admin,
    make: || Box::new(SettingsView::new()),
};

crate::asks!(EDIT, GROUPS, TEST);

/// One line of the settings table.
#[derive(Debug, Clone)]
pub struct Setting {
    pub name: String,
    pub value: String,
}

static COLUMNS: &[Column<Setting>] = &[
    Column {
        title: "SETTING",
        sort_key: 's',
        width: Constraint::Length(16),
        cell: |s| s.name.clone(),
        cmp: |a, b| caseless(&a.name, &b.name),
    },
    Column {
        title: "VALUE",
        sort_key: 'v',
        width: Constraint::Fill(1),
        cell: |s| s.value.clone(),
        cmp: |a, b| caseless(&a.value, &b.value),
    },
];

pub struct SettingsView {
    pub table: DataTable<Setting>,
    pub settings: Option<LdapSettings>,
}

impl SettingsView {
    pub fn new() -> Self {
        SettingsView {
            // A name may repeat (one `map` row per group): the key is the whole row.
            table: DataTable::new(COLUMNS, |s| format!("{}={}", s.name, s.value)).uncounted(),
            settings: None,
        }
    }
}

impl Default for SettingsView {
    fn default() -> Self {
        Self::new()
    }
}

const YES_NO: &[&str] = &["yes", "no"];
const LOOKUPS: &[&str] = &["member_of", "search", "in_chain"];
const DEFAULT_ROLES: &[&str] = &["none", "viewer", "operator", "admin"];

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// The group → role table as typed in one field: `DN=role; DN=role`.
pub fn mappings_text(mappings: &[GroupRole]) -> String {
    mappings
        .iter()
        .map(GroupRole::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The group → role table a field holds.
pub fn parse_mappings(text: &str) -> Result<Vec<GroupRole>, String> {
    text.split(';')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::parse)
        .collect()
}

fn check_mappings(text: &str) -> Result<(), String> {
    parse_mappings(text).map(|_| ())
}

fn check_timeout(text: &str) -> Result<(), String> {
    match text.trim().parse::<u64>() {
        Ok(1..=60) => Ok(()),
        _ => Err("1 to 60 seconds".into()),
    }
}

/// The connection form, filled with `settings`.
fn connection_form(settings: &LdapSettings) -> Form {
    Form::new(
        "Directory: connection",
        Purpose::View(EDIT),
        vec![
            Field::choice(FieldId::Enabled, YES_NO, yes_no(settings.enabled)),
            Field::text(FieldId::Urls).with_value(settings.urls.join(" ")),
            Field::choice(FieldId::StartTls, YES_NO, yes_no(settings.starttls)),
            Field::text(FieldId::Fingerprint)
                .with_value(settings.fingerprint.clone().unwrap_or_default())
                .optional(),
            Field::text(FieldId::BindDn).with_value(settings.bind_dn.clone()),
            Field::secret(FieldId::BindPassword).optional(),
            Field::text(FieldId::Timeout)
                .with_value(settings.timeout_secs.to_string())
                .checked(check_timeout),
        ],
    )
    .with_note(
        "URLs: ldaps://host:636, or ldap:// with StartTLS, space-separated, tried in order. \
         An empty bind password keeps the stored one. A CA: plantwatch ldap set --ca-file.",
    )
}

/// The users-and-groups form, filled with `settings`.
fn groups_form(settings: &LdapSettings) -> Form {
    Form::new(
        "Directory: users, groups and roles",
        Purpose::View(GROUPS),
        vec![
            Field::text(FieldId::UserBase).with_value(settings.user_base_dn.clone()),
            Field::text(FieldId::UserFilter).with_value(settings.user_filter.clone()),
            Field::choice(FieldId::Groups, LOOKUPS, settings.group_lookup.as_str()),
            Field::text(FieldId::GroupBase)
                .with_value(settings.group_base_dn.clone())
                .optional(),
            Field::text(FieldId::GroupFilter)
                .with_value(settings.group_filter.clone())
                .optional(),
            Field::choice(FieldId::Nested, YES_NO, yes_no(settings.nested)),
            Field::text(FieldId::Map)
                .with_value(mappings_text(&settings.group_roles))
                .optional()
                .checked(check_mappings),
            Field::choice(
                FieldId::DefaultRole,
                DEFAULT_ROLES,
                settings.default_role.map_or("none", Role::as_str),
            ),
        ],
    )
    .with_note(
        "Group → role: GROUP-DN=role; GROUP-DN=role (the highest role wins). Default role: \
         for a user in no mapped group (none: refused).",
    )
}

/// The update a filled form describes, on top of the settings it was opened with (what the
/// form does not hold, the CA bundle among it, is kept).
fn read_form(form: &Form, current: &LdapSettings) -> LdapSettingsUpdate {
    let text = |id: FieldId| form.value(id).trim().to_owned();
    let mut update = LdapSettingsUpdate::from_settings(current);
    if form.purpose == Purpose::View(EDIT) {
        update.enabled = text(FieldId::Enabled) == "yes";
        update.urls = text(FieldId::Urls)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        update.starttls = text(FieldId::StartTls) == "yes";
        update.fingerprint = Some(text(FieldId::Fingerprint)).filter(|f| !f.is_empty());
        update.bind_dn = text(FieldId::BindDn);
        update.bind_password =
            Some(form.secret(FieldId::BindPassword)).filter(|p| !p.expose().is_empty());
        update.timeout_secs = text(FieldId::Timeout).parse().unwrap_or(update.timeout_secs);
    } else {
        update.user_base_dn = text(FieldId::UserBase);
        update.user_filter = text(FieldId::UserFilter);
        update.group_lookup = match text(FieldId::Groups).as_str() {
            "search" => GroupLookup::Search,
            "in_chain" => GroupLookup::InChain,
            _ => GroupLookup::MemberOf,
        };
        update.group_base_dn = text(FieldId::GroupBase);
        update.group_filter = text(FieldId::GroupFilter);
        update.nested = text(FieldId::Nested) == "yes";
        update.group_roles = parse_mappings(&text(FieldId::Map)).unwrap_or_default();
        update.default_role = text(FieldId::DefaultRole).parse().ok();
    }
    update
}

/// The report of a test as a detail overlay: each step, then the groups and the verdict.
pub fn report_overlay(username: &str, report: &LdapTestReport) -> Overlay {
    let verdict = match (report.ok, report.role) {
        (true, Some(role)) => format!("{username} would sign in as {role}"),
        _ => format!("{username} would not be let in"),
    };
    let mut lines: Vec<(String, String)> = ldap_report_rows(report)
        .into_iter()
        .map(|row| {
            let [step, result, time, detail] = [&row[0], &row[1], &row[2], &row[3]];
            let head = [result.as_str(), time.as_str()]
                .iter()
                .filter(|t| !t.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            (step.trim().to_owned(), format!("{head}: {detail}"))
        })
        .collect();
    lines.push(("Verdict".into(), verdict));
    Overlay::Detail {
        title: format!("Directory test for {username}"),
        lines,
    }
}

impl View for SettingsView {
    fn title(&self) -> String {
        "Settings: directory sign-in".into()
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(
                &[Key::ch('e')],
                Action::Edit,
                "change the connection: URLs, TLS, service account",
            )
            .footer("edit")
            .role(Role::Admin),
            Binding::new(
                &[Key::ch('r')],
                Action::ChangeRole,
                "change how users and groups map to roles",
            )
            .footer("roles")
            .role(Role::Admin),
            Binding::new(
                &[Key::ch('t')],
                Action::Test,
                "run the sign-in chain for a user, step by step",
            )
            .footer("test")
            .role(Role::Admin),
        ]
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        self.table.render(
            frame,
            area,
            "Directory sign-in (LDAP / Active Directory)",
            "Loading…",
            ctx.theme,
        );
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        vec![task("loading the directory settings", async move {
            client
                .ldap_settings()
                .await
                .map(|s| Reply::LdapSettings(Box::new(s)))
        })]
    }

    fn on_action(&mut self, action: Action, _ctx: &Ctx) -> Vec<Effect> {
        match action {
            Action::Edit | Action::ChangeRole => match &self.settings {
                Some(settings) if action == Action::Edit => {
                    vec![Effect::Open(Overlay::Form(connection_form(settings)))]
                }
                Some(settings) => vec![Effect::Open(Overlay::Form(groups_form(settings)))],
                None => vec![Effect::Info("The settings have not loaded yet.".into())],
            },
            Action::Test => vec![Effect::Open(Overlay::Form(
                Form::new(
                    "Test directory sign-in",
                    Purpose::View(TEST),
                    vec![
                        Field::text(FieldId::Username),
                        Field::secret(FieldId::Password).optional(),
                    ],
                )
                .with_note("Without a password the user's own bind is skipped. Nobody is signed in."),
            ))],
            _ => Vec::new(),
        }
    }

    fn on_submit(&mut self, form: &mut Form, ctx: &Ctx) -> Vec<Effect> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        if !form.validate() {
            return Vec::new();
        }
        match form.purpose {
            Purpose::View(EDIT | GROUPS) => {
                let Some(current) = &self.settings else {
                    return Vec::new();
                };
                let update = read_form(form, current);
                vec![Effect::Call(form.submit("saving the directory settings", async move {
                    client
                        .set_ldap_settings(&update)
                        .await
                        .map(|s| Reply::LdapSaved(Box::new(s)))
                }))]
            }
            Purpose::View(TEST) => {
                let username = form.value(FieldId::Username).trim().to_owned();
                let password = Some(form.secret(FieldId::Password)).filter(|p| !p.expose().is_empty());
                vec![
                    Effect::CloseOverlay,
                    Effect::Info(format!("Testing the directory with {username}…")),
                    Effect::Call(task("testing the directory", async move {
                        let request = LdapTestRequest {
                            username: username.clone(),
                            password,
                        };
                        let report = client.test_ldap(&request).await?;
                        Ok(Reply::LdapTested {
                            username,
                            report: Box::new(report),
                        })
                    })),
                ]
            }
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        let (settings, saved) = match reply {
            Reply::LdapSettings(settings) => (settings, false),
            Reply::LdapSaved(settings) => (settings, true),
            Reply::LdapTested { username, report } => {
                return vec![Effect::Open(report_overlay(username, report))];
            }
            _ => return Vec::new(),
        };
        let rows = ldap_settings_rows(settings)
            .into_iter()
            .map(|row| Setting {
                name: row[0].clone(),
                value: row[1].clone(),
            })
            .collect();
        self.table.set_rows(rows);
        self.settings = Some((**settings).clone());
        if saved {
            vec![
                Effect::CloseOverlay,
                Effect::Info("✔ Directory settings saved.".into()),
            ]
        } else {
            Vec::new()
        }
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_read_back_as_typed() {
        let mappings = parse_mappings("cn=a,dc=p=admin; cn=b,dc=p=viewer").unwrap();
        assert_eq!(mappings.len(), 2);
        assert_eq!(mappings[0].group, "cn=a,dc=p");
        assert_eq!(mappings[1].role, Role::Viewer);
        assert_eq!(mappings_text(&mappings), "cn=a,dc=p=admin; cn=b,dc=p=viewer");
        assert!(parse_mappings("cn=a,dc=p=root").is_err());
        assert!(parse_mappings("").unwrap().is_empty());
    }
}
