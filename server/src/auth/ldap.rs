//! Sign-in through a directory (OpenLDAP, Active Directory).
//!
//! One chain serves sign-in, the periodic session check and `plantwatch ldap test`: connect
//! (the URLs in turn), TLS (LDAPS or StartTLS; plain LDAP only on loopback), bind as the service
//! account, search the user, find their groups (nested ones walked or asked for with AD's
//! in-chain rule), bind as the user when a password is given, and map the groups to a role.
//! Every step is bounded by the configured timeout and recorded, so a test names the step that
//! failed. All of it is async: a hanging directory holds no worker thread.
//!
//! An empty password is refused before anything is sent: a simple bind with an empty password
//! is an anonymous bind, which a directory accepts.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, StdStream, ldap_escape};
use plantwatch_shared::api::{
    DEFAULT_GROUP_FILTER, GroupLookup, IN_CHAIN_RULE, LdapGroup, LdapSettings, LdapStep,
    LdapStepKind, LdapTestReport, MAX_CA_PEM_BYTES, MAX_GROUP_ROLES, MAX_LDAP_TEXT,
    MAX_LDAP_TIMEOUT_SECS, MAX_LDAP_URLS, Role,
};
use plantwatch_shared::client::{PresentedChain, RecordingVerifier};
use plantwatch_shared::{Fingerprint, Secret};

/// Deepest nesting of groups followed.
const MAX_NESTING: usize = 10;
/// Most groups collected for one user.
const MAX_GROUPS: usize = 1000;
/// LDAP result code of a refused bind.
const INVALID_CREDENTIALS: u32 = 49;

/// The settings in force and the service account's password (from the vault).
#[derive(Clone)]
pub struct DirectoryConfig {
    pub settings: LdapSettings,
    pub bind_password: Secret,
}

/// Why the chain did not let a user in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No URL answered, TLS failed or a step timed out: the directory cannot be used now.
    Unavailable(String),
    /// The directory answered but the settings do not work (service bind refused, filter
    /// matching several users): an admin must act.
    Misconfigured(String),
    /// No entry matches the name.
    UnknownUser,
    /// The user's bind was refused, or the password was empty.
    WrongPassword,
    /// None of the user's groups is mapped and there is no default role.
    NoGroup,
}

impl Failure {
    /// The reason as written into the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Unavailable(_) => "directory_unavailable",
            Failure::Misconfigured(_) => "directory_misconfigured",
            Failure::UnknownUser => "unknown_user",
            Failure::WrongPassword => "wrong_password",
            Failure::NoGroup => "no_group",
        }
    }
}

/// Who the directory says the user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub dn: String,
    pub groups: Vec<LdapGroup>,
    pub role: Role,
}

/// Runs the chain for `username`; with `password`, the user's bind too. Returns each step, and
/// the verdict.
pub async fn run(
    config: &DirectoryConfig,
    username: &str,
    password: Option<&Secret>,
) -> (LdapTestReport, Result<Outcome, Failure>) {
    let mut chain = Chain {
        settings: &config.settings,
        timeout: Duration::from_secs(config.settings.timeout_secs.clamp(1, MAX_LDAP_TIMEOUT_SECS)),
        report: LdapTestReport {
            ok: false,
            steps: Vec::new(),
            url: None,
            dn: None,
            groups: Vec::new(),
            role: None,
        },
    };
    let verdict = chain.run(config, username, password).await;
    chain.report.ok = verdict.is_ok();
    (chain.report, verdict)
}

struct Chain<'a> {
    settings: &'a LdapSettings,
    timeout: Duration,
    report: LdapTestReport,
}

