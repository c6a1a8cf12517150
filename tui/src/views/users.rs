//! Users (admins only): list, create, change role (pins a directory user's), unpin, reset
//! password, delete.

use plantwatch_shared::api::{
    CreateUserRequest, Role, UpdateUserRequest, User, UserQuery, UserSource,
};
use plantwatch_shared::rules::{password_problem, username_problem};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};

use super::resource::Resource;
use super::{Ctx, Effect, Navigate, View, ViewSpec, lifecycle};
use crate::cells::time_cell;
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::{Confirm, Overlay};
use crate::widgets::form::{Field, Form, Purpose};
use crate::widgets::table::Column;

// The fields of this view's forms: a label is written once, and a field is read by its id.
crate::field_ids! {
    Password = "Password",
    Repeat = "Repeat",
    Username = "Username",
    Role = "Role",
}

pub const SPEC: ViewSpec = ViewSpec {
    name: "users",
    aliases: &["us", "user"],
    about: "people who may sign in, and their roles",
    min_role: Role::Admin,
    make: || Box::new(UsersView::new()),
};

const ROLES: &[&str] = &["viewer", "operator", "admin"];
crate::asks!(
    CREATE,
    SET_ROLE,
    RESET_PASSWORD,
    DELETE,
);

fn source_word(user: &User) -> &'static str {
    if user.role_pinned {
        "pinned"
    } else {
        user.source.as_str()
    }
}

static COLUMNS: &[Column<User>] = &[
    Column {
        title: "USERNAME",
        sort_key: 'n',
        width: Constraint::Fill(2),
        cell: |u| u.username.clone(),
        cmp: |a, b| crate::widgets::table::caseless(&a.username, &b.username),
    },
    Column {
        title: "ROLE",
        sort_key: 'r',
        width: Constraint::Length(9),
        cell: |u| u.role.to_string(),
        cmp: |a, b| a.role.cmp(&b.role),
    },
    // `pinned`: a directory user whose role an admin set (their groups no longer change it).
    Column {
        title: "SOURCE",
        sort_key: 'o',
        width: Constraint::Length(7),
        cell: |u| source_word(u).to_owned(),
        cmp: |a, b| source_word(a).cmp(source_word(b)),
    },
    Column {
        title: "LAST LOGIN",
        sort_key: 'l',
        width: Constraint::Length(20),
        cell: |u| time_cell(u.last_login_at),
        cmp: |a, b| a.last_login_at.cmp(&b.last_login_at),
    },
    Column {
        title: "CREATED",
        sort_key: 'c',
        width: Constraint::Length(10),
        // The day is enough, and leaves room for names.
        cell: |u| time_cell(Some(u.created_at)).chars().take(10).collect(),
        cmp: |a, b| a.created_at.cmp(&b.created_at),
    },
    Column {
        title: "ID",
        sort_key: 'i',
        width: Constraint::Length(6),
        cell: |u| u.id.to_string(),
        cmp: |a, b| a.id.cmp(&b.id),
    },
];

pub struct UsersView {
    pub table: Resource<User>,
}

impl UsersView {
    pub fn new() -> Self {
        UsersView {
            table: Resource::new("user", COLUMNS, |u| u.id.to_string()),
        }
    }
}

impl Default for UsersView {
    fn default() -> Self {
        Self::new()
    }
}

fn username_check(value: &str) -> Result<(), String> {
    username_problem(value).map_or(Ok(()), Err)
}

fn password_check(value: &str) -> Result<(), String> {
    password_problem(value).map_or(Ok(()), Err)
}

/// Both password fields valid and equal.
fn passwords_match(form: &mut Form) -> bool {
    form.validate() && {
        form.value(FieldId::Password) == form.value(FieldId::Repeat)
            || form.fail(FieldId::Repeat, "the two passwords differ")
    }
}

fn password_fields() -> Vec<Field> {
    vec![
        Field::secret(FieldId::Password).checked(password_check),
        Field::secret(FieldId::Repeat),
    ]
}

