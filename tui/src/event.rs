//! What reaches the event loop: keys, the clock, and the results of API calls, which run on tokio
//! tasks so the loop never waits on the network.

use std::future::Future;
use std::pin::Pin;

use plantwatch_shared::api::ErrorCode;
use plantwatch_shared::api::{
    Alert, AlertDetail, AlertRule, AuditEntry, Channel, Component, CreatedToken, Credential,
    Device, DeviceImport, Health, Job, LdapSettings, LdapTestReport, ListResponse, LoginResponse,
    MaintenanceWindow, Me, MetricsAnswer, Node, RulePreviewRow, Summary, User,
};
use plantwatch_shared::{Error, Fingerprint};
use ratatui::crossterm::event::KeyEvent;

#[derive(Debug)]
pub enum Event {
    Key(KeyEvent),
    Resize,
    /// Once a second: the clock, refreshes and retries.
    Tick,
    /// An API call finished. `generation` tells replies meant for a previous session apart;
    /// `origin` is the view that asked (`None`: the console itself).
    Done {
        generation: u64,
        origin: Option<usize>,
        outcome: Result<Reply, Failure>,
    },
}

/// A successful API call.
#[derive(Debug)]
pub enum Reply {
    Health {
        health: Box<Health>,
        latency: std::time::Duration,
    },
    Me(Me),
    Users(ListResponse<User>),
    Audit(ListResponse<AuditEntry>),
    /// A check added to node `node`.
    CheckAdded {
        node: String,
        check: Box<plantwatch_shared::api::Check>,
    },
    /// What a node must run, to edit (`loaded`) or as just saved.
    NodeHost {
        node: String,
        host: Box<plantwatch_shared::api::NodeHost>,
        saved: bool,
    },
    /// What the `tls` checks found, for the certificates view.
    Certificates(ListResponse<plantwatch_shared::api::CertificateFinding>),
    Topology(Box<plantwatch_shared::api::Topology>),
    /// The parents the links suggest (the topology view's `p`).
    ParentSuggestions(ListResponse<plantwatch_shared::api::ParentSuggestion>),
    /// Parents set from the suggestions: how many.
    ParentsSet(usize),
    Events(ListResponse<plantwatch_shared::api::Event>),
    UserCreated(User),
    UserUpdated {
        user: User,
        what: &'static str,
    },
    UserDeleted(String),
    /// Every node (all pages).
    Nodes(ListResponse<Node>),
    NodeSaved {
        node: Box<Node>,
        created: bool,
    },
    NodeDeleted(String),
    /// A node and its audit history, for the detail overlay.
    NodeDetail {
        node: Box<Node>,
        history: Vec<AuditEntry>,
        /// Its service checks, and what its `tls` checks found.
        checks: Vec<plantwatch_shared::api::Check>,
        certificates: Vec<plantwatch_shared::api::CertificateFinding>,
        /// A vCenter node's hosts, VMs and datastores (empty for other nodes).
        vsphere: Vec<plantwatch_shared::api::vsphere::VsphereObject>,
        /// An agent's machine and what the node must run.
        host: Box<plantwatch_shared::api::NodeHost>,
    },
    /// A credential attached to `nodes` nodes.
    Attached {
        credential: String,
        nodes: usize,
    },
    Credentials(ListResponse<Credential>),
    CredentialSaved {
        credential: Box<Credential>,
        created: bool,
    },
    CredentialDeleted(String),
    /// A credential with its secrets in clear (admins): `edit` opens the edit form with them,
    /// otherwise they are shown.
    CredentialRevealed {
        credential: Box<Credential>,
        edit: bool,
    },
    /// Collectors and agents, pending approvals first.
    Components(ListResponse<Component>),
    /// A collector or agent approved or revoked.
    ComponentChanged {
        component: Box<Component>,
        what: &'static str,
    },
    /// A collector's receivers, to edit.
    Receivers {
        id: i64,
        name: String,
        receivers: plantwatch_shared::api::Receivers,
    },
    /// An agent's approval needs its node chosen: `message` names the candidates.
    AgentNodeChoice {
        id: i64,
        name: String,
        message: String,
    },
    ComponentDeleted(String),
    /// A node's metrics over the charts' window (`generation` counts the window's changes).
    NodeMetrics {
        node_id: i64,
        generation: usize,
        answer: Box<MetricsAnswer>,
    },
    /// The dashboard's figures.
    Summary(Box<Summary>),
    Templates(ListResponse<plantwatch_shared::api::Template>),
    /// One template with its resolved definition.
    TemplateDetail(Box<plantwatch_shared::api::Template>),
    /// Many nodes changed or deleted in one request.
    NodesChanged(Box<plantwatch_shared::api::BulkNodesAnswer>),
    /// Everything the search view searches.
    SearchHits(Vec<crate::views::search::Hit>),
    /// One saved site's status, for the sites view.
    Site(Box<crate::sites::SiteStatus>),
    /// The active alerts of every site, and the sites that did not answer.
    SiteAlerts {
        alerts: Vec<crate::sites::SiteAlert>,
        unread: Vec<(String, String)>,
    },
    Alerts(ListResponse<Alert>),
    AlertDetail(Box<AlertDetail>),
    /// Several alerts acknowledged at once; the last one as answered.
    AlertsAcked {
        count: usize,
        /// Resolved (or gone) meanwhile, so left alone.
        skipped: usize,
        last: Option<Box<Alert>>,
    },
    /// An alert acknowledged or unacknowledged.
    AlertChanged {
        alert: Box<Alert>,
        what: &'static str,
    },
    Rules(ListResponse<AlertRule>),
    /// Which nodes the rule in the editor matches now.
    RulePreview(Vec<RulePreviewRow>),
    RuleSaved(Box<AlertRule>),
    RuleDeleted(String),
    Maintenance(ListResponse<MaintenanceWindow>),
    MaintenanceChanged(Box<MaintenanceWindow>),
    Channels(ListResponse<Channel>),
    ChannelSaved(Box<Channel>),
    ChannelUpdated(Box<Channel>),
    ChannelDeleted(String),
    /// A test notification sent, or why not.
    ChannelTested {
        name: String,
        error: Option<String>,
    },
    /// A new enrollment token with its join code, shown once.
    TokenCreated(Box<CreatedToken>),
    /// The certificate a server presents, before it is trusted.
    Probed {
        url: String,
        fingerprint: Fingerprint,
    },
    /// The server has no admin yet: the setup screen comes next.
    SetupRequired {
        url: String,
        pin: Option<Fingerprint>,
    },
    SignedIn(Box<LoginResponse>),
    SignedOut,
    Jobs(ListResponse<Job>),
    /// One job's devices, for its inbox.
    Devices {
        job_id: i64,
        list: ListResponse<Device>,
    },
    /// What the new-scan form offers: approved collectors (the local one first) and SNMP
    /// credentials.
    ScanChoices {
        collectors: Vec<String>,
        credentials: Vec<String>,
    },
    /// A job queued or cancelled.
    JobChanged {
        job: Box<Job>,
        what: &'static str,
    },
    DevicesImported(Box<DeviceImport>),
    DevicesDismissed(u64),
    /// The directory sign-in settings, loaded or just saved.
    LdapSettings(Box<LdapSettings>),
    LdapSaved(Box<LdapSettings>),
    /// A directory test's steps for `username`.
    LdapTested {
        username: String,
        report: Box<LdapTestReport>,
    },
    /// The saved contexts (read locally, delivered like a reply).
    Contexts(crate::profile::Profiles),
}

/// A failed API call and what was being done, for the status line.
#[derive(Debug)]
pub struct Failure {
    pub doing: &'static str,
    pub error: Error,
}

impl Failure {
    /// The server could not be reached at all (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self.error, Error::Connect { .. })
    }

    /// The session ended or was never valid.
    pub fn is_signed_out(&self) -> bool {
        self.error.status() == Some(401) && !self.error.is(ErrorCode::InvalidCredentials)
    }

    /// The failure in plain words.
    pub fn message(&self) -> String {
        let reason = match &self.error {
            Error::Api { message, .. } => message.clone(),
            other => other.to_string(),
        };
        format!("{} failed: {reason}", self.doing)
    }
}

/// An API call on its way: a future that ends in an outcome.
pub type Task = Pin<Box<dyn Future<Output = Result<Reply, Failure>> + Send>>;

/// Wraps a client call as a task; `doing` names it in error messages ("creating the user").
pub fn task<F>(doing: &'static str, call: F) -> Task
where
    F: Future<Output = Result<Reply, Error>> + Send + 'static,
{
    Box::pin(async move { call.await.map_err(|error| Failure { doing, error }) })
}
