//! Sign-in through a directory (LDAP, Active Directory): `GET/PUT /api/v1/settings/ldap` and
//! `POST /api/v1/settings/ldap/test`.

use serde::{Deserialize, Serialize};

use super::Role;
use crate::Secret;

/// Seconds a directory has for each step (connect, TLS, each bind and search) by default.
pub const DEFAULT_LDAP_TIMEOUT_SECS: u64 = 5;
/// The longest step timeout an admin may set.
pub const MAX_LDAP_TIMEOUT_SECS: u64 = 60;
/// The user filter of an OpenLDAP directory; `{user}` is the name typed at sign-in, escaped.
pub const OPENLDAP_USER_FILTER: &str = "(uid={user})";
/// The user filter of Active Directory: the account name, and only accounts not disabled (bit 2
/// of `userAccountControl`), so a disabled account is refused at sign-in and loses its sessions
/// at the next check.
pub const AD_USER_FILTER: &str =
    "(&(sAMAccountName={user})(!(userAccountControl:1.2.840.113556.1.4.803:=2)))";
/// The group search filter: groups naming the user (`{dn}`) as a member.
pub const DEFAULT_GROUP_FILTER: &str = "(|(member={dn})(uniqueMember={dn}))";
/// Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: membership through any depth of nesting.
pub const IN_CHAIN_RULE: &str = "1.2.840.113556.1.4.1941";
/// Most directory URLs tried in turn.
pub const MAX_LDAP_URLS: usize = 8;
/// Most group → role mappings.
pub const MAX_GROUP_ROLES: usize = 200;
/// Longest CA bundle accepted, in bytes.
pub const MAX_CA_PEM_BYTES: usize = 64 * 1024;
/// Longest DN, filter or other text setting, in characters.
pub const MAX_LDAP_TEXT: usize = 1024;

/// Where a user account comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserSource {
    /// A password kept by plantwatch.
    #[default]
    Local,
    /// The directory: the password and (unless pinned) the role come from LDAP.
    Ldap,
}

impl UserSource {
    pub fn as_str(self) -> &'static str {
        match self {
            UserSource::Local => "local",
            UserSource::Ldap => "ldap",
        }
    }
}

impl std::fmt::Display for UserSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for UserSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(UserSource::Local),
            "ldap" => Ok(UserSource::Ldap),
            other => Err(format!("unknown user source {other:?}")),
        }
    }
}

/// How a user's groups are found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupLookup {
    /// The user entry's `memberOf` values (Active Directory; OpenLDAP with the memberof
    /// overlay).
    #[default]
    MemberOf,
    /// Groups under the group base matching the group filter (`member={dn}`).
    Search,
    /// Active Directory's in-chain rule: every group, nested at any depth, in one search.
    InChain,
}

impl GroupLookup {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupLookup::MemberOf => "member_of",
            GroupLookup::Search => "search",
            GroupLookup::InChain => "in_chain",
        }
    }
}

impl std::fmt::Display for GroupLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the group → role table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRole {
    /// The group's DN (compared without regard to case or spaces after commas).
    pub group: String,
    pub role: Role,
}

impl std::str::FromStr for GroupRole {
    type Err = String;

    /// `GROUP-DN=role`: the role follows the last `=`, since a DN holds `=` itself.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (group, role) = text
            .trim()
            .rsplit_once('=')
            .filter(|(group, _)| !group.trim().is_empty())
            .ok_or_else(|| {
                format!("{text:?}: expected GROUP-DN=role, e.g. cn=ot-admins,dc=plant=admin")
            })?;
        let role: Role = role.parse().map_err(|e| format!("{text:?}: {e}"))?;
        Ok(GroupRole {
            group: group.trim().to_owned(),
            role,
        })
    }
}

impl std::fmt::Display for GroupRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.group, self.role)
    }
}

/// The directory settings, as `GET /api/v1/settings/ldap` shows them (never the bind password).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LdapSettings {
    /// Whether sign-in asks the directory for names that are not local users.
    pub enabled: bool,
    /// `ldaps://host:636` or `ldap://host:389`, tried in order (fail-over).
    pub urls: Vec<String>,
    /// Upgrade `ldap://` connections with StartTLS.
    pub starttls: bool,
    /// CA certificate(s) to trust, PEM; none: the system's trust store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Accept exactly the server certificate with this SHA-256 fingerprint instead of a CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The service account that searches for users.
    pub bind_dn: String,
    /// Whether a bind password is stored (it is never shown).
    pub bind_password_set: bool,
    pub user_base_dn: String,
    /// `(uid={user})` (OpenLDAP) or `(sAMAccountName={user})` (Active Directory).
    pub user_filter: String,
    pub group_lookup: GroupLookup,
    /// Where groups are searched (`search`, `in_chain`, nested walks); empty: the user base.
    #[serde(default)]
    pub group_base_dn: String,
    /// Filter of the `search` lookup; `{dn}` is the user's DN, `{user}` the name.
    #[serde(default)]
    pub group_filter: String,
    /// Follow groups that are members of groups (for `member_of` and `search`).
    pub nested: bool,
    pub group_roles: Vec<GroupRole>,
    /// The role of a directory user in none of the mapped groups; none: refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_role: Option<Role>,
    /// Seconds each step may take.
    pub timeout_secs: u64,
}

