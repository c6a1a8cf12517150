//! `plantwatch ldap show|set|test` (admins): sign-in through the plant's directory.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use plantwatch_shared::Secret;
use plantwatch_shared::api::{
    AD_USER_FILTER, GroupLookup, LdapSettingsUpdate, LdapTestRequest, OPENLDAP_USER_FILTER,
};

use super::{Session, ask_secret, read_stdin_secret, usage};
use crate::cells::{ldap_report_rows, ldap_settings_rows};

#[derive(Debug, Subcommand)]
pub enum LdapCommand {
    /// Show the directory settings (never the bind password).
    Show,
    /// Change the directory settings; what is not given stays as it is.
    Set(Box<SetArgs>),
    /// Run the sign-in chain for a user step by step, without signing in.
    Test {
        /// The name the user would type at sign-in.
        username: String,
        /// Also check the user's password (asked for, or read from standard input).
        #[arg(long)]
        password: bool,
        /// Read the user's password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Group lookup as typed on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Lookup {
    /// The user's memberOf attribute (AD; OpenLDAP with the memberof overlay).
    MemberOf,
    /// Groups under the group base matching the group filter.
    Search,
    /// Active Directory's in-chain rule (nested groups in one search).
    InChain,
}

impl From<Lookup> for GroupLookup {
    fn from(lookup: Lookup) -> Self {
        match lookup {
            Lookup::MemberOf => GroupLookup::MemberOf,
            Lookup::Search => GroupLookup::Search,
            Lookup::InChain => GroupLookup::InChain,
        }
    }
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// Let names that are not local users sign in through the directory.
    #[arg(long, conflicts_with = "disable")]
    enable: bool,
    /// Stop asking the directory: local users only; directory users lose their sessions at the
    /// next check.
    #[arg(long)]
    disable: bool,
    /// Directory URL, ldaps://host:636 or ldap://host:389 (repeat for fail-over, tried in
    /// order); replaces the list.
    #[arg(long = "url", value_name = "URL")]
    urls: Vec<String>,
    /// Upgrade ldap:// connections with StartTLS (`--starttls false` to stop).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    starttls: Option<bool>,
    /// Trust this CA (PEM file) for the directory's certificate; `-` clears it.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Accept exactly the certificate with this SHA-256 fingerprint; `-` clears it.
    #[arg(long, value_name = "SHA256")]
    fingerprint: Option<String>,
    /// DN of the service account that searches users.
    #[arg(long, value_name = "DN")]
    bind_dn: Option<String>,
    /// Ask for the service account's password (or read it from standard input with
    /// --bind-password-stdin).
    #[arg(long)]
    bind_password: bool,
    /// Read the service account's password from the first line of standard input.
    #[arg(long)]
    bind_password_stdin: bool,
    /// Base DN under which users are searched.
    #[arg(long, value_name = "DN")]
    user_base: Option<String>,
    /// User filter, `{user}` standing for the name typed: (uid={user}) for OpenLDAP,
    /// (sAMAccountName={user}) for Active Directory.
    #[arg(long, value_name = "FILTER")]
    user_filter: Option<String>,
    /// Preset for Active Directory: sAMAccountName of an enabled account, groups by the in-chain
    /// rule (nested to any depth).
    #[arg(long, conflicts_with = "openldap")]
    active_directory: bool,
    /// Preset for OpenLDAP: uid and memberOf, nested groups walked.
    #[arg(long)]
    openldap: bool,
    /// How groups are found.
    #[arg(long, value_enum)]
    groups: Option<Lookup>,
    /// Base DN under which groups are searched (default: the user base).
    #[arg(long, value_name = "DN")]
    group_base: Option<String>,
    /// Filter of the `search` lookup, `{dn}` standing for the user's DN.
    #[arg(long, value_name = "FILTER")]
    group_filter: Option<String>,
    /// Follow nested groups (`--nested false` to stop).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    nested: Option<bool>,
    /// Map a group to a role: "GROUP-DN=admin|operator|viewer" (repeat; the highest role of a
    /// user's groups wins). Replaces the table.
    #[arg(long = "map", value_name = "DN=ROLE")]
    maps: Vec<String>,
    /// Remove every group mapping.
    #[arg(long, conflicts_with = "maps")]
    clear_maps: bool,
    /// Role of a directory user in no mapped group (`none`: refused).
    #[arg(long, value_name = "ROLE")]
    default_role: Option<String>,
    /// Seconds each step (connect, TLS, bind, search) may take.
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
}

/// A value that `-` clears.
fn clearable(text: String) -> Option<String> {
    (text.trim() != "-").then_some(text)
}

/// `args` applied to `update`.
fn apply(args: SetArgs, update: &mut LdapSettingsUpdate) -> anyhow::Result<()> {
    if args.enable {
        update.enabled = true;
    }
    if args.disable {
        update.enabled = false;
    }
    if !args.urls.is_empty() {
        update.urls = args.urls;
    }
    if let Some(starttls) = args.starttls {
        update.starttls = starttls;
    }
    if let Some(path) = args.ca_file {
        update.ca_pem = if path.as_os_str() == "-" {
            None
        } else {
            let pem = std::fs::read_to_string(&path)
                .with_context(|| format!("reading the CA file {}", path.display()))?;
            Some(pem)
        };
    }
    if let Some(fingerprint) = args.fingerprint {
        update.fingerprint = clearable(fingerprint);
    }
    if args.active_directory {
        update.user_filter = AD_USER_FILTER.to_owned();
        update.group_lookup = GroupLookup::InChain;
    }
    if args.openldap {
        update.user_filter = OPENLDAP_USER_FILTER.to_owned();
        update.group_lookup = GroupLookup::MemberOf;
        update.nested = true;
    }
    if let Some(dn) = args.bind_dn {
        update.bind_dn = dn;
    }
    if args.bind_password_stdin {
        update.bind_password = Some(read_stdin_secret("bind password")?);
    } else if args.bind_password {
        update.bind_password = Some(ask_secret(
            "Bind password: ",
            "no terminal to ask for the bind password on; use --bind-password-stdin",
        )?);
    }
    if let Some(base) = args.user_base {
        update.user_base_dn = base;
    }
    if let Some(filter) = args.user_filter {
        update.user_filter = filter;
    }
    if let Some(lookup) = args.groups {
        update.group_lookup = lookup.into();
    }
    if let Some(base) = args.group_base {
        update.group_base_dn = base;
    }
    if let Some(filter) = args.group_filter {
        update.group_filter = filter;
    }
    if let Some(nested) = args.nested {
        update.nested = nested;
    }
    if args.clear_maps {
        update.group_roles.clear();
    }
    if !args.maps.is_empty() {
        update.group_roles = match args.maps.iter().map(|text| text.parse()).collect() {
            Ok(mappings) => mappings,
            Err(problem) => usage!("--map {problem}"),
        };
    }
    if let Some(role) = args.default_role {
        update.default_role = match role.trim() {
            "none" | "-" | "" => None,
            text => match text.parse() {
                Ok(role) => Some(role),
                Err(error) => usage!("--default-role: {error} (or none)"),
            },
        };
    }
    if let Some(timeout) = args.timeout {
        update.timeout_secs = timeout;
    }
    Ok(())
}

pub async fn run(session: &Session, command: LdapCommand) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    match command {
        LdapCommand::Show => {
            let settings = client.ldap_settings().await?;
            session.print(
                &settings,
                &["SETTING", "VALUE"],
                ldap_settings_rows(&settings),
            )
        }
        LdapCommand::Set(args) => {
            let current = client.ldap_settings().await?;
            let mut update = LdapSettingsUpdate::from_settings(&current);
            apply(*args, &mut update)?;
            let saved = client.set_ldap_settings(&update).await?;
            session.print(&saved, &["SETTING", "VALUE"], ldap_settings_rows(&saved))
        }
        LdapCommand::Test {
            username,
            password,
            password_stdin,
        } => {
            let password: Option<Secret> = if password_stdin {
                Some(read_stdin_secret("password")?)
            } else if password {
                Some(ask_secret(
                    &format!("Password of {username}: "),
                    "no terminal to ask for the password on; use --password-stdin",
                )?)
            } else {
                None
            };
            let report = client
                .test_ldap(&LdapTestRequest { username, password })
                .await?;
            session.print(
                &report,
                &["STEP", "RESULT", "TIME", "DETAIL"],
                ldap_report_rows(&report),
            )?;
            if report.ok {
                Ok(())
            } else {
                let failed = report.steps.iter().find(|s| !s.ok);
                anyhow::bail!(
                    "the directory chain failed at {}",
                    failed.map_or("an unknown step", |s| s.step.label())
                )
            }
        }
    }
}
