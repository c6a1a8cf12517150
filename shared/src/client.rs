//! The typed async client of the plantwatch API, over reqwest + rustls.
//!
//! HTTPS connections are pinned: the client accepts exactly the server certificate whose SHA-256
//! fingerprint it was given, whatever its issuer or host names, like SSH's known hosts. A
//! different certificate fails with [`Error::FingerprintMismatch`], never with a silent
//! fallback. [`Client::probe_fingerprint`] reads a server's fingerprint for a first-contact trust
//! decision without sending anything but a health check.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::de::DeserializeOwned;

use crate::api;
use crate::api::{
    AckRequest, Alert, AlertDetail, AlertQuery, AlertRule, ApproveRequest, AttachRequest,
    AuditEntry, AuditQuery, ChangePasswordRequest, Channel, ChannelSpec, ChannelTest,
    CollectorConfig, CollectorReport, Component, ComponentQuery, ComponentSelf,
    CreateCredentialRequest, CreateTokenRequest, CreateUserRequest, CreatedToken, Credential,
    CredentialQuery, EnrollmentToken, ErrorBody, ErrorCode, ExportFormat, ExportQuery, Health,
    HealthChange, Heartbeat, HeartbeatAck, HostWatch, ImportQuery, ImportReport, ListResponse,
    LoginRequest, LoginResponse, MaintenanceSpec, MaintenanceWindow, Me, MetricQuery,
    MetricsAnswer, Node, NodeHost, NodeQuery, NodeSpec, RegisterRequest, Registration,
    RulePreviewRow, RuleSpec, SeriesInfo, SeriesQuery, SetupRequest, SetupStatus, Summary,
    Template, TemplateReload, TokenQuery, UpdateCredentialRequest, UpdateNodeRequest,
    UpdateUserRequest, User, UserQuery,
};
use crate::{Error, Fingerprint, Result, Secret};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest error text from a non-plantwatch answer that is shown to the user.
const MAX_FOREIGN_ERROR_TEXT: usize = 200;

/// A connection profile to one plantwatch server, or to an active/standby pair: a request
/// that cannot connect, or that the standby answers `503 standby`, is sent again to the other
/// server (clones share which server is current, so a daemon's tasks follow together).
#[derive(Clone)]
pub struct Client {
    pair: Arc<Mutex<Pair>>,
    token: Option<Secret>,
    api_key: Option<Secret>,
}

/// One server: its URL, its own pinned HTTP client, and the fingerprint it last presented.
#[derive(Clone)]
struct Endpoint {
    http: reqwest::Client,
    base: String,
    pin: Option<Fingerprint>,
    seen: Arc<Mutex<Option<Fingerprint>>>,
}

/// The servers a client knows and which one it talks to.
struct Pair {
    endpoints: Vec<Endpoint>,
    current: usize,
    /// The term of the last answer that carried one ([`api::ha::TERM_HEADER`]).
    term: Option<u64>,
    /// Never learns other servers (a server's own in-process collector).
    alone: bool,
}