impl Default for LdapSettings {
    fn default() -> Self {
        LdapSettings {
            enabled: false,
            urls: Vec::new(),
            starttls: false,
            ca_pem: None,
            fingerprint: None,
            bind_dn: String::new(),
            bind_password_set: false,
            user_base_dn: String::new(),
            user_filter: OPENLDAP_USER_FILTER.to_owned(),
            group_lookup: GroupLookup::MemberOf,
            group_base_dn: String::new(),
            group_filter: DEFAULT_GROUP_FILTER.to_owned(),
            nested: true,
            group_roles: Vec::new(),
            default_role: None,
            timeout_secs: DEFAULT_LDAP_TIMEOUT_SECS,
        }
    }
}

/// `PUT /api/v1/settings/ldap`: the whole settings document. The bind password is kept when
/// `bind_password` is absent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettingsUpdate {
    pub enabled: bool,
    pub urls: Vec<String>,
    #[serde(default)]
    pub starttls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub bind_dn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password: Option<Secret>,
    pub user_base_dn: String,
    pub user_filter: String,
    #[serde(default)]
    pub group_lookup: GroupLookup,
    #[serde(default)]
    pub group_base_dn: String,
    #[serde(default)]
    pub group_filter: String,
    #[serde(default)]
    pub nested: bool,
    #[serde(default)]
    pub group_roles: Vec<GroupRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_role: Option<Role>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    DEFAULT_LDAP_TIMEOUT_SECS
}

impl LdapSettingsUpdate {
    /// The update that changes nothing but what the caller then sets (the password is kept).
    pub fn from_settings(settings: &LdapSettings) -> Self {
        LdapSettingsUpdate {
            enabled: settings.enabled,
            urls: settings.urls.clone(),
            starttls: settings.starttls,
            ca_pem: settings.ca_pem.clone(),
            fingerprint: settings.fingerprint.clone(),
            bind_dn: settings.bind_dn.clone(),
            bind_password: None,
            user_base_dn: settings.user_base_dn.clone(),
            user_filter: settings.user_filter.clone(),
            group_lookup: settings.group_lookup,
            group_base_dn: settings.group_base_dn.clone(),
            group_filter: settings.group_filter.clone(),
            nested: settings.nested,
            group_roles: settings.group_roles.clone(),
            default_role: settings.default_role,
            timeout_secs: settings.timeout_secs,
        }
    }
}

/// `POST /api/v1/settings/ldap/test`: run the sign-in chain for `username` without signing in.
/// Without a password the user bind is skipped.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapTestRequest {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
}

/// A step of the directory chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LdapStepKind {
    Connect,
    Tls,
    ServiceBind,
    Search,
    Groups,
    UserBind,
    Role,
}

impl LdapStepKind {
    /// How the step is named to a person.
    pub fn label(self) -> &'static str {
        match self {
            LdapStepKind::Connect => "connect",
            LdapStepKind::Tls => "TLS",
            LdapStepKind::ServiceBind => "service bind",
            LdapStepKind::Search => "search",
            LdapStepKind::Groups => "groups",
            LdapStepKind::UserBind => "user bind",
            LdapStepKind::Role => "role",
        }
    }
}

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LdapStep {
    pub step: LdapStepKind,
    pub ok: bool,
    /// What was done or found, or what went wrong.
    pub detail: String,
    pub elapsed_ms: u64,
}

/// A group the user is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapGroup {
    pub dn: String,
    /// Reached through another group rather than directly.
    pub nested: bool,
}

/// The answer of `POST /api/v1/settings/ldap/test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LdapTestReport {
    /// Whether the whole chain succeeded (the user would be let in).
    pub ok: bool,
    pub steps: Vec<LdapStep>,
    /// The URL that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The DN the search found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    pub groups: Vec<LdapGroup>,
    /// The role the groups map to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}