impl Chain<'_> {
    fn step(&mut self, step: LdapStepKind, ok: bool, detail: impl Into<String>, since: Instant) {
        self.report.steps.push(LdapStep {
            step,
            ok,
            detail: detail.into(),
            elapsed_ms: since.elapsed().as_millis() as u64,
        });
    }

    /// Runs `operation` within the step timeout; a timeout or a transport error is recorded
    /// as the step's failure and makes the directory unavailable.
    async fn within<T>(
        &mut self,
        step: LdapStepKind,
        since: Instant,
        operation: impl Future<Output = ldap3::result::Result<T>>,
    ) -> Result<T, Failure> {
        let problem = match tokio::time::timeout(self.timeout, operation).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => plantwatch_shared::error_chain(&error),
            Err(_) => format!("no answer within {} s", self.timeout.as_secs()),
        };
        self.step(step, false, problem.clone(), since);
        Err(Failure::Unavailable(format!("{}: {problem}", step.label())))
    }

    async fn run(
        &mut self,
        config: &DirectoryConfig,
        username: &str,
        password: Option<&Secret>,
    ) -> Result<Outcome, Failure> {
        if password.is_some_and(|p| p.expose().is_empty()) {
            self.step(
                LdapStepKind::UserBind,
                false,
                "an empty password is refused (it would be an anonymous bind)",
                Instant::now(),
            );
            return Err(Failure::WrongPassword);
        }
        if config.settings.bind_dn.trim().is_empty() || config.bind_password.expose().is_empty() {
            let problem = "no service account is set (bind DN and password)";
            self.step(LdapStepKind::ServiceBind, false, problem, Instant::now());
            return Err(Failure::Misconfigured(problem.to_owned()));
        }
        let mut ldap = self.connect().await?;
        let verdict = self
            .on_connection(&mut ldap, config, username, password)
            .await;
        let _ = tokio::time::timeout(self.timeout, ldap.unbind()).await;
        verdict
    }

    async fn on_connection(
        &mut self,
        ldap: &mut Ldap,
        config: &DirectoryConfig,
        username: &str,
        password: Option<&Secret>,
    ) -> Result<Outcome, Failure> {
        let settings = self.settings;
        // The service account.
        let since = Instant::now();
        let bound = self
            .within(
                LdapStepKind::ServiceBind,
                since,
                ldap.simple_bind(&settings.bind_dn, config.bind_password.expose()),
            )
            .await?;
        if bound.rc != 0 {
            let problem = if bound.rc == INVALID_CREDENTIALS {
                format!(
                    "the directory refused {} (wrong DN or password)",
                    settings.bind_dn
                )
            } else {
                result_text(&bound)
            };
            self.step(LdapStepKind::ServiceBind, false, problem.clone(), since);
            return Err(Failure::Misconfigured(problem));
        }
        self.step(
            LdapStepKind::ServiceBind,
            true,
            format!("bound as {}", settings.bind_dn),
            since,
        );

        // The user.
        let since = Instant::now();
        let filter = settings
            .user_filter
            .replace("{user}", &ldap_escape(username));
        let entries = self
            .search(
                ldap,
                LdapStepKind::Search,
                since,
                &settings.user_base_dn,
                &filter,
                vec!["memberOf"],
            )
            .await?;
        let entry = match entries.len() {
            0 => {
                self.step(
                    LdapStepKind::Search,
                    false,
                    format!("no entry matches {filter} under {}", settings.user_base_dn),
                    since,
                );
                return Err(Failure::UnknownUser);
            }
            1 => entries.into_iter().next().ok_or(Failure::UnknownUser)?,
            n => {
                let problem = format!("{n} entries match {filter}; the filter must find one user");
                self.step(LdapStepKind::Search, false, problem.clone(), since);
                return Err(Failure::Misconfigured(problem));
            }
        };
        self.step(
            LdapStepKind::Search,
            true,
            format!("found {}", entry.dn),
            since,
        );
        self.report.dn = Some(entry.dn.clone());

        // The groups.
        let since = Instant::now();
        let groups = self.groups(ldap, &entry, username, since).await?;
        let nested = groups.iter().filter(|g| g.nested).count();
        let mut detail = match groups.len() {
            0 => "in no group".to_owned(),
            n => format!(
                "{n} group(s), {nested} through nesting ({})",
                settings.group_lookup
            ),
        };
        // Where groups were searched, when they were: a base that holds none of them is the
        // usual reason a nested group is missed.
        if settings.group_lookup != GroupLookup::MemberOf || settings.nested {
            detail.push_str(&format!("; groups searched under {}", group_base(settings)));
        }
        self.step(LdapStepKind::Groups, true, detail, since);
        self.report.groups = groups.clone();

        // The user's own bind: the password check.
        let since = Instant::now();
        match password {
            Some(password) => {
                let bound = self
                    .within(
                        LdapStepKind::UserBind,
                        since,
                        ldap.simple_bind(&entry.dn, password.expose()),
                    )
                    .await?;
                if bound.rc != 0 {
                    let problem = if bound.rc == INVALID_CREDENTIALS {
                        "the directory refused the password".to_owned()
                    } else {
                        result_text(&bound)
                    };
                    self.step(LdapStepKind::UserBind, false, problem, since);
                    return Err(Failure::WrongPassword);
                }
                self.step(LdapStepKind::UserBind, true, "password accepted", since);
            }
            None => self.step(
                LdapStepKind::UserBind,
                true,
                "not tried (no password given)",
                since,
            ),
        }

        // The role.
        let since = Instant::now();
        let Some((role, why)) = role_of(settings, &groups) else {
            self.step(
                LdapStepKind::Role,
                false,
                "none of the user's groups is mapped to a role and there is no default role",
                since,
            );
            return Err(Failure::NoGroup);
        };
        self.step(LdapStepKind::Role, true, format!("{role} ({why})"), since);
        self.report.role = Some(role);
        Ok(Outcome {
            dn: entry.dn,
            groups,
            role,
        })
    }

    /// Opens a connection to the first URL that answers, over TLS unless plain LDAP on
    /// loopback was chosen.
    async fn connect(&mut self) -> Result<Ldap, Failure> {
        let settings = self.settings;
        let (tls, seen) = match tls_config(settings) {
            Ok(pair) => pair,
            Err(problem) => {
                self.step(LdapStepKind::Tls, false, problem.clone(), Instant::now());
                return Err(Failure::Misconfigured(problem));
            }
        };
        let mut last = "no URL is set".to_owned();
        for url in &settings.urls {
            let target = match DirectoryUrl::parse(url) {
                Ok(target) => target,
                Err(problem) => {
                    self.step(
                        LdapStepKind::Connect,
                        false,
                        problem.clone(),
                        Instant::now(),
                    );
                    last = problem;
                    continue;
                }
            };
            let since = Instant::now();
            let address = target.address();
            let connected =
                tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(&address)).await;
            let stream = match connected {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    last = format!("{url}: {error}");
                    self.step(LdapStepKind::Connect, false, last.clone(), since);
                    continue;
                }
                Err(_) => {
                    last = format!("{url}: no connection within {} s", self.timeout.as_secs());
                    self.step(LdapStepKind::Connect, false, last.clone(), since);
                    continue;
                }
            };
            // Each request is one small write, which Nagle's algorithm would hold for the
            // directory's delayed ACK.
            let _ = stream.set_nodelay(true);
            self.step(
                LdapStepKind::Connect,
                true,
                format!("connected to {url}"),
                since,
            );
            let since = Instant::now();
            let starttls = settings.starttls && !target.ldaps;
            if !target.ldaps && !starttls && !target.loopback {
                last = format!(
                    "{url}: plain LDAP is refused except on loopback; use ldaps:// or StartTLS"
                );
                self.step(LdapStepKind::Tls, false, last.clone(), since);
                continue;
            }
            let std_stream = match stream.into_std() {
                Ok(stream) => stream,
                Err(error) => {
                    last = format!("{url}: {error}");
                    self.step(LdapStepKind::Tls, false, last.clone(), since);
                    continue;
                }
            };
            let conn_settings = LdapConnSettings::new()
                .set_conn_timeout(self.timeout)
                .set_starttls(starttls)
                .set_config(tls.clone())
                .set_std_stream(StdStream::Tcp(std_stream));
            let opened = tokio::time::timeout(
                self.timeout,
                LdapConnAsync::with_settings(conn_settings, url),
            )
            .await;
            let (conn, mut ldap) = match opened {
                Ok(Ok(pair)) => pair,
                Ok(Err(error)) => {
                    let refused = seen
                        .lock()
                        .ok()
                        .and_then(|chain| chain.first().map(|der| Fingerprint::of_der(der)));
                    let why = plantwatch_shared::error_chain(&error);
                    last = match refused {
                        Some(fingerprint) if why.contains("invalid peer certificate") => format!(
                            "{url}: the directory's certificate (SHA-256 {}) is not trusted ({}): \
                             give the CA that issued it, or pin this fingerprint once you have \
                             checked it",
                            fingerprint.to_hex(),
                            if pinned(settings).is_some() {
                                "not the pinned certificate"
                            } else {
                                why.rsplit(": ").next().unwrap_or(&why)
                            },
                        ),
                        _ => format!("{url}: {why}"),
                    };
                    self.step(LdapStepKind::Tls, false, last.clone(), since);
                    continue;
                }
                Err(_) => {
                    last = format!(
                        "{url}: no TLS handshake within {} s",
                        self.timeout.as_secs()
                    );
                    self.step(LdapStepKind::Tls, false, last.clone(), since);
                    continue;
                }
            };
            ldap3::drive!(conn);
            let detail = if target.ldaps || starttls {
                let how = if target.ldaps { "LDAPS" } else { "StartTLS" };
                match tokio::time::timeout(self.timeout, ldap.get_peer_certificate()).await {
                    Ok(Ok(Some(der))) => format!(
                        "{how}; certificate SHA-256 {}",
                        Fingerprint::of_der(&der).to_hex()
                    ),
                    _ => how.to_owned(),
                }
            } else {
                "none: plain LDAP on loopback".to_owned()
            };
            self.step(LdapStepKind::Tls, true, detail, since);
            self.report.url = Some(url.clone());
            return Ok(ldap);
        }
        Err(Failure::Unavailable(format!(
            "no directory answered ({last})"
        )))
    }

    /// The entries under `base` matching `filter` (referrals skipped).
    async fn search(
        &mut self,
        ldap: &mut Ldap,
        step: LdapStepKind,
        since: Instant,
        base: &str,
        filter: &str,
        attributes: Vec<&str>,
    ) -> Result<Vec<SearchEntry>, Failure> {
        let result = self
            .within(
                step,
                since,
                ldap.search(base, Scope::Subtree, filter, attributes),
            )
            .await?;
        let (entries, outcome) = (result.0, result.1);
        // 0 success, 4 size limit (the entries so far are kept), 10 referral, 32 no such
        // object (a base that does not exist finds nothing).
        if !matches!(outcome.rc, 0 | 4 | 10 | 32) {
            let problem = format!("search under {base} failed: {}", result_text(&outcome));
            self.step(step, false, problem.clone(), since);
            return Err(Failure::Misconfigured(problem));
        }
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            entries
                .into_iter()
                .filter(|entry| !entry.is_ref() && !entry.is_intermediate())
                .map(SearchEntry::construct)
                .collect::<Vec<_>>()
        }));
        parsed.map_err(|_| {
            let problem = "the directory sent an entry that cannot be read".to_owned();
            self.step(step, false, problem.clone(), since);
            Failure::Misconfigured(problem)
        })
    }

    /// The DNs of the groups under the group base matching `filter`.
    async fn group_dns(
        &mut self,
        ldap: &mut Ldap,
        since: Instant,
        filter: &str,
    ) -> Result<Vec<String>, Failure> {
        let base = group_base(self.settings).to_owned();
        let entries = self
            .search(
                ldap,
                LdapStepKind::Groups,
                since,
                &base,
                filter,
                vec!["1.1"],
            )
            .await?;
        Ok(entries.into_iter().map(|entry| entry.dn).collect())
    }

    /// The user's groups, direct and (when asked) nested.
    async fn groups(
        &mut self,
        ldap: &mut Ldap,
        entry: &SearchEntry,
        username: &str,
        since: Instant,
    ) -> Result<Vec<LdapGroup>, Failure> {
        let settings = self.settings;
        let member_of: Vec<String> = entry
            .attrs
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("memberOf"))
            .flat_map(|(_, values)| values.iter().cloned())
            .collect();
        let direct = match settings.group_lookup {
            GroupLookup::MemberOf => member_of,
            GroupLookup::Search => {
                let filter = settings
                    .group_filter
                    .replace("{dn}", &ldap_escape(entry.dn.as_str()))
                    .replace("{user}", &ldap_escape(username));
                self.group_dns(ldap, since, &filter).await?
            }
            GroupLookup::InChain => {
                let filter = format!(
                    "(member:{IN_CHAIN_RULE}:={})",
                    ldap_escape(entry.dn.as_str())
                );
                let all = self.group_dns(ldap, since, &filter).await?;
                let direct: HashSet<String> = member_of.iter().map(|dn| normalize_dn(dn)).collect();
                return Ok(all
                    .into_iter()
                    .take(MAX_GROUPS)
                    .map(|dn| LdapGroup {
                        nested: !direct.contains(&normalize_dn(&dn)),
                        dn,
                    })
                    .collect());
            }
        };
        let mut seen: HashSet<String> = HashSet::new();
        let mut groups: Vec<LdapGroup> = Vec::new();
        for dn in direct {
            if seen.insert(normalize_dn(&dn)) {
                groups.push(LdapGroup { dn, nested: false });
            }
        }
        if !settings.nested {
            return Ok(groups);
        }
        // Walk up one level per search: the groups that have any of the last level as member.
        let mut level: Vec<String> = groups.iter().map(|g| g.dn.clone()).collect();
        for _ in 0..MAX_NESTING {
            if level.is_empty() || groups.len() >= MAX_GROUPS {
                break;
            }
            let members: String = level
                .iter()
                .map(|dn| {
                    let dn = ldap_escape(dn.as_str());
                    format!("(member={dn})(uniqueMember={dn})")
                })
                .collect();
            let parents = self
                .group_dns(ldap, since, &format!("(|{members})"))
                .await?;
            level = Vec::new();
            for dn in parents {
                if groups.len() < MAX_GROUPS && seen.insert(normalize_dn(&dn)) {
                    level.push(dn.clone());
                    groups.push(LdapGroup { dn, nested: true });
                }
            }
        }
        Ok(groups)
    }
}