/// The answer to a collector's configuration pull.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigPull {
    /// `304`: the configuration whose hash was sent is still current.
    NotModified,
    /// A new configuration: its SHA-256 (the `ETag`), the document as sent, and parsed.
    Changed {
        sha256: String,
        body: Vec<u8>,
        config: Box<CollectorConfig>,
    },
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.current();
        f.debug_struct("Client")
            .field("base", &current.base)
            .field("pin", &current.pin)
            .field("token", &self.token)
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// Checks a server URL and returns it without a trailing slash. A URL without a scheme is taken
/// as `https://`.
pub fn normalize_url(url: &str) -> Result<String> {
    let trimmed = url.trim();
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(invalid(
            "the scheme must be https (or http for --insecure-http servers)",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("a server URL takes no query or fragment"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

impl Client {
    /// A client for `url`. An `https` URL needs the server's pinned fingerprint; a plain `http`
    /// URL (a server started with `--insecure-http` on loopback) takes none.
    pub fn new(url: &str, pin: Option<Fingerprint>) -> Result<Self> {
        let base = normalize_url(url)?;
        if base.starts_with("https://") && pin.is_none() {
            return Err(Error::Tls(format!(
                "no fingerprint is pinned for {base}; log in once to trust the server"
            )));
        }
        Ok(Client::over(Endpoint::build(base, pin, false)?))
    }

    fn over(endpoint: Endpoint) -> Client {
        Client {
            pair: Arc::new(Mutex::new(Pair {
                endpoints: vec![endpoint],
                current: 0,
                term: None,
                alone: false,
            })),
            token: None,
            api_key: None,
        }
    }

    /// The same client, also knowing the other servers of a pair (from a join code, an
    /// enrollment or a console context). Servers it knows already are skipped.
    pub fn with_alternates(self, alternates: &[api::ha::ServerAddress]) -> Result<Self> {
        for other in alternates {
            self.add_server(other)?;
        }
        Ok(self)
    }

    /// Adds a server of the pair unless it is known; an https one needs its fingerprint.
    fn add_server(&self, address: &api::ha::ServerAddress) -> Result<()> {
        let base = normalize_url(&address.url)?;
        if base.starts_with("https://") && address.fingerprint.is_none() {
            return Err(Error::Tls(format!("no fingerprint is given for {base}")));
        }
        let mut pair = self.lock();
        if pair.endpoints.iter().any(|e| e.base == base) {
            return Ok(());
        }
        pair.endpoints
            .push(Endpoint::build(base, address.fingerprint, false)?);
        Ok(())
    }

    /// The same client, talking to its one server only: it learns no other server of a pair
    /// (the server's own in-process collector, which must never leave it).
    pub fn alone(self) -> Self {
        self.lock().alone = true;
        self
    }

    /// Learns the pair from a server's own account of it (`GET /healthz`, a standby's `503`)
    /// and turns to its active server. The account comes from a server this client already
    /// trusts by fingerprint, so the fingerprints it names are trusted in turn.
    pub fn learn(&self, ha: &api::ha::HaHealth) {
        if self.lock().alone {
            return;
        }
        for server in &ha.servers {
            if let Err(error) = self.add_server(server) {
                tracing::warn!(url = %server.url, %error, "Cannot use a server of the pair.");
            }
        }
        if let Some(active) = &ha.active
            && let Ok(base) = normalize_url(&active.url)
        {
            let mut pair = self.lock();
            if let Some(index) = pair.endpoints.iter().position(|e| e.base == base) {
                pair.current = index;
            }
        }
    }

    /// Every server this client knows, the current one first.
    pub fn servers(&self) -> Vec<api::ha::ServerAddress> {
        let pair = self.lock();
        let n = pair.endpoints.len();
        (0..n)
            .map(|i| &pair.endpoints[(pair.current + i) % n])
            .map(|e| api::ha::ServerAddress {
                url: e.base.clone(),
                fingerprint: e.pin,
            })
            .collect()
    }

    /// The term of the last answer that carried one: it changes when another server of the
    /// pair has taken over.
    pub fn term(&self) -> Option<u64> {
        self.lock().term
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pair> {
        self.pair
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn current(&self) -> Endpoint {
        let pair = self.lock();
        pair.endpoints[pair.current].clone()
    }
}

impl Endpoint {
    fn build(base: String, pin: Option<Fingerprint>, accept_any: bool) -> Result<Self> {
        let seen = Arc::new(Mutex::new(None));
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("plantwatch/", env!("CARGO_PKG_VERSION")));
        if base.starts_with("https://") {
            let verifier = PinningVerifier::new(if accept_any { None } else { pin }, seen.clone());
            let mut config = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::Tls(e.to_string()))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            builder = builder.tls_backend_preconfigured(config);
        }
        let http = builder.build().map_err(|e| Error::Tls(error_chain(&e)))?;
        Ok(Endpoint {
            http,
            base,
            pin,
            seen,
        })
    }

    fn seen_fingerprint(&self) -> Option<Fingerprint> {
        self.seen.lock().ok().and_then(|slot| *slot)
    }

    fn transport_error(&self, error: &reqwest::Error) -> Error {
        if let (Some(expected), Some(actual)) = (self.pin, self.seen_fingerprint())
            && expected != actual
        {
            return Error::FingerprintMismatch { expected, actual };
        }
        Error::Connect {
            url: self.base.clone(),
            reason: error_chain(error),
        }
    }
}

impl Client {
    /// Connects to `url` accepting any certificate, and returns the fingerprint the server
    /// presented (`None` for plain HTTP). Only a health check is sent, no credentials.
    pub async fn probe_fingerprint(url: &str) -> Result<Option<Fingerprint>> {
        let endpoint = Endpoint::build(normalize_url(url)?, None, true)?;
        Client::over(endpoint.clone()).health().await?;
        Ok(endpoint.seen_fingerprint())
    }

    /// The same client, sending `token` as its bearer token.
    pub fn with_token(mut self, token: impl Into<Secret>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The same client, authenticating as a collector or agent with its `pwk_…` key.
    pub fn with_api_key(mut self, key: impl Into<Secret>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Replaces or clears the bearer token.
    pub fn set_token(&mut self, token: Option<Secret>) {
        self.token = token;
    }

    /// The normalised URL of the server currently used.
    pub fn base_url(&self) -> String {
        self.current().base
    }

    /// The pinned fingerprint of the server currently used, if any.
    pub fn pinned(&self) -> Option<Fingerprint> {
        self.current().pin
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<Health> {
        self.json(self.request(Method::GET, "/healthz")).await
    }

    /// `GET /api/v1/setup`.
    pub async fn setup_status(&self) -> Result<SetupStatus> {
        self.json(self.request(Method::GET, "/api/v1/setup")).await
    }

    /// `POST /api/v1/setup`: creates the first admin and signs in as them.
    pub async fn setup(&self, request: &SetupRequest) -> Result<LoginResponse> {
        self.json(self.request(Method::POST, "/api/v1/setup").json(request))
            .await
    }

    /// `POST /api/v1/auth/login`. The caller keeps the returned token (see [`Self::with_token`]).
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginResponse> {
        let body = LoginRequest {
            username: username.to_owned(),
            password: password.into(),
        };
        self.json(self.request(Method::POST, "/api/v1/auth/login").json(&body))
            .await
    }

    /// `POST /api/v1/auth/logout`: ends the current session on the server.
    pub async fn logout(&self) -> Result<()> {
        self.empty(self.request(Method::POST, "/api/v1/auth/logout"))
            .await
    }

    /// `GET /api/v1/auth/me`.
    pub async fn me(&self) -> Result<Me> {
        self.json(self.request(Method::GET, "/api/v1/auth/me"))
            .await
    }

    /// `POST /api/v1/auth/password`. Other sessions of the user end; this one stays.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<()> {
        let body = ChangePasswordRequest {
            current_password: current.into(),
            new_password: new.into(),
        };
        self.empty(
            self.request(Method::POST, "/api/v1/auth/password")
                .json(&body),
        )
        .await
    }

    /// `GET /api/v1/users` (admin).
    pub async fn list_users(&self, query: &UserQuery) -> Result<ListResponse<User>> {
        self.json(self.request(Method::GET, "/api/v1/users").query(query))
            .await
    }

    /// `GET /api/v1/users/{id}` (admin).
    pub async fn get_user(&self, id: i64) -> Result<User> {
        self.json(self.request(Method::GET, &format!("/api/v1/users/{id}")))
            .await
    }

    /// `POST /api/v1/users` (admin).
    pub async fn create_user(&self, request: &CreateUserRequest) -> Result<User> {
        self.json(self.request(Method::POST, "/api/v1/users").json(request))
            .await
    }

    /// `PATCH /api/v1/users/{id}` (admin): role change and/or password reset.
    pub async fn update_user(&self, id: i64, request: &UpdateUserRequest) -> Result<User> {
        let path = format!("/api/v1/users/{id}");
        self.json(self.request(Method::PATCH, &path).json(request))
            .await
    }

    /// `DELETE /api/v1/users/{id}` (admin).
    pub async fn delete_user(&self, id: i64) -> Result<()> {
        self.empty(self.request(Method::DELETE, &format!("/api/v1/users/{id}")))
            .await
    }

    /// `GET /api/v1/settings/ldap` (admin).
    pub async fn ldap_settings(&self) -> Result<api::LdapSettings> {
        self.json(self.request(Method::GET, "/api/v1/settings/ldap"))
            .await
    }

    /// `PUT /api/v1/settings/ldap` (admin).
    pub async fn set_ldap_settings(
        &self,
        update: &api::LdapSettingsUpdate,
    ) -> Result<api::LdapSettings> {
        self.json(
            self.request(Method::PUT, "/api/v1/settings/ldap")
                .json(update),
        )
        .await
    }

    /// `POST /api/v1/settings/ldap/test` (admin): the sign-in chain, step by step.
    pub async fn test_ldap(&self, request: &api::LdapTestRequest) -> Result<api::LdapTestReport> {
        self.json(
            self.request(Method::POST, "/api/v1/settings/ldap/test")
                .json(request),
        )
        .await
    }

    /// `GET /api/v1/audit` (admin), newest first.
    pub async fn audit(&self, query: &AuditQuery) -> Result<ListResponse<AuditEntry>> {
        self.json(self.request(Method::GET, "/api/v1/audit").query(query))
            .await
    }

    /// `GET /api/v1/nodes`.
    pub async fn list_nodes(&self, query: &NodeQuery) -> Result<ListResponse<Node>> {
        self.json(self.request(Method::GET, "/api/v1/nodes").query(query))
            .await
    }

    /// The node called `name` (case-insensitive), found with `GET /api/v1/nodes?q=`; a 404
    /// `node_not_found` like the server's when there is none.
    pub async fn node_by_name(&self, name: &str) -> Result<Node> {
        let query = NodeQuery {
            q: Some(name.to_owned()),
            limit: Some(crate::api::MAX_PAGE_LIMIT),
            ..NodeQuery::default()
        };
        self.list_nodes(&query)
            .await?
            .items
            .into_iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::Api {
                status: 404,
                code: ErrorCode::NodeNotFound,
                message: format!("there is no node named {name:?}"),
                details: None,
            })
    }

    /// `GET /api/v1/nodes/{id}`.
    pub async fn get_node(&self, id: i64) -> Result<Node> {
        self.json(self.request(Method::GET, &format!("/api/v1/nodes/{id}")))
            .await
    }

    /// `POST /api/v1/nodes` (operator).
    pub async fn create_node(&self, spec: &NodeSpec) -> Result<Node> {
        self.json(self.request(Method::POST, "/api/v1/nodes").json(spec))
            .await
    }

    /// `PATCH /api/v1/nodes/{id}` (operator).
    pub async fn update_node(&self, id: i64, request: &UpdateNodeRequest) -> Result<Node> {
        let path = format!("/api/v1/nodes/{id}");
        self.json(self.request(Method::PATCH, &path).json(request))
            .await
    }

    /// `POST /api/v1/nodes/bulk` (operator): many nodes changed and deleted in one
    /// transaction, all or none.
    pub async fn bulk_nodes(
        &self,
        request: &api::BulkNodesRequest,
    ) -> Result<api::BulkNodesAnswer> {
        self.json(
            self.request(Method::POST, "/api/v1/nodes/bulk")
                .json(request),
        )
        .await
    }

    /// `DELETE /api/v1/nodes/{id}` (operator).
    pub async fn delete_node(&self, id: i64) -> Result<()> {
        self.empty(self.request(Method::DELETE, &format!("/api/v1/nodes/{id}")))
            .await
    }

    /// `GET /api/v1/nodes/{id}/history`: the audit entries about a node, newest first.
    pub async fn node_history(&self, id: i64) -> Result<ListResponse<AuditEntry>> {
        let path = format!("/api/v1/nodes/{id}/history");
        self.json(self.request(Method::GET, &path)).await
    }

    /// `GET /api/v1/nodes/{id}/host`: the agent's inventory and what the node must run.
    pub async fn node_host(&self, id: i64) -> Result<NodeHost> {
        let path = format!("/api/v1/nodes/{id}/host");
        self.json(self.request(Method::GET, &path)).await
    }

    /// `PUT /api/v1/nodes/{id}/host` (operator): the services the node must run and the
    /// processes it watches.
    pub async fn set_node_host(&self, id: i64, watch: &HostWatch) -> Result<NodeHost> {
        let path = format!("/api/v1/nodes/{id}/host");
        self.json(self.request(Method::PUT, &path).json(watch))
            .await
    }

    /// `PUT /api/v1/nodes/{id}/credentials/{credential_id}` (operator).
    pub async fn attach_credential(
        &self,
        node_id: i64,
        credential_id: i64,
        priority: Option<i64>,
    ) -> Result<Node> {
        let path = format!("/api/v1/nodes/{node_id}/credentials/{credential_id}");
        let body = AttachRequest { priority };
        self.json(self.request(Method::PUT, &path).json(&body))
            .await
    }

    /// `PUT /api/v1/nodes/{id}/parents/{parent_id}` (operator): a further parent.
    pub async fn add_parent(&self, node_id: i64, parent_id: i64) -> Result<Node> {
        let path = format!("/api/v1/nodes/{node_id}/parents/{parent_id}");
        self.json(self.request(Method::PUT, &path)).await
    }

    /// `DELETE /api/v1/nodes/{id}/parents/{parent_id}` (operator).
    pub async fn remove_parent(&self, node_id: i64, parent_id: i64) -> Result<Node> {
        let path = format!("/api/v1/nodes/{node_id}/parents/{parent_id}");
        self.json(self.request(Method::DELETE, &path)).await
    }

    /// `GET /api/v1/nodes/{id}/checks`.
    pub async fn checks(&self, node_id: i64) -> Result<ListResponse<api::Check>> {
        let path = format!("/api/v1/nodes/{node_id}/checks");
        self.json(self.request(Method::GET, &path)).await
    }

    /// `POST /api/v1/nodes/{id}/checks` (operator).
    pub async fn add_check(&self, node_id: i64, spec: &api::CheckSpec) -> Result<api::Check> {
        let path = format!("/api/v1/nodes/{node_id}/checks");
        self.json(self.request(Method::POST, &path).json(spec))
            .await
    }

    /// `PUT /api/v1/nodes/{id}/checks/{check_id}` (operator).
    pub async fn replace_check(
        &self,
        node_id: i64,
        check_id: i64,
        spec: &api::CheckSpec,
    ) -> Result<api::Check> {
        let path = format!("/api/v1/nodes/{node_id}/checks/{check_id}");
        self.json(self.request(Method::PUT, &path).json(spec)).await
    }

    /// `DELETE /api/v1/nodes/{id}/checks/{check_id}` (operator).
    pub async fn remove_check(&self, node_id: i64, check_id: i64) -> Result<()> {
        let path = format!("/api/v1/nodes/{node_id}/checks/{check_id}");
        self.empty(self.request(Method::DELETE, &path)).await
    }

    /// `GET /api/v1/certificates`: what the `tls` checks found, soonest expiry first.
    pub async fn certificates(
        &self,
        query: &api::CertificateQuery,
    ) -> Result<ListResponse<api::CertificateFinding>> {
        self.json(
            self.request(Method::GET, "/api/v1/certificates")
                .query(query),
        )
        .await
    }

    /// `GET /api/v1/events`: newest first, or oldest first after `after_id`.
    pub async fn events(&self, query: &api::EventQuery) -> Result<ListResponse<api::Event>> {
        self.json(self.request(Method::GET, "/api/v1/events").query(query))
            .await
    }

    /// `GET /api/v1/topology`: the links around a node, or all of them.
    pub async fn topology(&self, query: &api::TopologyQuery) -> Result<api::Topology> {
        self.json(self.request(Method::GET, "/api/v1/topology").query(query))
            .await
    }

    /// `GET /api/v1/topology/parents`: the parents the links suggest, where they differ.
    pub async fn suggested_parents(
        &self,
        query: &api::ParentQuery,
    ) -> Result<ListResponse<api::ParentSuggestion>> {
        self.json(
            self.request(Method::GET, "/api/v1/topology/parents")
                .query(query),
        )
        .await
    }

    /// `POST /api/v1/topology/parents` (operators): sets them in one transaction.
    pub async fn set_parents(&self, changes: &api::ParentChanges) -> Result<serde_json::Value> {
        self.json(
            self.request(Method::POST, "/api/v1/topology/parents")
                .json(changes),
        )
        .await
    }

    /// `GET /api/v1/topology/auto-parents`: every collector's automatic parents.
    pub async fn auto_parents(&self) -> Result<ListResponse<api::AutoParents>> {
        self.json(self.request(Method::GET, "/api/v1/topology/auto-parents"))
            .await
    }

    /// `PUT /api/v1/topology/auto-parents/{collector_id}` (operators): from `root_id`, or off.
    pub async fn set_auto_parents(
        &self,
        collector_id: i64,
        root_id: Option<i64>,
    ) -> Result<api::AutoParents> {
        let body = api::AutoParents {
            root_id,
            ..api::AutoParents::default()
        };
        self.json(
            self.request(
                Method::PUT,
                &format!("/api/v1/topology/auto-parents/{collector_id}"),
            )
            .json(&body),
        )
        .await
    }

    /// `GET /api/v1/remote-components/{id}/receivers`.
    pub async fn receivers(&self, collector_id: i64) -> Result<api::Receivers> {
        self.json(self.request(
            Method::GET,
            &format!("/api/v1/remote-components/{collector_id}/receivers"),
        ))
        .await
    }

    /// `PUT /api/v1/remote-components/{id}/receivers` (admin).
    pub async fn set_receivers(
        &self,
        collector_id: i64,
        receivers: &api::Receivers,
    ) -> Result<api::Receivers> {
        self.json(
            self.request(
                Method::PUT,
                &format!("/api/v1/remote-components/{collector_id}/receivers"),
            )
            .json(receivers),
        )
        .await
    }

    /// `DELETE /api/v1/nodes/{id}/credentials/{credential_id}` (operator).
    pub async fn detach_credential(&self, node_id: i64, credential_id: i64) -> Result<Node> {
        let path = format!("/api/v1/nodes/{node_id}/credentials/{credential_id}");
        self.json(self.request(Method::DELETE, &path)).await
    }

    /// `POST /api/v1/nodes/import` (operator) with a CSV file or a JSON array. A plan with
    /// rejected rows (422 `import_rejected`) comes back as `Ok` with `applied: false`.
    pub async fn import_nodes(
        &self,
        body: Vec<u8>,
        json: bool,
        query: &ImportQuery,
    ) -> Result<ImportReport> {
        let content_type = if json { "application/json" } else { "text/csv" };
        let request = self
            .request(Method::POST, "/api/v1/nodes/import")
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        match self.json(request).await {
            Err(Error::Api {
                status: 422,
                code: ErrorCode::ImportRejected,
                details: Some(details),
                ..
            }) => serde_json::from_value(details).map_err(|e| Error::Decode(e.to_string())),
            other => other,
        }
    }

    /// `GET /api/v1/nodes/export`: the file's bytes.
    pub async fn export_nodes(&self, format: ExportFormat) -> Result<Vec<u8>> {
        let request = self
            .request(Method::GET, "/api/v1/nodes/export")
            .query(&ExportQuery { format });
        let response = self.send(request).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        Ok(bytes.to_vec())
    }

    /// `GET /api/v1/credentials`.
    pub async fn list_credentials(
        &self,
        query: &CredentialQuery,
    ) -> Result<ListResponse<Credential>> {
        self.json(
            self.request(Method::GET, "/api/v1/credentials")
                .query(query),
        )
        .await
    }

    /// `GET /api/v1/credentials/{id}`; `reveal` (admins) answers the secrets in clear.
    pub async fn get_credential(&self, id: i64, reveal: bool) -> Result<Credential> {
        let query = CredentialQuery {
            reveal,
            ..CredentialQuery::default()
        };
        let path = format!("/api/v1/credentials/{id}");
        self.json(self.request(Method::GET, &path).query(&query))
            .await
    }

    /// `POST /api/v1/credentials` (admin).
    pub async fn create_credential(&self, request: &CreateCredentialRequest) -> Result<Credential> {
        self.json(
            self.request(Method::POST, "/api/v1/credentials")
                .json(request),
        )
        .await
    }

    /// `PATCH /api/v1/credentials/{id}` (admin).
    pub async fn update_credential(
        &self,
        id: i64,
        request: &UpdateCredentialRequest,
    ) -> Result<Credential> {
        let path = format!("/api/v1/credentials/{id}");
        self.json(self.request(Method::PATCH, &path).json(request))
            .await
    }

    /// `DELETE /api/v1/credentials/{id}` (admin).
    pub async fn delete_credential(&self, id: i64) -> Result<()> {
        let path = format!("/api/v1/credentials/{id}");
        self.empty(self.request(Method::DELETE, &path)).await
    }

    /// `POST /api/v1/enrollment-tokens` (admin): the token and its join code, shown once.
    pub async fn create_token(&self, request: &CreateTokenRequest) -> Result<CreatedToken> {
        let path = "/api/v1/enrollment-tokens";
        self.json(self.request(Method::POST, path).json(request))
            .await
    }

    /// `GET /api/v1/enrollment-tokens` (admin), newest first.
    pub async fn list_tokens(&self, query: &TokenQuery) -> Result<ListResponse<EnrollmentToken>> {
        let path = "/api/v1/enrollment-tokens";
        self.json(self.request(Method::GET, path).query(query))
            .await
    }

    /// `POST /api/v1/enrollment-tokens/{id}/revoke` (admin).
    pub async fn revoke_token(&self, id: i64) -> Result<EnrollmentToken> {
        let path = format!("/api/v1/enrollment-tokens/{id}/revoke");
        self.json(self.request(Method::POST, &path)).await
    }

    /// `POST /api/v1/components/register` with an enrollment token (no session).
    pub async fn register(&self, request: &RegisterRequest) -> Result<Registration> {
        let path = "/api/v1/components/register";
        self.json(self.request(Method::POST, path).json(request))
            .await
    }

    /// `GET /api/v1/components/me` with an API key: 403 while the component waits for approval.
    pub async fn component_me(&self) -> Result<ComponentSelf> {
        self.json(self.request(Method::GET, "/api/v1/components/me"))
            .await
    }

    /// `GET /api/v1/remote-components`.
    pub async fn list_components(&self, query: &ComponentQuery) -> Result<ListResponse<Component>> {
        let path = "/api/v1/remote-components";
        self.json(self.request(Method::GET, path).query(query))
            .await
    }

    /// `GET /api/v1/remote-components/{id}`.
    pub async fn get_component(&self, id: i64) -> Result<Component> {
        let path = format!("/api/v1/remote-components/{id}");
        self.json(self.request(Method::GET, &path)).await
    }

    /// `POST /api/v1/remote-components/{id}/approve` (admin).
    pub async fn approve_component(&self, id: i64) -> Result<Component> {
        let path = format!("/api/v1/remote-components/{id}/approve");
        self.json(self.request(Method::POST, &path)).await
    }

    /// `POST /api/v1/remote-components/{id}/approve` with the agent's node chosen.
    pub async fn approve_agent(&self, id: i64, choice: &ApproveRequest) -> Result<Component> {
        let path = format!("/api/v1/remote-components/{id}/approve");
        self.json(self.request(Method::POST, &path).json(choice))
            .await
    }

    /// `POST /api/v1/remote-components/{id}/revoke` (admin): its key stops working at once.
    pub async fn revoke_component(&self, id: i64) -> Result<Component> {
        let path = format!("/api/v1/remote-components/{id}/revoke");
        self.json(self.request(Method::POST, &path)).await
    }

    /// `DELETE /api/v1/remote-components/{id}` (admin).
    pub async fn delete_component(&self, id: i64) -> Result<()> {
        let path = format!("/api/v1/remote-components/{id}");
        self.empty(self.request(Method::DELETE, &path)).await
    }

    /// `GET /api/v1/remote-collectors/{id}/config` with an API key, sending `If-None-Match`
    /// when the collector holds a configuration already.
    pub async fn collector_config(&self, id: i64, held: Option<&str>) -> Result<ConfigPull> {
        let path = format!("/api/v1/remote-collectors/{id}/config");
        let mut request = self.request(Method::GET, &path);
        if let Some(sha256) = held {
            request = request.header(reqwest::header::IF_NONE_MATCH, format!("\"{sha256}\""));
        }
        let response = self.execute(request).await?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(ConfigPull::NotModified);
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_owned());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        let sha256 = crate::sha256_hex(&bytes);
        if etag.as_deref() != Some(sha256.as_str()) {
            return Err(Error::Decode(
                "the configuration does not match its ETag (damaged in transit?)".into(),
            ));
        }
        let config = serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()))?;
        Ok(ConfigPull::Changed {
            sha256,
            body: bytes.to_vec(),
            config: Box::new(config),
        })
    }

    /// `POST /api/v1/remote-collectors/{id}/report` with an API key.
    pub async fn report(&self, id: i64, report: &CollectorReport) -> Result<()> {
        let path = format!("/api/v1/remote-collectors/{id}/report");
        self.empty(self.request(Method::POST, &path).json(report))
            .await
    }

    /// `POST /api/v1/remote-collectors/{id}/certificates` with the collector's API key.
    pub async fn report_certificates(
        &self,
        id: i64,
        report: &api::CertificateReport,
    ) -> Result<()> {
        let path = format!("/api/v1/remote-collectors/{id}/certificates");
        self.empty(self.request(Method::POST, &path).json(report))
            .await
    }

    /// `POST /api/v1/remote-collectors/{id}/vsphere/{node_id}` with the collector's API key:
    /// one vCenter node's inventory; the answer names the node of each host and VM.
    pub async fn report_vsphere(
        &self,
        id: i64,
        node_id: i64,
        inventory: &api::vsphere::VsphereInventory,
    ) -> Result<api::vsphere::VsphereSync> {
        let path = format!("/api/v1/remote-collectors/{id}/vsphere/{node_id}");
        self.json(self.request(Method::POST, &path).json(inventory))
            .await
    }

    /// `GET /api/v1/nodes/{id}/vsphere`: a vCenter node's hosts, VMs and datastores.
    pub async fn vsphere_objects(
        &self,
        node_id: i64,
    ) -> Result<ListResponse<api::vsphere::VsphereObject>> {
        let path = format!("/api/v1/nodes/{node_id}/vsphere");
        self.json(self.request(Method::GET, &path)).await
    }

    /// `POST /api/v1/agents/heartbeat/{node_id}` with an API key.
    pub async fn heartbeat(&self, node_id: i64, heartbeat: &Heartbeat) -> Result<HeartbeatAck> {
        let path = format!("/api/v1/agents/heartbeat/{node_id}");
        self.json(self.request(Method::POST, &path).json(heartbeat))
            .await
    }

    /// Pushes gzip-compressed line protocol with its batch id; `Ok` once the server has
    /// committed it (or had committed it before).
    pub async fn ingest_gzip(&self, batch_id: &str, gzip_body: Vec<u8>) -> Result<()> {
        let request = self
            .request(Method::POST, "/api/v1/ingest/influx")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(crate::api::BATCH_ID_HEADER, batch_id)
            .body(gzip_body);
        self.empty(request).await
    }

    /// A node's metrics over a range (`GET /nodes/{id}/metrics`).
    pub async fn node_metrics(&self, id: i64, query: &MetricQuery) -> Result<MetricsAnswer> {
        let path = format!("/api/v1/nodes/{id}/metrics");
        self.json(self.request(Method::GET, &path).query(query))
            .await
    }

    /// Stored series (`GET /metrics/series`).
    pub async fn series(&self, query: &SeriesQuery) -> Result<ListResponse<SeriesInfo>> {
        self.json(
            self.request(Method::GET, "/api/v1/metrics/series")
                .query(query),
        )
        .await
    }

    /// Device templates (`GET /templates`).
    pub async fn list_templates(&self) -> Result<ListResponse<Template>> {
        self.json(self.request(Method::GET, "/api/v1/templates"))
            .await
    }

    /// One template with its resolved definition.
    pub async fn get_template(&self, id: i64) -> Result<Template> {
        let path = format!("/api/v1/templates/{id}");
        self.json(self.request(Method::GET, &path)).await
    }

    /// Re-reads the template files (admins).
    pub async fn reload_templates(&self) -> Result<TemplateReload> {
        self.json(self.request(Method::POST, "/api/v1/templates/reload"))
            .await
    }

    /// The dashboard's figures (`GET /summary`).
    pub async fn summary(&self) -> Result<Summary> {
        self.json(self.request(Method::GET, "/api/v1/summary"))
            .await
    }

    /// `POST /api/v1/discovery/jobs` (operator).
    pub async fn create_job(&self, spec: &api::JobSpec) -> Result<api::Job> {
        self.json(
            self.request(Method::POST, "/api/v1/discovery/jobs")
                .json(spec),
        )
        .await
    }

    /// `GET /api/v1/discovery/jobs`, newest first.
    pub async fn list_jobs(&self, query: &api::JobQuery) -> Result<ListResponse<api::Job>> {
        self.json(
            self.request(Method::GET, "/api/v1/discovery/jobs")
                .query(query),
        )
        .await
    }

    /// `GET /api/v1/discovery/jobs/{id}`.
    pub async fn get_job(&self, id: i64) -> Result<api::Job> {
        self.json(self.request(Method::GET, &format!("/api/v1/discovery/jobs/{id}")))
            .await
    }

    /// `POST /api/v1/discovery/jobs/{id}/cancel` (operator): stops the run and the schedule.
    pub async fn cancel_job(&self, id: i64) -> Result<api::Job> {
        let path = format!("/api/v1/discovery/jobs/{id}/cancel");
        self.json(self.request(Method::POST, &path)).await
    }

    /// `GET /api/v1/discovery/jobs/{id}/devices`: the job's part of the discovery inbox.
    pub async fn job_devices(
        &self,
        id: i64,
        query: &api::DeviceQuery,
    ) -> Result<ListResponse<api::Device>> {
        let path = format!("/api/v1/discovery/jobs/{id}/devices");
        self.json(self.request(Method::GET, &path).query(query))
            .await
    }

    /// `POST /api/v1/discovery/jobs/{id}/import` (operator).
    pub async fn import_devices(
        &self,
        id: i64,
        selection: &api::DeviceSelection,
    ) -> Result<api::DeviceImport> {
        let path = format!("/api/v1/discovery/jobs/{id}/import");
        self.json(self.request(Method::POST, &path).json(selection))
            .await
    }

    /// `POST /api/v1/discovery/jobs/{id}/dismiss` (operator).
    pub async fn dismiss_devices(
        &self,
        id: i64,
        selection: &api::DeviceSelection,
    ) -> Result<api::Dismissed> {
        let path = format!("/api/v1/discovery/jobs/{id}/dismiss");
        self.json(self.request(Method::POST, &path).json(selection))
            .await
    }

    /// `POST /api/v1/remote-collectors/{id}/discovery/claim` with an API key.
    pub async fn claim_job(&self, collector_id: i64) -> Result<api::Claim> {
        let path = format!("/api/v1/remote-collectors/{collector_id}/discovery/claim");
        self.json(self.request(Method::POST, &path)).await
    }

    /// `POST /api/v1/discovery/jobs/{id}/results` with an API key.
    pub async fn send_results(&self, id: i64, batch: &api::ResultBatch) -> Result<api::BatchAck> {
        let path = format!("/api/v1/discovery/jobs/{id}/results");
        self.json(self.request(Method::POST, &path).json(batch))
            .await
    }

    /// `GET /api/v1/alerts`: active alerts unless `query.state` says otherwise.
    pub async fn list_alerts(&self, query: &AlertQuery) -> Result<ListResponse<Alert>> {
        self.json(self.request(Method::GET, "/api/v1/alerts").query(query))
            .await
    }

    /// `GET /api/v1/alerts/{id}`: the alert, its history and its deliveries.
    pub async fn get_alert(&self, id: i64) -> Result<AlertDetail> {
        self.json(self.request(Method::GET, &format!("/api/v1/alerts/{id}")))
            .await
    }

    /// `POST /api/v1/alerts/ack` (operator): many alerts acknowledged in one transaction;
    /// those resolved meanwhile are skipped and named.
    pub async fn ack_alerts(
        &self,
        ids: &[i64],
        comment: Option<String>,
    ) -> Result<api::BulkAckAnswer> {
        let request = api::BulkAckRequest {
            ids: ids.to_vec(),
            comment,
        };
        self.json(
            self.request(Method::POST, "/api/v1/alerts/ack")
                .json(&request),
        )
        .await
    }

    /// `POST /api/v1/alerts/{id}/ack` (operator).
    pub async fn ack_alert(&self, id: i64, comment: Option<String>) -> Result<Alert> {
        let path = format!("/api/v1/alerts/{id}/ack");
        self.json(
            self.request(Method::POST, &path)
                .json(&AckRequest { comment }),
        )
        .await
    }

    /// `POST /api/v1/alerts/{id}/ignore` (operator): the alert's rule leaves its series alone.
    pub async fn ignore_alert_series(
        &self,
        id: i64,
        comment: Option<String>,
    ) -> Result<crate::api::IgnoredSeries> {
        let path = format!("/api/v1/alerts/{id}/ignore");
        self.json(
            self.request(Method::POST, &path)
                .json(&AckRequest { comment }),
        )
        .await
    }

    /// `GET /api/v1/ignored-series`.
    pub async fn ignored_series(&self) -> Result<ListResponse<crate::api::IgnoredSeries>> {
        self.json(self.request(Method::GET, "/api/v1/ignored-series"))
            .await
    }

    /// `DELETE /api/v1/ignored-series/{id}` (operator): the series is judged again.
    pub async fn unignore_series(&self, id: i64) -> Result<()> {
        self.empty(self.request(Method::DELETE, &format!("/api/v1/ignored-series/{id}")))
            .await
    }

    /// `POST /api/v1/alerts/{id}/unack` (operator).
    pub async fn unack_alert(&self, id: i64) -> Result<Alert> {
        self.json(self.request(Method::POST, &format!("/api/v1/alerts/{id}/unack")))
            .await
    }

    /// `GET /api/v1/alert-definitions`.
    pub async fn list_rules(&self) -> Result<ListResponse<AlertRule>> {
        self.json(self.request(Method::GET, "/api/v1/alert-definitions"))
            .await
    }

    /// The rule called `name` (case-insensitive).
    pub async fn rule_by_name(&self, name: &str) -> Result<AlertRule> {
        self.list_rules()
            .await?
            .items
            .into_iter()
            .find(|r| r.spec.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::Api {
                status: 404,
                code: ErrorCode::RuleNotFound,
                message: format!("there is no alert rule named {name:?}"),
                details: None,
            })
    }

    /// `POST /api/v1/alert-definitions` (operator).
    pub async fn create_rule(&self, spec: &RuleSpec) -> Result<AlertRule> {
        self.json(
            self.request(Method::POST, "/api/v1/alert-definitions")
                .json(spec),
        )
        .await
    }

    /// `PUT /api/v1/alert-definitions/{id}` (operator).
    pub async fn update_rule(&self, id: i64, spec: &RuleSpec) -> Result<AlertRule> {
        let path = format!("/api/v1/alert-definitions/{id}");
        self.json(self.request(Method::PUT, &path).json(spec)).await
    }

    /// `DELETE /api/v1/alert-definitions/{id}` (operator; custom rules only).
    pub async fn delete_rule(&self, id: i64) -> Result<()> {
        let path = format!("/api/v1/alert-definitions/{id}");
        self.empty(self.request(Method::DELETE, &path)).await
    }

    /// `POST /api/v1/alert-definitions/preview`: which nodes a rule matches now.
    pub async fn preview_rule(&self, spec: &RuleSpec) -> Result<ListResponse<RulePreviewRow>> {
        let path = "/api/v1/alert-definitions/preview";
        self.json(self.request(Method::POST, path).json(spec)).await
    }

    /// `GET /api/v1/maintenance-windows`.
    pub async fn list_maintenance(&self) -> Result<ListResponse<MaintenanceWindow>> {
        self.json(self.request(Method::GET, "/api/v1/maintenance-windows"))
            .await
    }

    /// `POST /api/v1/maintenance-windows` (operator).
    pub async fn create_maintenance(&self, spec: &MaintenanceSpec) -> Result<MaintenanceWindow> {
        let path = "/api/v1/maintenance-windows";
        self.json(self.request(Method::POST, path).json(spec)).await
    }

    /// `POST /api/v1/maintenance-windows/{id}/end` (operator).
    pub async fn end_maintenance(&self, id: i64) -> Result<MaintenanceWindow> {
        let path = format!("/api/v1/maintenance-windows/{id}/end");
        self.json(self.request(Method::POST, &path)).await
    }

    /// `GET /api/v1/notification-channels` (operator).
    pub async fn list_channels(&self) -> Result<ListResponse<Channel>> {
        self.json(self.request(Method::GET, "/api/v1/notification-channels"))
            .await
    }

    /// The channel called `name` (case-insensitive).
    pub async fn channel_by_name(&self, name: &str) -> Result<Channel> {
        self.list_channels()
            .await?
            .items
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::Api {
                status: 404,
                code: ErrorCode::ChannelNotFound,
                message: format!("there is no notification channel named {name:?}"),
                details: None,
            })
    }

    /// `POST /api/v1/notification-channels` (admin).
    pub async fn create_channel(&self, spec: &ChannelSpec) -> Result<Channel> {
        let path = "/api/v1/notification-channels";
        self.json(self.request(Method::POST, path).json(spec)).await
    }

    /// `PUT /api/v1/notification-channels/{id}` (admin).
    pub async fn update_channel(&self, id: i64, spec: &ChannelSpec) -> Result<Channel> {
        let path = format!("/api/v1/notification-channels/{id}");
        self.json(self.request(Method::PUT, &path).json(spec)).await
    }

    /// `DELETE /api/v1/notification-channels/{id}` (admin).
    pub async fn delete_channel(&self, id: i64) -> Result<()> {
        let path = format!("/api/v1/notification-channels/{id}");
        self.empty(self.request(Method::DELETE, &path)).await
    }

    /// `POST /api/v1/notification-channels/{id}/test` (admin): sends a test now.
    pub async fn test_channel(&self, id: i64) -> Result<ChannelTest> {
        let path = format!("/api/v1/notification-channels/{id}/test");
        self.json(self.request(Method::POST, &path)).await
    }

    /// `GET /api/v1/nodes/{id}/health`: the node's health changes, newest first.
    pub async fn node_health(&self, id: i64) -> Result<ListResponse<HealthChange>> {
        let path = format!("/api/v1/nodes/{id}/health");
        self.json(self.request(Method::GET, &path)).await
    }

    /// Sends any request and returns the status and body as they came, for tools and tests
    /// that exercise the API beyond the typed calls. Transport and pinning errors still fail.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>)> {
        let mut request = self.request(method, path).body(body);
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        let response = self.execute(request).await?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        Ok((status, bytes.to_vec()))
    }

    /// A request builder for `path` with the bearer token, for callers that need more than the
    /// typed calls offer.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let current = self.current();
        let mut request = current
            .http
            .request(method, format!("{}{path}", current.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        if let Some(key) = &self.api_key {
            request = request.header(crate::API_KEY_HEADER, key.expose());
        }
        request
    }

    /// Sends `request` and decodes a JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let response = self.send(request).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()))
    }

    /// Sends `request` and expects an answer without a body.
    pub async fn empty(&self, request: RequestBuilder) -> Result<()> {
        self.send(request).await.map(drop)
    }

    async fn send(&self, request: RequestBuilder) -> Result<reqwest::Response> {
        let response = self.execute(request).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response.bytes().await.unwrap_or_default();
        Err(api_error(status, &bytes))
    }

    /// Sends `request` to the current server; when it cannot connect, or the server answers
    /// that it is the standby, the request goes to the next server of the pair (each once).
    /// Only a failed connection moves on: a request that reached a server and got no answer
    /// is not sent twice.
    async fn execute(&self, request: RequestBuilder) -> Result<reqwest::Response> {
        let (_, built) = request.build_split();
        let mut request = built.map_err(|e| Error::InvalidUrl {
            url: e.url().map(ToString::to_string).unwrap_or_default(),
            reason: error_chain(&e),
        })?;
        let mut tried = 0;
        loop {
            tried += 1;
            // A standby may name an active this client did not know: one more try for it.
            let more = tried <= self.lock().endpoints.len();
            let endpoint = self.endpoint_of(&request);
            let again = request.try_clone().filter(|_| more);
            match endpoint.http.execute(request).await {
                Ok(response) => {
                    let standby = response.status() == StatusCode::SERVICE_UNAVAILABLE
                        && response
                            .headers()
                            .get(ROLE_HEADER)
                            .and_then(|v| v.to_str().ok())
                            == Some(api::ha::HaRole::Standby.as_str());
                    if standby {
                        let bytes = response.bytes().await.unwrap_or_default();
                        self.after_standby(&endpoint, &bytes);
                        let alone = self.lock().alone;
                        match again.filter(|_| !alone) {
                            Some(next) => {
                                request = self.retarget(next, &endpoint);
                                continue;
                            }
                            None => return Err(api_error(StatusCode::SERVICE_UNAVAILABLE, &bytes)),
                        }
                    }
                    if let Some(term) = response
                        .headers()
                        .get(api::ha::TERM_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                    {
                        self.lock().term = Some(term);
                    }
                    return Ok(response);
                }
                Err(error) => {
                    let failed = endpoint.transport_error(&error);
                    let others = tried < self.lock().endpoints.len();
                    match (again.filter(|_| others), &failed) {
                        (Some(next), Error::Connect { .. }) if error.is_connect() => {
                            tracing::debug!(url = %endpoint.base, %failed, "Trying the other server of the pair.");
                            self.turn_from(&endpoint);
                            request = self.retarget(next, &endpoint);
                        }
                        _ => return Err(failed),
                    }
                }
            }
        }
    }

    /// The known server `request` is addressed to (the current one if none matches).
    fn endpoint_of(&self, request: &reqwest::Request) -> Endpoint {
        let pair = self.lock();
        pair.endpoints
            .iter()
            .find(|e| url_under(request.url().as_str(), &e.base))
            .unwrap_or(&pair.endpoints[pair.current])
            .clone()
    }

    /// Makes the server after `failed` the current one, unless another task already moved on.
    fn turn_from(&self, failed: &Endpoint) {
        let mut pair = self.lock();
        if pair.endpoints[pair.current].base == failed.base {
            pair.current = (pair.current + 1) % pair.endpoints.len();
        }
    }

    /// Learns the pair from a standby's answer and turns to the active it names, or else on.
    fn after_standby(&self, standby: &Endpoint, body: &[u8]) {
        let ha = serde_json::from_slice::<ErrorBody>(body)
            .ok()
            .and_then(|body| body.error.details)
            .and_then(|details| serde_json::from_value::<api::ha::HaHealth>(details).ok());
        if let Some(ha) = ha {
            self.learn(&ha);
        }
        self.turn_from(standby);
    }

    /// `request` addressed to the current server instead of `from`.
    fn retarget(&self, mut request: reqwest::Request, from: &Endpoint) -> reqwest::Request {
        let to = self.current();
        let rest = request
            .url()
            .as_str()
            .strip_prefix(from.base.as_str())
            .unwrap_or("")
            .to_owned();
        if let Ok(url) = reqwest::Url::parse(&format!("{}{rest}", to.base)) {
            *request.url_mut() = url;
        }
        request
    }

    fn transport_error(&self, error: &reqwest::Error) -> Error {
        self.current().transport_error(error)
    }
}

/// Response header naming the role of a server of a pair (`standby` on its `503`).
pub const ROLE_HEADER: &str = "x-plantwatch-role";

/// Whether `url` lies under the server URL `base` (same origin, `base`'s path).
fn url_under(url: &str, base: &str) -> bool {
    url.strip_prefix(base)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
}

fn api_error(status: StatusCode, bytes: &[u8]) -> Error {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => Error::Api {
            status: status.as_u16(),
            code: body.error.code,
            message: body.error.message,
            details: body.error.details,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let text: String = text.chars().take(MAX_FOREIGN_ERROR_TEXT).collect();
            Error::Api {
                status: status.as_u16(),
                code: ErrorCode::http(status.as_u16()),
                message: if text.trim().is_empty() {
                    status.canonical_reason().unwrap_or("error").to_owned()
                } else {
                    text
                },
                details: None,
            }
        }
    }
}

