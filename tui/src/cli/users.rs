//! `plantwatch users list|create|set-role|reset-password|delete` (admins).

use clap::Subcommand;
use plantwatch_shared::api::{CreateUserRequest, Role, UpdateUserRequest, User, UserQuery};
use plantwatch_shared::{Client, Secret};

use super::{Session, ask_new_secret, confirm, read_stdin_secret};
use crate::cells::{source_cell, time_cell};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users.
    #[command(alias = "ls")]
    List,
    /// Create a user.
    Create {
        username: String,
        /// admin, operator or viewer.
        #[arg(long, short = 'r', default_value = "viewer")]
        role: Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role (a directory user's role is then pinned: their groups no longer
    /// change it).
    SetRole {
        /// Username or id.
        user: String,
        /// admin, operator or viewer.
        role: Role,
    },
    /// Hand a directory user's role back to their groups.
    Unpin {
        /// Username or id.
        user: String,
    },
    /// Set a new password for a user; their sessions end.
    ResetPassword {
        /// Username or id.
        user: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user.
    #[command(alias = "rm")]
    Delete {
        /// Username or id.
        user: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

const ALL: UserQuery = UserQuery {
    role: None,
    q: None,
    sort: None,
    limit: Some(plantwatch_shared::api::MAX_PAGE_LIMIT),
    offset: None,
};

/// A user by name (case-insensitive) or id.
async fn find(client: &Client, user: &str) -> anyhow::Result<User> {
    if let Ok(id) = user.parse::<i64>() {
        return Ok(client.get_user(id).await?);
    }
    let users = client.list_users(&ALL).await?;
    users
        .items
        .into_iter()
        .find(|u| u.username.eq_ignore_ascii_case(user))
        .ok_or_else(|| anyhow::anyhow!("there is no user {user:?}"))
}

fn new_password(from_stdin: bool) -> anyhow::Result<Secret> {
    if from_stdin {
        return read_stdin_secret("password");
    }
    ask_new_secret(
        "Password",
        "no terminal to ask for the password on; use --password-stdin",
    )
}

fn print_user(session: &Session, user: &User) -> anyhow::Result<()> {
    session.print(user, HEADERS, vec![row(user)])
}

const HEADERS: &[&str] = &["ID", "USERNAME", "ROLE", "SOURCE", "CREATED", "LAST LOGIN"];

fn row(user: &User) -> Vec<String> {
    vec![
        user.id.to_string(),
        user.username.clone(),
        user.role.to_string(),
        source_cell(user),
        time_cell(Some(user.created_at)),
        time_cell(user.last_login_at),
    ]
}

pub async fn run(session: &Session, command: UsersCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        UsersCommand::List => {
            let users = client.list_users(&ALL).await?;
            let rows = users.items.iter().map(row).collect();
            session.print(&users, HEADERS, rows)
        }
        UsersCommand::Create {
            username,
            role,
            password_stdin,
        } => {
            let password = new_password(password_stdin)?;
            let user = client
                .create_user(&CreateUserRequest {
                    username,
                    password,
                    role,
                })
                .await?;
            print_user(session, &user)
        }
        UsersCommand::SetRole { user, role } => {
            let target = find(&client, &user).await?;
            let request = UpdateUserRequest {
                role: Some(role),
                password: None,
                role_pinned: None,
            };
            let updated = client.update_user(target.id, &request).await?;
            print_user(session, &updated)
        }
        UsersCommand::Unpin { user } => {
            let target = find(&client, &user).await?;
            let request = UpdateUserRequest {
                role_pinned: Some(false),
                ..UpdateUserRequest::default()
            };
            let updated = client.update_user(target.id, &request).await?;
            print_user(session, &updated)
        }
        UsersCommand::ResetPassword {
            user,
            password_stdin,
        } => {
            let target = find(&client, &user).await?;
            let request = UpdateUserRequest {
                role: None,
                password: Some(new_password(password_stdin)?),
                role_pinned: None,
            };
            let updated = client.update_user(target.id, &request).await?;
            print_user(session, &updated)
        }
        UsersCommand::Delete { user, yes } => {
            let target = find(&client, &user).await?;
            confirm(
                yes,
                &format!("Delete user {} ({})?", target.username, target.role),
            )?;
            client.delete_user(target.id).await?;
            println!("Deleted user {}.", target.username);
            Ok(())
        }
    }
}