/// Where groups are searched: the group base, else the user base.
fn group_base(settings: &LdapSettings) -> &str {
    if settings.group_base_dn.trim().is_empty() {
        &settings.user_base_dn
    } else {
        &settings.group_base_dn
    }
}

/// The highest role any of `groups` maps to, else the default role; with why.
pub fn role_of(settings: &LdapSettings, groups: &[LdapGroup]) -> Option<(Role, String)> {
    let names: HashSet<String> = groups.iter().map(|g| normalize_dn(&g.dn)).collect();
    let best = settings
        .group_roles
        .iter()
        .filter(|mapping| names.contains(&normalize_dn(&mapping.group)))
        .max_by_key(|mapping| mapping.role);
    match best {
        Some(mapping) => Some((mapping.role, format!("from {}", mapping.group))),
        None => settings
            .default_role
            .map(|role| (role, "the default role: no mapped group".to_owned())),
    }
}

/// A DN for comparison: lower case, no spaces around `,` and `=`.
pub fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

fn result_text(result: &ldap3::LdapResult) -> String {
    if result.text.is_empty() {
        format!("LDAP result code {}", result.rc)
    } else {
        format!("LDAP result code {}: {}", result.rc, result.text)
    }
}

/// The rustls configuration: the pinned certificate, else the given CA, else the system's
/// trust store.
fn tls_config(
    settings: &LdapSettings,
) -> Result<(Arc<rustls::ClientConfig>, PresentedChain), String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // The chain is recorded so that a refused certificate can be named by its fingerprint, to be
    // checked and pinned or its CA given.
    let (verifier, seen) = RecordingVerifier::new(Some(verifier(settings, &provider)?));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // Every sign-in opens its own connection with a configuration built for it, so a session
    // ticket could never be used: none is asked for.
    config.resumption = rustls::client::Resumption::disabled();
    Ok((Arc::new(config), seen))
}