/// An error's innermost causes on one line: "tcp connect error: Connection refused" rather than
/// reqwest's outer "error sending request for url (…): client error (Connect)".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    let inner = chain.pop().unwrap_or_default();
    match chain.pop() {
        // An outer error that already quotes its cause ("timeout: deadline has elapsed" over
        // "deadline has elapsed") says it all.
        Some(outer) if outer.ends_with(&inner) => outer,
        Some(outer) => format!("{outer}: {inner}"),
        None => inner,
    }
}

/// A certificate verifier that accepts exactly the certificate with fingerprint `pin`, whoever
/// issued it (handshake signatures still verified): for other TLS services trusted by
/// fingerprint, such as a directory server.
pub fn pinned_verifier(pin: Fingerprint) -> Arc<dyn ServerCertVerifier> {
    Arc::new(PinningVerifier::new(Some(pin), Arc::new(Mutex::new(None))))
}

/// The system's trusted roots (its store, or the file `SSL_CERT_FILE` names), read once per
/// process: what a certificate is judged against when no CA is given.
pub fn system_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: std::sync::OnceLock<Arc<rustls::RootCertStore>> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            Arc::new(roots)
        })
        .clone()
}

/// The certificates of a PEM bundle (a CA given to trust a server by); an error unless it
/// holds at least one.
pub fn pem_certificates(pem: &str) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject as _;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("the CA is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("the CA holds no certificate (expected -----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

/// `base` (the system's roots) and the certificates of `pem`: what a server with a private CA
/// is judged against.
pub fn roots_with(
    base: &rustls::RootCertStore,
    pem: &str,
) -> std::result::Result<Arc<rustls::RootCertStore>, String> {
    let mut roots = base.clone();
    for cert in pem_certificates(pem)? {
        roots
            .add(cert)
            .map_err(|e| format!("the CA certificate is not usable: {e}"))?;
    }
    Ok(Arc::new(roots))
}

/// The certificates a server presented, leaf first, as a [`RecordingVerifier`] saw them.
pub type PresentedChain = Arc<Mutex<Vec<CertificateDer<'static>>>>;

/// Records the chain a server presents, then lets `inner` decide; without `inner` it accepts
/// any chain, for a caller that judges the recorded chain itself (a certificate check). Either
/// way the handshake signatures are verified, so the server holds the leaf's key.
#[derive(Debug)]
pub struct RecordingVerifier {
    /// What decides: the given verifier, else one that accepts any certificate.
    inner: Arc<dyn ServerCertVerifier>,
    chain: PresentedChain,
}

impl RecordingVerifier {
    /// The verifier, and where it keeps the last chain it was shown.
    pub fn new(
        inner: Option<Arc<dyn ServerCertVerifier>>,
    ) -> (Arc<RecordingVerifier>, PresentedChain) {
        let chain = PresentedChain::default();
        let inner = inner
            .unwrap_or_else(|| Arc::new(PinningVerifier::new(None, Arc::new(Mutex::new(None)))));
        let verifier = RecordingVerifier {
            inner,
            chain: chain.clone(),
        };
        (Arc::new(verifier), chain)
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut chain) = self.chain.lock() {
            chain.clear();
            chain.push(end_entity.clone().into_owned());
            chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts exactly the pinned certificate (or, when probing, any certificate) and records the
/// fingerprint it saw. Handshake signatures are still verified, so the server must hold the
/// certificate's private key.
#[derive(Debug)]
struct PinningVerifier {
    pin: Option<Fingerprint>,
    seen: Arc<Mutex<Option<Fingerprint>>>,
    provider: Arc<CryptoProvider>,
}

impl PinningVerifier {
    fn new(pin: Option<Fingerprint>, seen: Arc<Mutex<Option<Fingerprint>>>) -> Self {
        PinningVerifier {
            pin,
            seen,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        }
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let actual = Fingerprint::of_der(end_entity.as_ref());
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(actual);
        }
        match self.pin {
            Some(expected) if expected != actual => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chains_keep_the_two_innermost_causes_once() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let quoting = E(
            "ldap",
            Some(Box::new(E(
                "timeout: deadline has elapsed",
                Some(Box::new(E("deadline has elapsed", None))),
            ))),
        );
        assert_eq!(error_chain(&quoting), "timeout: deadline has elapsed");
        let plain = E(
            "send",
            Some(Box::new(E("connect", Some(Box::new(E("refused", None)))))),
        );
        assert_eq!(error_chain(&plain), "connect: refused");
        assert_eq!(error_chain(&E("alone", None)), "alone");
    }

    #[test]
    fn urls_are_normalised_and_default_to_https() {
        assert_eq!(
            normalize_url("plant1.example:8443/").unwrap(),
            "https://plant1.example:8443"
        );
        assert_eq!(
            normalize_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalize_url("ftp://x").is_err());
        assert!(normalize_url("https://x/?a=1").is_err());
        assert!(normalize_url("").is_err());
    }

    #[test]
    fn https_without_a_pin_is_refused() {
        let err = Client::new("https://127.0.0.1:1", None).unwrap_err();
        assert!(
            err.to_string().contains("no fingerprint is pinned"),
            "{err}"
        );
    }

    #[test]
    fn foreign_error_bodies_become_api_errors() {
        let err = api_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(err.status(), Some(502));
        assert_eq!(err.code(), Some(ErrorCode::http(502)));
        let body = br#"{"error":{"code":"user_not_found","message":"no such user"}}"#;
        let err = api_error(StatusCode::NOT_FOUND, body);
        assert_eq!(err.code(), Some(ErrorCode::UserNotFound));
    }

    /// A plain-HTTP responder on loopback that answers every request with `status`,
    /// `headers` and `body`, and counts the requests.
    async fn responder(
        status: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: String,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let mut answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    answer.push_str(&format!("{name}: {value}\r\n"));
                }
                answer.push_str("\r\n");
                answer.push_str(&body);
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (url, count)
    }

    const HEALTH: &str = r#"{"status":"ok","version":"1","server_time":"2026-12-04T00:00:00Z"}"#;

    #[tokio::test]
    async fn a_standby_answer_turns_the_client_to_the_active_it_names() {
        let (active, active_hits) =
            responder("200 OK", &[(api::ha::TERM_HEADER, "4")], HEALTH.to_owned()).await;
        let standby_body = serde_json::json!({"error": {
            "code": "standby",
            "message": "this server is the standby of its pair",
            "details": {
                "name": "plant-b", "role": "standby", "term": 4,
                "active": {"url": active},
                "servers": [{"url": "http://127.0.0.1:1"}, {"url": active}],
            },
        }})
        .to_string();
        let (standby, standby_hits) = responder(
            "503 Service Unavailable",
            &[(ROLE_HEADER, "standby")],
            standby_body,
        )
        .await;
        // A client kept alone (a server's own collector) does not leave its server.
        let alone = Client::new(&standby, None).unwrap().alone();
        assert_eq!(alone.health().await.unwrap_err().status(), Some(503));
        assert_eq!(
            (alone.base_url(), alone.servers().len()),
            (standby.clone(), 1)
        );
        // The client knows only the standby: it learns the active from the answer.
        let client = Client::new(&standby, None).unwrap();
        client.health().await.unwrap();
        assert_eq!(client.base_url(), active);
        assert_eq!(client.term(), Some(4));
        assert_eq!(client.servers().len(), 3, "{:?}", client.servers());
        client.health().await.unwrap();
        assert_eq!(
            (
                standby_hits.load(std::sync::atomic::Ordering::SeqCst),
                active_hits.load(std::sync::atomic::Ordering::SeqCst)
            ),
            (2, 2),
            "the second call goes straight to the active"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_moves_to_the_other_server_and_a_foreign_503_does_not() {
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        let (alive, _) = responder("200 OK", &[], HEALTH.to_owned()).await;
        let client = Client::new(&dead, None)
            .unwrap()
            .with_alternates(&[api::ha::ServerAddress {
                url: alive.clone(),
                fingerprint: None,
            }])
            .unwrap();
        client.health().await.unwrap();
        assert_eq!(client.base_url(), alive);
        // Alone, the same dead server is an error naming it.
        let alone = Client::new(&dead, None).unwrap();
        let error = alone.health().await.unwrap_err();
        assert!(
            matches!(error, Error::Connect { ref url, .. } if *url == dead),
            "{error}"
        );
        // A 503 that is not a standby's (a busy ingest) is the caller's to handle.
        let (busy, busy_hits) = responder("503 Service Unavailable", &[], "{}".to_owned()).await;
        let client = Client::new(&busy, None)
            .unwrap()
            .with_alternates(&[api::ha::ServerAddress {
                url: alive,
                fingerprint: None,
            }])
            .unwrap();
        assert_eq!(client.health().await.unwrap_err().status(), Some(503));
        assert_eq!(busy_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(client.base_url(), busy);
        // An https alternate without its fingerprint is refused.
        let error = Client::new(&dead, None)
            .unwrap()
            .with_alternates(&[api::ha::ServerAddress {
                url: "https://127.0.0.1:9".into(),
                fingerprint: None,
            }])
            .unwrap_err();
        assert!(error.to_string().contains("fingerprint"), "{error}");
    }
}
