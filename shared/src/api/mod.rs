//! Request and response documents of the HTTP API under `/api/v1`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Secret;

mod alerts;
mod checks;
mod components;
mod credentials;
mod directory;
mod discovery;
mod event_rules;
mod events;
pub mod ha;
mod metrics;
pub mod modbus;
mod names;
mod nodes;
mod templates;
mod topology;
mod vocabulary;
pub mod vsphere;

pub use alerts::*;
pub use checks::*;
pub use components::*;
pub use credentials::*;
pub use directory::*;
pub use discovery::*;
pub use event_rules::*;
pub use events::*;
pub use metrics::*;
pub use names::UnknownName;
pub use nodes::*;
pub use templates::*;
pub use topology::*;
pub use vocabulary::{AuditAction, ErrorCode};

/// What a signed-in user may do. Ordered: an admin may do all an operator may, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only; credentials masked.
    Viewer,
    /// Manages nodes, discovery and alerts; attaches credentials without reading them.
    Operator,
    /// Everything, including users, settings and credentials in clear.
    Admin,
}

impl Role {
    /// Every role, most privileged first.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    /// The lower-case name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not admin, operator or viewer.
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?} (expected admin, operator or viewer)")]
pub struct ParseRoleError(String);

impl FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "viewer" => Ok(Role::Viewer),
            _ => Err(ParseRoleError(s.to_owned())),
        }
    }
}

/// The error document every failing request answers with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// Body of [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `user_not_found`.
    pub code: ErrorCode,
    /// One sentence for a person.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// Page size of a list when the request names none.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// The largest page a list answers.
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// A page of a list resource.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ListResponse<T> {
    pub items: Vec<T>,
    /// Number of matching items across all pages.
    pub total: u64,
}

/// Query of `GET /api/v1/users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UserQuery {
    /// Only users with this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Only users whose name contains this text (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// `username`, `role`, `created_at` or `last_login_at`; a leading `-` sorts descending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Health {
    pub status: String,
    pub version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
    /// The pair, when the server is one of an active/standby pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<ha::HaHealth>,
}

/// `GET /api/v1/setup`: whether the server still waits for its first admin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SetupStatus {
    pub setup_required: bool,
}

/// `POST /api/v1/setup`: create the first admin with the one-time setup code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    pub code: Secret,
    pub username: String,
    pub password: Secret,
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: Secret,
}

/// Answer to a successful login or setup: the session token, shown only here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    /// `pws_…`; send as `Authorization: Bearer` (also set as an HTTP-only cookie).
    pub token: Secret,
    pub user: User,
    pub session: SessionInfo,
}

/// Expiry of the current session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionInfo {
    /// The session ends at this time whatever happens.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Seconds without a request after which the session ends.
    pub idle_timeout_secs: u64,
}

/// `GET /api/v1/auth/me`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Me {
    pub user: User,
    pub session: SessionInfo,
}

/// A user account, as every endpoint shows it (never with its password hash).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_login_at: Option<OffsetDateTime>,
    /// `local`, or `ldap` for a directory user (their shadow row).
    #[serde(default)]
    pub source: UserSource,
    /// A directory user's role set by an admin rather than by their groups.
    #[serde(default)]
    pub role_pinned: bool,
}

/// `POST /api/v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    pub password: Secret,
    pub role: Role,
}

/// `PATCH /api/v1/users/{id}`: change a user's role and/or reset their password.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// For a directory user: `false` hands the role back to their groups (a role given with
    /// `role` pins it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_pinned: Option<bool>,
}

/// `POST /api/v1/auth/password`: change one's own password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: Secret,
    pub new_password: Secret,
}

/// One row of `GET /api/v1/audit`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// User id of the actor, if the actor was a user that still exists.
    pub user_id: Option<i64>,
    /// Who acted: a username, `setup` or `system`.
    pub actor: String,
    /// What was done, `resource.verb`: `user.create`, `auth.login`, …
    pub action: AuditAction,
    /// What it was done to, `kind:id`.
    pub target: Option<String>,
    /// Source address of the request.
    pub source: Option<String>,
    pub details: Option<serde_json::Value>,
}

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AuditQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only entries about this object, `kind:id` (e.g. `node:12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_mapping_splits_at_the_last_equals_sign() {
        let mapping: GroupRole = "cn=ot-admins,ou=groups,dc=plant=admin".parse().unwrap();
        assert_eq!(mapping.group, "cn=ot-admins,ou=groups,dc=plant");
        assert_eq!(mapping.role, Role::Admin);
        assert_eq!(mapping.to_string(), "cn=ot-admins,ou=groups,dc=plant=admin");
        assert!("cn=x,dc=plant=root".parse::<GroupRole>().is_err());
        assert!("no-role".parse::<GroupRole>().is_err());
        assert!("=admin".parse::<GroupRole>().is_err());
    }

    #[test]
    fn roles_are_ordered_by_privilege() {
        assert!(Role::Admin > Role::Operator);
        assert!(Role::Operator > Role::Viewer);
    }

    #[test]
    fn role_parses_case_insensitively_and_rejects_unknown() {
        assert_eq!("Admin".parse::<Role>().unwrap(), Role::Admin);
        assert_eq!(" viewer ".parse::<Role>().unwrap(), Role::Viewer);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn debug_of_secret_bearing_requests_hides_the_secret() {
        let login = LoginRequest {
            username: "ana".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{login:?}").contains("hunter2"));
        let update = UpdateUserRequest {
            role: None,
            password: Some("hunter2".into()),
            role_pinned: None,
        };
        assert!(!format!("{update:?}").contains("hunter2"));
    }
}