/// The pinned fingerprint, if one is set.
fn pinned(settings: &LdapSettings) -> Option<&str> {
    settings
        .fingerprint
        .as_deref()
        .filter(|f| !f.trim().is_empty())
}

/// The certificate verifier the settings ask for.
fn verifier(
    settings: &LdapSettings,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::client::danger::ServerCertVerifier>, String> {
    if let Some(pin) = pinned(settings) {
        let pin: Fingerprint = pin.parse().map_err(|e| format!("{e}"))?;
        return Ok(plantwatch_shared::client::pinned_verifier(pin));
    }
    let roots = match settings
        .ca_pem
        .as_deref()
        .filter(|pem| !pem.trim().is_empty())
    {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in plantwatch_shared::client::pem_certificates(pem)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("the CA certificate is not usable: {e}"))?;
            }
            Arc::new(roots)
        }
        None => plantwatch_shared::client::system_roots(),
    };
    rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map(|verifier| verifier as Arc<dyn rustls::client::danger::ServerCertVerifier>)
        .map_err(|e| format!("no CA to trust the directory's certificate with: {e}"))
}

/// A directory URL, checked.
struct DirectoryUrl {
    ldaps: bool,
    host: String,
    port: u16,
    loopback: bool,
}

impl DirectoryUrl {
    fn parse(url: &str) -> Result<Self, String> {
        let (ldaps, rest) = if let Some(rest) = url.strip_prefix("ldaps://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("ldap://") {
            (false, rest)
        } else {
            return Err(format!(
                "{url:?}: a directory URL starts with ldaps:// or ldap://"
            ));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!(
                "{url:?}: expected ldaps://host[:port] and nothing more"
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port: u16 = port
                    .parse()
                    .map_err(|_| format!("{url:?}: {port:?} is not a port"))?;
                (host, port)
            }
            _ => (authority, if ldaps { 636 } else { 389 }),
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        let loopback = bare.eq_ignore_ascii_case("localhost")
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        Ok(DirectoryUrl {
            ldaps,
            host: host.to_owned(),
            port,
            loopback,
        })
    }

    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// What is wrong with settings an admin wants to save, if anything. `password_stored` says
/// whether a bind password is kept (or comes with the update).
pub fn settings_problem(settings: &LdapSettings, password_stored: bool) -> Option<String> {
    let texts = [
        ("bind DN", &settings.bind_dn),
        ("user base DN", &settings.user_base_dn),
        ("user filter", &settings.user_filter),
        ("group base DN", &settings.group_base_dn),
        ("group filter", &settings.group_filter),
    ];
    for (name, text) in texts {
        if text.chars().count() > MAX_LDAP_TEXT {
            return Some(format!(
                "the {name} must not exceed {MAX_LDAP_TEXT} characters"
            ));
        }
        if text.chars().any(char::is_control) {
            return Some(format!("the {name} must not hold control characters"));
        }
    }
    if settings.urls.len() > MAX_LDAP_URLS {
        return Some(format!("give at most {MAX_LDAP_URLS} directory URLs"));
    }
    for url in &settings.urls {
        let target = match DirectoryUrl::parse(url) {
            Ok(target) => target,
            Err(problem) => return Some(problem),
        };
        if !target.ldaps && !settings.starttls && !target.loopback {
            return Some(format!(
                "{url}: plain LDAP sends passwords in clear; use ldaps:// or StartTLS (plain \
                 LDAP is accepted on loopback only)"
            ));
        }
    }
    if !(1..=MAX_LDAP_TIMEOUT_SECS).contains(&settings.timeout_secs) {
        return Some(format!(
            "the timeout must be between 1 and {MAX_LDAP_TIMEOUT_SECS} seconds"
        ));
    }
    if let Some(pem) = settings.ca_pem.as_deref().filter(|p| !p.trim().is_empty()) {
        if pem.len() > MAX_CA_PEM_BYTES {
            return Some(format!("the CA must not exceed {MAX_CA_PEM_BYTES} bytes"));
        }
        if let Err(problem) = plantwatch_shared::client::pem_certificates(pem) {
            return Some(problem);
        }
    }
    if let Some(pin) = pinned(settings)
        && let Err(error) = pin.parse::<Fingerprint>()
    {
        return Some(error.to_string());
    }
    if !settings.user_filter.is_empty() && !filter_shaped(&settings.user_filter, "{user}") {
        return Some(
            "the user filter must be one parenthesised filter naming {user}, e.g. (uid={user})"
                .into(),
        );
    }
    if settings.group_lookup == GroupLookup::Search
        && !filter_shaped(&settings.group_filter, "{dn}")
        && !filter_shaped(&settings.group_filter, "{user}")
    {
        return Some(format!(
            "the group filter must be one parenthesised filter naming {{dn}} or {{user}}, e.g. {DEFAULT_GROUP_FILTER}"
        ));
    }
    if settings.group_roles.len() > MAX_GROUP_ROLES {
        return Some(format!("map at most {MAX_GROUP_ROLES} groups"));
    }
    for mapping in &settings.group_roles {
        if mapping.group.trim().is_empty() || !mapping.group.contains('=') {
            return Some(format!(
                "{:?} is not a group DN (expected cn=…,dc=…)",
                mapping.group
            ));
        }
        if mapping.group.chars().count() > MAX_LDAP_TEXT
            || mapping.group.chars().any(char::is_control)
        {
            return Some(format!(
                "the group DN {:?} is too long or holds control characters",
                mapping.group
            ));
        }
    }
    if settings.enabled {
        if settings.urls.is_empty() {
            return Some("give at least one directory URL (ldaps://host:636)".into());
        }
        if settings.bind_dn.trim().is_empty() || !password_stored {
            return Some(
                "give the service account's bind DN and password (an anonymous bind is never used)"
                    .into(),
            );
        }
        if settings.user_base_dn.trim().is_empty() {
            return Some("give the base DN under which users are searched".into());
        }
        if settings.group_roles.is_empty() && settings.default_role.is_none() {
            return Some(
                "map at least one group to a role (or set a default role): nobody could sign in"
                    .into(),
            );
        }
    }
    None
}

/// Whether `filter` is one well-formed LDAP filter naming `placeholder`.
fn filter_shaped(filter: &str, placeholder: &str) -> bool {
    // ldap3's own parser, the one each search uses, on the filter as a sign-in would fill it.
    let filled = filter.replace("{user}", "x").replace("{dn}", "cn=x");
    // (It takes a bare `uid=x` too, which other clients and the docs' examples never do.)
    filter.starts_with('(') && filter.contains(placeholder) && ldap3::parse_filter(filled).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantwatch_shared::api::GroupRole;

    fn mapped(pairs: &[(&str, Role)]) -> LdapSettings {
        LdapSettings {
            group_roles: pairs
                .iter()
                .map(|(group, role)| GroupRole {
                    group: (*group).to_owned(),
                    role: *role,
                })
                .collect(),
            ..LdapSettings::default()
        }
    }

    fn group(dn: &str) -> LdapGroup {
        LdapGroup {
            dn: dn.to_owned(),
            nested: false,
        }
    }

    #[test]
    fn the_highest_mapped_role_wins_and_dns_compare_loosely() {
        let settings = mapped(&[
            ("cn=Viewers,dc=plant", Role::Viewer),
            ("cn=Admins, dc=plant", Role::Admin),
        ]);
        let groups = [group("CN=viewers,DC=plant"), group("cn=admins,dc=plant")];
        assert_eq!(role_of(&settings, &groups).map(|r| r.0), Some(Role::Admin));
        assert_eq!(role_of(&settings, &[group("cn=other,dc=plant")]), None);
        let with_default = LdapSettings {
            default_role: Some(Role::Viewer),
            ..settings
        };
        assert_eq!(
            role_of(&with_default, &[group("cn=other,dc=plant")]).map(|r| r.0),
            Some(Role::Viewer)
        );
    }

    #[test]
    fn urls_are_checked_and_plain_ldap_is_for_loopback_only() {
        let ok = |url: &str, starttls| {
            let settings = LdapSettings {
                urls: vec![url.to_owned()],
                starttls,
                ..LdapSettings::default()
            };
            settings_problem(&settings, true)
        };
        assert_eq!(ok("ldaps://dc1.plant.local", false), None);
        assert_eq!(ok("ldaps://dc1.plant.local:3269/", false), None);
        assert_eq!(ok("ldap://dc1.plant.local", true), None);
        assert_eq!(ok("ldap://127.0.0.1:3389", false), None);
        assert_eq!(ok("ldap://[::1]:3389", false), None);
        assert!(
            ok("ldap://dc1.plant.local", false)
                .unwrap()
                .contains("in clear")
        );
        assert!(ok("http://dc1", false).unwrap().contains("ldaps://"));
        assert!(ok("ldaps://dc1:x", false).unwrap().contains("port"));
        assert!(
            ok("ldaps://u@dc1/dc=x", false)
                .unwrap()
                .contains("nothing more")
        );
        assert_eq!(DirectoryUrl::parse("ldaps://dc1").unwrap().port, 636);
        assert_eq!(DirectoryUrl::parse("ldap://dc1").unwrap().port, 389);
    }

    #[test]
    fn enabling_needs_a_service_account_a_base_and_a_mapping() {
        let mut settings = LdapSettings {
            enabled: true,
            urls: vec!["ldaps://dc1".into()],
            bind_dn: "cn=svc,dc=plant".into(),
            user_base_dn: "dc=plant".into(),
            ..mapped(&[("cn=ops,dc=plant", Role::Operator)])
        };
        assert_eq!(settings_problem(&settings, true), None);
        assert!(
            settings_problem(&settings, false)
                .unwrap()
                .contains("anonymous")
        );
        settings.group_roles.clear();
        assert!(
            settings_problem(&settings, true)
                .unwrap()
                .contains("nobody")
        );
        settings.default_role = Some(Role::Viewer);
        settings.user_filter = "uid={user}".into();
        assert!(
            settings_problem(&settings, true)
                .unwrap()
                .contains("user filter")
        );
        settings.user_filter = "(&(objectClass=person)(uid={user}))".into();
        assert_eq!(settings_problem(&settings, true), None);
        settings.ca_pem = Some("not a certificate".into());
        assert!(settings_problem(&settings, true).unwrap().contains("CA"));
    }

    #[test]
    fn filters_must_be_one_well_formed_expression() {
        use plantwatch_shared::api::AD_USER_FILTER;
        assert!(filter_shaped("(uid={user})", "{user}"));
        assert!(filter_shaped("(&(a=b)(uid={user}))", "{user}"));
        assert!(!filter_shaped("(uid={user})(x=y)", "{user}"));
        assert!(!filter_shaped("(uid={user}", "{user}"));
        assert!(!filter_shaped("(uid=x)", "{user}"));
        assert!(!filter_shaped("(|(uid={user})", "{user}"));
        assert!(filter_shaped(AD_USER_FILTER, "{user}"));
        assert!(filter_shaped(DEFAULT_GROUP_FILTER, "{dn}"));
    }

    #[tokio::test]
    async fn an_empty_password_is_refused_before_anything_is_sent() {
        // No URL could be reached: the refusal comes before any connection.
        let config = DirectoryConfig {
            settings: LdapSettings {
                urls: vec!["ldap://127.0.0.1:9".into()],
                bind_dn: "cn=svc".into(),
                ..LdapSettings::default()
            },
            bind_password: Secret::from("x"),
        };
        let (report, verdict) = run(&config, "ana", Some(&Secret::from(""))).await;
        assert_eq!(verdict, Err(Failure::WrongPassword));
        assert_eq!(report.steps.len(), 1);
        assert_eq!(report.steps[0].step, LdapStepKind::UserBind);
        assert!(!report.steps.iter().any(|s| s.step == LdapStepKind::Connect));
    }
}