impl View for UsersView {
    fn title(&self) -> String {
        self.table.title("Users")
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(&[Key::ch('c')], Action::Create, "create a user")
                .footer("create")
                .role(Role::Admin),
            Binding::new(
                &[Key::ch('r')],
                Action::ChangeRole,
                "change the user's role",
            )
            .footer("role")
            .role(Role::Admin),
            Binding::new(&[Key::ch('p')], Action::ResetPassword, "set a new password")
                .footer("password")
                .role(Role::Admin),
            Binding::new(
                &[Key::ch('u')],
                Action::Unpin,
                "unpin a directory user's role",
            )
            .role(Role::Admin),
            Binding::new(
                &[
                    Key::ch('d'),
                    Key::new(KeyCode::Delete),
                ],
                Action::Delete,
                "delete the user (asks first)",
            )
            .footer("delete")
            .role(Role::Admin),
            Binding::new(
                &[Key::new(KeyCode::Enter)],
                Action::Open,
                "show the user's details",
            ),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        self.table
            .render(frame, area, "Users", "No users yet.", ctx.theme);
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        let query = UserQuery {
            limit: Some(plantwatch_shared::api::MAX_PAGE_LIMIT),
            ..UserQuery::default()
        };
        vec![task("loading the users", async move {
            client.list_users(&query).await.map(Reply::Users)
        })]
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Vec<Effect> {
        if action == Action::Create {
            let form = Form::new(
                "New user",
                Purpose::View(CREATE),
                [
                    vec![Field::text(FieldId::Username).checked(username_check)],
                    password_fields(),
                    vec![Field::choice(FieldId::Role, ROLES, "viewer")],
                ]
                .concat(),
            );
            return vec![Effect::Open(Overlay::Form(form))];
        }
        let Some(user) = self.table.selected().cloned() else {
            return vec![Effect::Info("No user selected.".into())];
        };
        let directory = user.source == UserSource::Ldap;
        let overlay = match action {
            Action::ChangeRole => {
                let form = Form::new(
                    format!("Role of {}", user.username),
                    Purpose::View(SET_ROLE),
                    vec![Field::choice(FieldId::Role, ROLES, &user.role.to_string())],
                );
                Overlay::Form(if directory {
                    form.with_note(
                        "A directory user: this pins the role, whatever their groups say \
                         (u unpins it).",
                    )
                } else {
                    form
                })
            }
            Action::ResetPassword if directory => {
                return vec![Effect::Info(format!(
                    "{}'s password is the directory's: change it there.",
                    user.username
                ))];
            }
            Action::Unpin if !user.role_pinned => {
                return vec![Effect::Info(format!(
                    "{}'s role is not pinned.",
                    user.username
                ))];
            }
            Action::Unpin => {
                let Some(client) = ctx.client.cloned() else {
                    return Vec::new();
                };
                let id = user.id;
                return vec![Effect::Call(task("unpinning the role", async move {
                    let request = UpdateUserRequest {
                        role_pinned: Some(false),
                        ..UpdateUserRequest::default()
                    };
                    let user = client.update_user(id, &request).await?;
                    Ok(Reply::UserUpdated {
                        user,
                        what: "role unpinned (their groups decide it at the next check)",
                    })
                }))];
            }
            Action::ResetPassword => Overlay::Form(
                Form::new(
                    format!("New password for {}", user.username),
                    Purpose::View(RESET_PASSWORD),
                    password_fields(),
                )
                .with_note("Their sessions end; tell them the new password."),
            ),
            Action::Delete => Overlay::Confirm(Confirm {
                title: "Delete user".into(),
                question: format!(
                    "Delete user {} ({})? Their sessions end at once. This cannot be undone.",
                    user.username, user.role
                ),
                yes: "delete",
                tag: DELETE,
            }),
            Action::Open => Overlay::Detail {
                title: format!("User {}", user.username),
                lines: vec![
                    ("Username".into(), user.username.clone()),
                    ("Role".into(), user.role.to_string()),
                    ("Source".into(), crate::cells::source_cell(&user)),
                    ("ID".into(), user.id.to_string()),
                    ("Created".into(), time_cell(Some(user.created_at))),
                    ("Updated".into(), time_cell(Some(user.updated_at))),
                    ("Last login".into(), time_cell(user.last_login_at)),
                ],
            },
            _ => return Vec::new(),
        };
        self.table.target = Some(user);
        vec![Effect::Open(overlay)]
    }

    fn on_submit(&mut self, form: &mut Form, ctx: &Ctx) -> Vec<Effect> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        let role = |form: &Form| form.value(FieldId::Role).parse::<Role>().unwrap_or(Role::Viewer);
        let call = match form.purpose {
            Purpose::View(CREATE) => {
                if !passwords_match(form) {
                    return Vec::new();
                }
                let request = CreateUserRequest {
                    username: form.value(FieldId::Username).to_owned(),
                    password: form.secret(FieldId::Password),
                    role: role(form),
                };
                form.submit("creating the user", async move {
                    client.create_user(&request).await.map(Reply::UserCreated)
                })
            }
            Purpose::View(SET_ROLE) | Purpose::View(RESET_PASSWORD) => {
                let Some(target) = &self.table.target else {
                    return Vec::new();
                };
                let (request, what) = if form.purpose == Purpose::View(SET_ROLE) {
                    let request = UpdateUserRequest {
                        role: Some(role(form)),
                        password: None,
                        role_pinned: None,
                    };
                    (request, "role changed")
                } else {
                    if !passwords_match(form) {
                        return Vec::new();
                    }
                    let request = UpdateUserRequest {
                        role: None,
                        password: Some(form.secret(FieldId::Password)),
                        role_pinned: None,
                    };
                    (request, "password reset")
                };
                let id = target.id;
                form.submit("updating the user", async move {
                    let user = client.update_user(id, &request).await?;
                    Ok(Reply::UserUpdated { user, what })
                })
            }
            _ => return Vec::new(),
        };
        vec![Effect::Call(call)]
    }

    fn on_confirm(&mut self, tag: crate::widgets::form::Ask, ctx: &Ctx) -> Vec<Effect> {
        match (tag, self.table.target.clone(), ctx.client.cloned()) {
            (DELETE, Some(user), Some(client)) => vec![
                Effect::Call(task("deleting the user", async move {
                    client.delete_user(user.id).await?;
                    Ok(Reply::UserDeleted(user.username))
                })),
                Effect::Info("Deleting…".into()),
            ],
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        match reply {
            Reply::Users(list) => {
                self.table.set_rows(list.items.clone());
                Vec::new()
            }
            Reply::UserCreated(user) => lifecycle::changed(format!(
                "✔ User {} created ({}).",
                user.username, user.role
            )),
            Reply::UserUpdated { user, what } => {
                lifecycle::changed(format!("✔ {}: {what}.", user.username))
            }
            Reply::UserDeleted(name) => self.table.deleted(name),
            _ => Vec::new(),
        }
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut *self.table)
    }
}
