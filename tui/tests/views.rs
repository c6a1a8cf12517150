//! Every screen, view and overlay drawn on ratatui's `TestBackend` at 80x24 and 120x40 and
//! compared with insta snapshots. The clock is fixed and the data made up, so nothing volatile
//! reaches a snapshot; colour is off, as with `NO_COLOR`, so the text alone must say everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use std::collections::BTreeMap;

use plantwatch_shared::api::{
    Aggregation, Alert, AlertDetail, AlertEvent, AlertRule, AlertState, AttachedCredential,
    AuditEntry, BuiltinRule, Channel, ChannelKind, ChannelSettings, Comparison, Component,
    ComponentKind, ComponentStatus, CreatedToken, Credential, CredentialKind, CredentialParams,
    Delivery, Device, DeviceStatus, EnrollmentToken, FoundBy, Health, Job, JobState, JoinCode,
    ListResponse, MaintenanceScope, MaintenanceWindow, Me, MetricSeries, MetricsAnswer, Node,
    NodeStatus, NodeType, Recurrence, Role, RuleAggregation, RulePreviewRow, RuleSpec, ScanOptions,
    SeriesKind, SessionInfo, Severity, Summary, TokenState, User,
};
use plantwatch_shared::api::{AuditAction, CertificateFinding, Check, ErrorCode, UserSource};
use plantwatch_shared::{Error, Fingerprint, Secret};
use plantwatch_tui::app::App;
use plantwatch_tui::event::{Event, Failure, Reply};
use plantwatch_tui::keymap::Action;
use plantwatch_tui::profile::{Context, Profiles};
use plantwatch_tui::sites::{SiteAlert, SiteStatus};
use plantwatch_tui::theme::Theme;
use plantwatch_tui::views::{self, VIEWS};
use plantwatch_tui::widgets::node_charts::{NodeCharts, Outcome};
use plantwatch_tui::widgets::plot::Pick;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-29 16:00:00 UTC);

fn user(id: i64, username: &str, role: Role, days_ago: i64, login_hours_ago: Option<i64>) -> User {
    User {
        id,
        username: username.into(),
        role,
        created_at: NOW - time::Duration::days(days_ago),
        updated_at: NOW - time::Duration::days(days_ago),
        last_login_at: login_hours_ago.map(|h| NOW - time::Duration::hours(h)),
        source: if username.contains('.') {
            UserSource::Ldap
        } else {
            UserSource::Local
        },
        role_pinned: false,
    }
}

fn node_check(id: i64, spec: &str) -> Check {
    Check {
        id,
        node_id: 2,
        spec: spec.parse().unwrap(),
        created_at: NOW,
    }
}

/// What a `tls` check found: a certificate with `days` left (and some hours), untrusted.
fn certificate(check_id: i64, days: i64) -> CertificateFinding {
    CertificateFinding {
        check_id,
        node_id: 2,
        node: "plc-line1".into(),
        port: 443,
        server_name: "hmi.plant.local".into(),
        error: None,
        tls_version: Some("TLSv1.2".into()),
        subject: "CN=hmi.plant.local".into(),
        issuer: "CN=Plant Issuing CA".into(),
        sans: vec!["hmi.plant.local".into()],
        not_before: Some(NOW - time::Duration::days(365)),
        not_after: Some(time::OffsetDateTime::now_utc() + time::Duration::hours(days * 24 + 6)),
        chain_not_after: None,
        chain_length: 2,
        name_matches: true,
        trusted: false,
        trust_problem: Some("it does not chain to a trusted root".into()),
        signature_algorithm: "sha256WithRSAEncryption".into(),
        key: "RSA 2048".into(),
        fingerprint: "AB:CD".into(),
        checked_at: NOW,
    }
}

fn users() -> Vec<User> {
    vec![
        user(1, "admin", Role::Admin, 90, Some(0)),
        user(2, "ana.lopez", Role::Operator, 60, Some(3)),
        user(3, "night-shift", Role::Viewer, 45, Some(20)),
        user(4, "ben@plant1", Role::Operator, 30, None),
        user(5, "scada-ro", Role::Viewer, 10, Some(200)),
        user(6, "karl", Role::Admin, 2, Some(30)),
    ]
}

fn context(name: &str, token: bool) -> Context {
    Context {
        name: name.into(),
        url: format!("https://{name}.example:8443"),
        fingerprint: Some(Fingerprint::of_der(name.as_bytes())),
        username: Some("admin".into()),
        token: token.then(|| "pws_secret".into()),
        alternates: Vec::new(),
    }
}

fn profiles() -> Profiles {
    let mut profiles = Profiles::default();
    profiles.upsert_current(context("plant2", false));
    profiles.upsert_current(context("plant1", true));
    profiles
}

/// Delivers `outcome` as the answer to a call of the view shown.
fn deliver(app: &mut App, outcome: Result<Reply, Failure>) {
    let generation = app.generation();
    app.handle(Event::Done {
        generation,
        origin: Some(app.current),
        outcome,
    });
    app.outbox.clear();
}

fn reply(app: &mut App, reply: Reply) {
    deliver(app, Ok(reply));
}

fn keys(app: &mut App, codes: &[KeyCode]) {
    for code in codes {
        app.handle(Event::Key(KeyEvent::new(*code, KeyModifiers::NONE)));
    }
    app.outbox.clear();
}

fn text(app: &mut App, text: &str) {
    let codes: Vec<KeyCode> = text.chars().map(KeyCode::Char).collect();
    keys(app, &codes);
}

/// A console signed in to plant1 as `role`, with the server's status in.
fn signed_in(role: Role) -> App {
    let mut app = App::new(profiles(), None, Theme { color: false });
    app.start(None);
    app.outbox.clear();
    app.now = NOW;
    reply(
        &mut app,
        Reply::Health {
            health: Box::new(Health {
                status: "ok".into(),
                version: "0.1.0".into(),
                server_time: NOW,
                ha: None,
            }),
            latency: Duration::from_millis(12),
        },
    );
    let name = match role {
        Role::Admin => "admin",
        Role::Operator => "ana.lopez",
        Role::Viewer => "night-shift",
    };
    reply(
        &mut app,
        Reply::Me(Me {
            user: user(1, name, role, 90, Some(0)),
            session: SessionInfo {
                expires_at: NOW + time::Duration::days(7),
                idle_timeout_secs: 43200,
            },
        }),
    );
    app
}

fn on_view(role: Role, view: &str) -> App {
    let mut app = signed_in(role);
    app.go_to(view);
    app.outbox.clear();
    app
}

fn with_users() -> App {
    let mut app = on_view(Role::Admin, "users");
    reply(
        &mut app,
        Reply::Users(ListResponse {
            items: users(),
            total: 6,
        }),
    );
    app
}

fn credential(id: i64, name: &str, kind: CredentialKind, nodes: u64) -> Credential {
    let fields = kind.secret_fields();
    Credential {
        id,
        name: name.into(),
        kind,
        params: match kind {
            CredentialKind::SnmpV1 | CredentialKind::SnmpV2c => CredentialParams::default(),
            CredentialKind::SnmpV3 => CredentialParams {
                username: Some("monitor".into()),
                auth_protocol: Some("sha256".parse().unwrap()),
                priv_protocol: Some("aes128".parse().unwrap()),
                ..CredentialParams::default()
            },
            _ => CredentialParams {
                username: Some("svc-monitor".into()),
                domain: Some("PLANT".into()),
                ..CredentialParams::default()
            },
        },
        secrets: fields.iter().map(|f| ((*f).to_owned(), None)).collect(),
        revealed: false,
        nodes,
        networks: vec!["10.10.0.0/16".into()],
        created_at: NOW - time::Duration::days(20),
        updated_at: NOW - time::Duration::days(id),
    }
}

fn credentials() -> Vec<Credential> {
    vec![
        credential(1, "plant-ro", CredentialKind::SnmpV2c, 42),
        credential(2, "legacy-v1", CredentialKind::SnmpV1, 3),
        credential(3, "v3-monitor", CredentialKind::SnmpV3, 12),
        credential(4, "windows-svc", CredentialKind::Windows, 2),
        credential(5, "linux-ssh", CredentialKind::Ssh, 0),
    ]
}

fn node(id: i64, name: &str, address: &str, node_type: NodeType, status: NodeStatus) -> Node {
    Node {
        id,
        name: name.into(),
        address: address.into(),
        node_type,
        tags: vec![format!("line-{}", id % 3 + 1)],
        collector_id: Some(1),
        collector: Some("plant1-local".into()),
        template_id: None,
        template: None,
        interval_s: None,
        modbus_unit: None,
        parent_id: (id > 1).then_some(1),
        parent: (id > 1).then(|| "core-sw-1".into()),
        other_parents: Vec::new(),
        notes: None,
        status,
        status_reason: None,
        credentials: vec![AttachedCredential {
            id: 1,
            name: "plant-ro".into(),
            kind: CredentialKind::SnmpV2c,
            priority: 0,
        }],
        created_at: NOW - time::Duration::days(30),
        updated_at: NOW - time::Duration::days(id),
        last_sample_at: None,
        rtt_ms: None,
    }
}

fn nodes() -> Vec<Node> {
    vec![
        node(
            1,
            "core-sw-1",
            "10.10.0.1",
            NodeType::Network,
            NodeStatus::Critical,
        ),
        node(
            2,
            "press-plc-2",
            "10.10.2.12",
            NodeType::Plc,
            NodeStatus::Healthy,
        ),
        node(
            3,
            "hmi-line-3",
            "hmi3.plant1.example",
            NodeType::Hmi,
            NodeStatus::Warning,
        ),
        node(
            4,
            "ups-hall-a",
            "10.10.0.40",
            NodeType::Ups,
            NodeStatus::Offline,
        ),
        node(
            5,
            "historian",
            "fe80::5",
            NodeType::Server,
            NodeStatus::Discovering,
        ),
        node(
            6,
            "label-printer",
            "10.10.3.9",
            NodeType::Printer,
            NodeStatus::Maintenance,
        ),
    ]
}

fn with_nodes(role: Role) -> App {
    let mut app = on_view(role, "nodes");
    reply(
        &mut app,
        Reply::Nodes(ListResponse {
            items: nodes(),
            total: 6,
        }),
    );
    reply(
        &mut app,
        Reply::Credentials(ListResponse {
            items: credentials(),
            total: 5,
        }),
    );
    app
}

fn with_credentials(role: Role) -> App {
    let mut app = on_view(role, "credentials");
    reply(
        &mut app,
        Reply::Credentials(ListResponse {
            items: credentials(),
            total: 5,
        }),
    );
    app
}

fn draw(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| plantwatch_tui::ui::render(app, frame))
        .unwrap();
    terminal.backend().to_string()
}

/// Snapshots `app` at 80x24 and 120x40.
fn snap(name: &str, app: &App) {
    insta::assert_snapshot!(format!("{name}_80x24"), draw(app, 80, 24));
    insta::assert_snapshot!(format!("{name}_120x40"), draw(app, 120, 40));
}

#[test]
fn login_screen_for_a_first_start() {
    let mut app = App::new(Profiles::default(), None, Theme { color: false });
    app.start(None);
    snap("login_welcome", &app);
}

#[test]
fn login_screen_for_an_ended_session_keeps_url_and_user() {
    let mut app = App::new(profiles(), None, Theme { color: false });
    app.start(Some("plant2"));
    snap("login_again", &app);
}

#[test]
fn unknown_certificate_asks_once_always_or_refuse() {
    let mut app = App::new(Profiles::default(), None, Theme { color: false });
    app.start(None);
    reply(
        &mut app,
        Reply::Probed {
            url: "https://plant9.example:8443".into(),
            fingerprint: Fingerprint::of_der(b"plant9"),
        },
    );
    snap("trust_prompt", &app);
}

#[test]
fn a_server_without_admin_shows_the_setup_screen() {
    let mut app = App::new(Profiles::default(), None, Theme { color: false });
    app.start(None);
    reply(
        &mut app,
        Reply::SetupRequired {
            url: "https://plant9.example:8443".into(),
            pin: None,
        },
    );
    text(&mut app, "ABCD-EFGH-JKLM");
    keys(&mut app, &[KeyCode::Tab]);
    text(&mut app, "first admin");
    snap("setup", &app);
    // Esc goes back to the login screen for that server; nothing quits.
    keys(&mut app, &[KeyCode::Esc]);
    assert!(!app.quit);
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("Sign in to a plantwatch server"),
        "{screen}"
    );
    assert!(screen.contains("https://plant9.example:8443"), "{screen}");
}

#[test]
fn dashboard_for_an_admin_and_a_viewer() {
    snap("dashboard_admin", &signed_in(Role::Admin));
    snap("dashboard_viewer", &signed_in(Role::Viewer));
}

/// One of an active/standby pair: the dashboard names this server's role, term and peer, and
/// the context learns the peer (to move to it by itself).
#[test]
fn dashboard_of_a_server_of_a_pair_shows_its_role_and_peer() {
    use plantwatch_shared::api::ha::{HaHealth, HaRole, ServerAddress};
    let mut app = signed_in(Role::Admin);
    let me = ServerAddress {
        url: "https://plant1.example:8443".into(),
        fingerprint: Some(Fingerprint::of_der(b"plant1")),
    };
    let peer = ServerAddress {
        url: "https://plant1-b.example:8443".into(),
        fingerprint: Some(Fingerprint::of_der(b"plant1-b")),
    };
    reply(
        &mut app,
        Reply::Health {
            health: Box::new(Health {
                status: "ok".into(),
                version: "0.1.0".into(),
                server_time: NOW,
                ha: Some(HaHealth {
                    name: "plant-a".into(),
                    role: HaRole::Active,
                    term: 7,
                    active: Some(me.clone()),
                    servers: vec![me, peer.clone()],
                }),
            }),
            latency: Duration::from_millis(12),
        },
    );
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("plant-a active (term 7), peer https://plant1-b.example:8443"),
        "{screen}"
    );
    let context = app.profiles.get("plant1").unwrap();
    assert_eq!(context.alternates, vec![peer]);
}

#[test]
fn users_view_lists_users() {
    snap("users", &with_users());
}

#[test]
fn users_filtered_and_sorted() {
    let mut app = with_users();
    keys(&mut app, &[KeyCode::Char('/')]);
    text(&mut app, "!admin");
    keys(
        &mut app,
        &[KeyCode::Enter, KeyCode::Char('R'), KeyCode::Char('R')],
    );
    snap("users_filtered_sorted", &app);
}

#[test]
fn create_user_form_checks_as_you_type() {
    let mut app = with_users();
    keys(&mut app, &[KeyCode::Char('c')]);
    text(&mut app, "new user");
    keys(&mut app, &[KeyCode::Tab]);
    text(&mut app, "short");
    snap("users_create_form", &app);
}

#[test]
fn deleting_a_user_asks_first() {
    let mut app = with_users();
    keys(&mut app, &[KeyCode::Down, KeyCode::Char('d')]);
    snap("users_delete_confirm", &app);
}

#[test]
fn a_directory_users_role_is_pinned_and_their_password_is_the_directorys() {
    let mut app = with_users();
    // ana.lopez comes from the directory: `p` says where her password lives, no form opens.
    keys(&mut app, &[KeyCode::Down, KeyCode::Char('p')]);
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("ana.lopez's password is the directory's"),
        "{screen}"
    );
    assert!(!screen.contains("New password for"), "{screen}");
    // Unpinning a role nobody pinned says so.
    keys(&mut app, &[KeyCode::Char('u')]);
    assert!(draw(&app, 120, 40).contains("ana.lopez's role is not pinned"));
    // `r` warns that the role will be pinned.
    keys(&mut app, &[KeyCode::Char('r')]);
    snap("users_directory_role_form", &app);
}

#[test]
fn user_details_open_with_enter() {
    let mut app = with_users();
    keys(&mut app, &[KeyCode::Down, KeyCode::Enter]);
    snap("users_detail", &app);
}

#[test]
fn help_lists_the_views_keys() {
    let mut app = with_users();
    keys(&mut app, &[KeyCode::Char('?')]);
    snap("users_help", &app);
}

#[test]
fn palette_lists_matching_views() {
    let mut app = signed_in(Role::Admin);
    keys(&mut app, &[KeyCode::Char(':')]);
    snap("palette_all", &app);
    text(&mut app, "c");
    snap("palette_c", &app);
}

#[test]
fn contexts_view_marks_the_current_one() {
    let mut app = on_view(Role::Viewer, "ctx");
    reply(&mut app, Reply::Contexts(profiles()));
    snap("contexts", &app);
}

fn event(id: i64, node: Option<&str>, kind: &str, message: &str) -> plantwatch_shared::api::Event {
    use plantwatch_shared::api::{
        CollectedEvent, Event, EventSeverity, SyslogInfo, TrapInfo, Varbind,
    };
    let trap = (kind == "trap").then(|| TrapInfo {
        version: "v2c".into(),
        inform: false,
        oid: "1.3.6.1.6.3.1.1.5.3".into(),
        name: Some("linkDown".into()),
        uptime: Some(12_345),
        agent_address: None,
        varbinds: vec![Varbind {
            oid: "1.3.6.1.2.1.2.2.1.2.7".into(),
            value_type: "octet-string".into(),
            value: "Gi0/7".into(),
        }],
    });
    let syslog = (kind == "syslog").then(|| SyslogInfo {
        format: "rfc3164".into(),
        facility: "daemon".into(),
        hostname: None,
        program: Some("historian".into()),
        procid: None,
        msgid: None,
        sent_at: None,
    });
    Event {
        id,
        node_id: node.map(|_| id),
        node: node.map(str::to_owned),
        collector_id: 1,
        collector: "local".into(),
        event: CollectedEvent {
            uid: format!("u-{id}"),
            kind: kind.parse().unwrap(),
            source: format!("10.0.0.{id}"),
            severity: if kind == "trap" {
                EventSeverity::Warning
            } else {
                EventSeverity::Error
            },
            message: message.into(),
            received_at: time::OffsetDateTime::from_unix_timestamp(1_796_000_000 + id).unwrap(),
            trap,
            syslog,
        },
    }
}

#[test]
fn events_view_follows_newest_first_pauses_and_opens_one_whole() {
    let mut app = on_view(Role::Viewer, "events");
    reply(
        &mut app,
        Reply::Events(ListResponse {
            items: vec![
                event(2, None, "syslog", "archive disk 91 % full"),
                event(
                    1,
                    Some("sw-hall-a"),
                    "trap",
                    "linkDown 1.3.6.1.2.1.2.2.1.2.7=Gi0/7",
                ),
            ],
            total: 2,
        }),
    );
    // Following: what came after arrives oldest first and goes on top.
    reply(
        &mut app,
        Reply::Events(ListResponse {
            items: vec![event(3, Some("ups-1"), "syslog", "On battery")],
            total: 1,
        }),
    );
    let screen = draw(&app, 120, 30);
    let order: Vec<usize> = ["On battery", "archive disk", "linkDown"]
        .iter()
        .map(|text| screen.find(text).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{screen}");
    assert!(
        screen.contains("unknown 10.0.0.2") && screen.contains("following"),
        "{screen}"
    );
    snap("events", &app);
    // Paused: new events wait until resumed.
    keys(&mut app, &[KeyCode::Char('p')]);
    reply(
        &mut app,
        Reply::Events(ListResponse {
            items: vec![event(4, None, "syslog", "should wait")],
            total: 1,
        }),
    );
    let paused = draw(&app, 120, 30);
    assert!(
        paused.contains("paused") && !paused.contains("should wait"),
        "{paused}"
    );
    keys(&mut app, &[KeyCode::Char('p')]);
    assert!(draw(&app, 120, 30).contains("following"));
    // The trap, whole: every varbind.
    keys(&mut app, &[KeyCode::Char('G'), KeyCode::Enter]);
    let detail = draw(&app, 120, 30);
    assert!(detail.contains("Event 1 from sw-hall-a"), "{detail}");
    assert!(
        detail.contains("1.3.6.1.2.1.2.2.1.2.7") && detail.contains("octet-string: Gi0/7"),
        "{detail}"
    );
}

#[test]
fn certs_view_lists_the_soonest_expiry_first_and_opens_one_whole() {
    let mut app = on_view(Role::Viewer, "certs");
    let mut legacy = certificate(21, 0);
    legacy.node = "old-hmi".into();
    legacy.error = Some("the server speaks only TLS older than 1.2".into());
    legacy.tls_version = Some("TLS <1.2".into());
    legacy.not_after = None;
    legacy.issuer = String::new();
    let mut later = certificate(22, 300);
    later.node = "historian".into();
    later.trusted = true;
    let mut wrong = certificate(23, 40);
    wrong.node = "mes".into();
    wrong.name_matches = false;
    reply(
        &mut app,
        Reply::Certificates(ListResponse {
            items: vec![later, wrong, certificate(11, 5), legacy],
            total: 4,
        }),
    );
    let screen = draw(&app, 120, 40);
    let order: Vec<usize> = ["old-hmi", "plc-line1", "mes", "historian"]
        .iter()
        .map(|name| screen.find(name).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{screen}");
    snap("certs", &app);
    keys(&mut app, &[KeyCode::Down, KeyCode::Enter]);
    let detail = draw(&app, 120, 40);
    assert!(
        detail.contains("Certificate of plc-line1 port 443"),
        "{detail}"
    );
    assert!(
        detail.contains("no: it does not chain to a trusted root"),
        "{detail}"
    );
}

#[test]
fn audit_view_newest_first_and_details() {
    let mut app = on_view(Role::Admin, "audit");
    let entries = (1..=30)
        .map(|i| AuditEntry {
            id: i,
            at: NOW - time::Duration::minutes(60 - i),
            user_id: Some(1),
            actor: if i % 3 == 0 { "karl" } else { "admin" }.into(),
            action: AuditAction::parse(
                ["user.create", "user.update", "auth.login"][usize::try_from(i % 3).unwrap()],
            ),
            target: Some(format!("user:{}", i % 7)),
            source: Some("127.0.0.1".into()),
            details: (i % 3 == 1).then(|| serde_json::json!({"role": "operator"})),
        })
        .collect();
    reply(
        &mut app,
        Reply::Audit(ListResponse {
            items: entries,
            total: 30,
        }),
    );
    snap("audit", &app);
    keys(&mut app, &[KeyCode::Down, KeyCode::Down, KeyCode::Enter]);
    snap("audit_detail", &app);
}

#[test]
fn an_unreachable_server_keeps_the_last_data_under_a_banner() {
    let mut app = with_users();
    deliver(
        &mut app,
        Err(Failure {
            doing: "loading the users",
            error: Error::Connect {
                url: "https://plant1.example:8443".into(),
                reason: "connection refused".into(),
            },
        }),
    );
    snap("users_unreachable", &app);
}

#[test]
fn api_errors_show_in_plain_words() {
    let mut app = with_users();
    deliver(
        &mut app,
        Err(Failure {
            doing: "deleting the user",
            error: Error::Api {
                status: 409,
                code: ErrorCode::LastAdmin,
                message: "the last admin cannot be deleted".into(),
                details: None,
            },
        }),
    );
    snap("users_api_error", &app);
}

#[test]
fn nodes_view_for_an_operator_and_a_viewer() {
    snap("nodes", &with_nodes(Role::Operator));
    let viewer = with_nodes(Role::Viewer);
    let screen = draw(&viewer, 120, 40);
    assert!(
        !screen.contains("create") && !screen.contains("attach"),
        "{screen}"
    );
    assert!(screen.contains("details"), "{screen}");
}

#[test]
fn nodes_filter_and_sort_by_status() {
    let mut app = with_nodes(Role::Operator);
    keys(&mut app, &[KeyCode::Char('/')]);
    text(&mut app, "10.10");
    // Problems first by default; Shift+S once reverses it.
    let screen = draw(&app, 120, 40);
    let row = |name: &str| screen.find(name).unwrap();
    assert!(
        row("core-sw-1") < row("ups-hall-a") && row("ups-hall-a") < row("press-plc-2"),
        "{screen}"
    );
    keys(&mut app, &[KeyCode::Enter, KeyCode::Char('S')]);
    snap("nodes_filtered_sorted", &app);
    let screen = draw(&app, 120, 40);
    let row = |name: &str| screen.find(name).unwrap();
    assert!(row("press-plc-2") < row("core-sw-1"), "{screen}");
}

#[test]
fn node_form_fits_80x24_and_checks_as_you_type() {
    let mut app = with_nodes(Role::Operator);
    keys(&mut app, &[KeyCode::Char('c')]);
    text(&mut app, "plc-7");
    keys(&mut app, &[KeyCode::Tab]);
    text(&mut app, "10.10.2.300");
    keys(
        &mut app,
        &[KeyCode::Tab, KeyCode::Right, KeyCode::Right, KeyCode::Tab],
    );
    text(&mut app, "line 2");
    snap("nodes_create_form", &app);
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("Notes") && screen.contains("Esc cancels"),
        "{screen}"
    );
    // Submitting with errors sends nothing.
    for _ in 0..7 {
        keys(&mut app, &[KeyCode::Tab]);
    }
    keys(&mut app, &[KeyCode::Enter]);
    assert!(app.outbox.is_empty());
}

#[test]
fn editing_a_node_prefills_the_form_and_submits_once() {
    let mut app = with_nodes(Role::Operator);
    // The healthy PLC is last: problems come first.
    keys(&mut app, &[KeyCode::End, KeyCode::Char('e')]);
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("Edit press-plc-2") && screen.contains("core-sw-1"),
        "{screen}"
    );
    for _ in 0..9 {
        app.handle(Event::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
    }
    text(&mut app, "moved to hall B");
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "one update call");
}

#[test]
fn node_details_show_credentials_masked_parent_and_history() {
    let mut app = with_nodes(Role::Viewer);
    keys(&mut app, &[KeyCode::Down, KeyCode::Enter]);
    let mut shown = nodes()[1].clone();
    shown.notes = Some("press line 2, cabinet 4".into());
    let history = vec![
        AuditEntry {
            id: 2,
            at: NOW - time::Duration::hours(2),
            user_id: Some(2),
            actor: "ana.lopez".into(),
            action: AuditAction::NodeAttachCredential,
            target: Some("node:2".into()),
            source: None,
            details: None,
        },
        AuditEntry {
            id: 1,
            at: NOW - time::Duration::days(30),
            user_id: Some(1),
            actor: "admin".into(),
            action: AuditAction::NodeCreate,
            target: Some("node:2".into()),
            source: None,
            details: None,
        },
    ];
    reply(
        &mut app,
        Reply::NodeDetail {
            node: Box::new(shown),
            history,
            checks: vec![
                node_check(11, "tls:443@hmi.plant.local"),
                node_check(12, "http:80/health"),
                node_check(13, "tcp:502"),
            ],
            certificates: vec![certificate(11, 5)],
            vsphere: Vec::new(),
            host: Box::new(plantwatch_shared::api::NodeHost {
                node_id: 2,
                inventory: Some(plantwatch_shared::api::HostInventory {
                    os: Some("Microsoft Windows Server 2019 Standard".into()),
                    os_build: Some("17763".into()),
                    manufacturer: Some("Dell Inc.".into()),
                    model: Some("PowerEdge R640".into()),
                    serial: Some("7XJ2KQ2".into()),
                    hotfixes: Some(14),
                    ..Default::default()
                }),
                inventory_at: Some(NOW),
                watch: plantwatch_shared::api::HostWatch {
                    services: vec!["OpcEnum".into(), "WinCC".into()],
                    processes: vec!["pdlrt.exe".into()],
                },
            }),
        },
    );
    snap("nodes_detail", &app);
}

#[test]
fn a_vcenters_details_list_its_hosts_vms_and_datastores_problems_first() {
    use plantwatch_shared::api::vsphere::VsphereObject;
    let mut app = with_nodes(Role::Viewer);
    keys(&mut app, &[KeyCode::Down, KeyCode::Enter]);
    let mut vcenter = nodes()[1].clone();
    vcenter.name = "vc01".into();
    vcenter.node_type = plantwatch_shared::api::NodeType::Vcenter;
    let object = |kind: &str, name: &str, state: &str, detail: &str| VsphereObject {
        kind: kind.into(),
        name: name.into(),
        moref: format!("{kind}-{name}"),
        node_id: Some(40),
        state: state.into(),
        detail: detail.into(),
    };
    reply(
        &mut app,
        Reply::NodeDetail {
            node: Box::new(vcenter),
            history: Vec::new(),
            checks: Vec::new(),
            certificates: Vec::new(),
            vsphere: vec![
                object("host", "esx01", "poweredOn", "line-1"),
                object("host", "esx02", "notResponding", "line-1"),
                object("vm", "historian", "poweredOn", "esx01"),
                object("vm", "scada-02", "poweredOff", "esx01"),
                object("datastore", "ds-ssd", "accessible", "91 % of 2.0 TiB"),
                object("vm", "old-hmi", "gone", ""),
            ],
            host: Box::default(),
        },
    );
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("2 hosts, 2 VMs (1 on), 1 datastores, 1 gone"),
        "{screen}"
    );
    let at = |text: &str| {
        screen
            .find(text)
            .unwrap_or_else(|| panic!("{text} in {screen}"))
    };
    assert!(
        at("host      esx02") < at("host      esx01"),
        "a host not responding comes first"
    );
    assert!(
        at("vm        scada-02") < at("vm        historian"),
        "a VM powered off first"
    );
    snap("nodes_detail_vcenter", &app);
}

#[test]
fn operators_add_a_check_to_a_node_checked_as_they_type() {
    let mut app = with_nodes(Role::Operator);
    keys(&mut app, &[KeyCode::Char('s')]);
    text(&mut app, "tcp");
    snap("nodes_add_check", &app);
    assert!(draw(&app, 120, 40).contains("needs a port"));
    text(&mut app, ":502");
    keys(&mut app, &[KeyCode::Enter]);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "one call adds the check");
    // Viewers are not offered the key.
    let viewer = with_nodes(Role::Viewer);
    assert!(!draw(&viewer, 120, 40).contains("<s>"));
}

#[test]
fn operators_set_what_a_node_must_run_from_what_it_has() {
    let mut app = with_nodes(Role::Operator);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('w'),
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "one call loads the node's lists");
    app.outbox.clear();
    let host = plantwatch_shared::api::NodeHost {
        node_id: 1,
        watch: plantwatch_shared::api::HostWatch {
            services: vec!["OpcEnum".into(), "WinCC".into()],
            processes: vec!["pdlrt.exe".into()],
        },
        ..Default::default()
    };
    reply(
        &mut app,
        Reply::NodeHost {
            node: "core-sw-1".into(),
            host: Box::new(host.clone()),
            saved: false,
        },
    );
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("What core-sw-1 must run"), "{screen}");
    assert!(screen.contains("OpcEnum; WinCC"), "{screen}");
    assert!(screen.contains("pdlrt.exe"), "{screen}");
    // Saved: one call, then the overlay closes with what the node must run now.
    keys(&mut app, &[KeyCode::Enter]);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "one call saves both lists");
    reply(
        &mut app,
        Reply::NodeHost {
            node: "core-sw-1".into(),
            host: Box::new(host),
            saved: true,
        },
    );
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("core-sw-1 must run services: OpcEnum, WinCC; processes: pdlrt.exe"),
        "{screen}"
    );
    // Viewers are not offered the key.
    let viewer = with_nodes(Role::Viewer);
    assert!(!draw(&viewer, 120, 40).contains("<w>"));
}

#[test]
fn marked_nodes_get_a_credential_attached_in_one_go() {
    let mut app = with_nodes(Role::Operator);
    keys(
        &mut app,
        &[KeyCode::Char(' '), KeyCode::Down, KeyCode::Char(' ')],
    );
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("2 marked") && screen.contains("✓ core-sw-1"),
        "{screen}"
    );
    keys(&mut app, &[KeyCode::Char('a')]);
    text(&mut app, "nope");
    snap("nodes_attach_form", &app);
    keys(&mut app, &[KeyCode::Tab, KeyCode::Enter]);
    assert!(draw(&app, 80, 24).contains("no credential named"));
    assert!(app.outbox.is_empty());
    keys(&mut app, &[KeyCode::BackTab]);
    for _ in 0..4 {
        keys(&mut app, &[KeyCode::Backspace]);
    }
    text(&mut app, "plant-ro");
    keys(&mut app, &[KeyCode::Tab]);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1);
    app.outbox.clear();
    reply(
        &mut app,
        Reply::Attached {
            credential: "plant-ro".into(),
            nodes: 2,
        },
    );
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("plant-ro attached to 2 node(s)") && !screen.contains("marked"),
        "{screen}"
    );
}

#[test]
fn a_reply_goes_back_to_the_view_that_asked_for_it() {
    // The nodes view loads the credentials for its attach form; the credentials view, which
    // shows the same kind of reply, must not take it as its own.
    let mut app = with_nodes(Role::Operator);
    let nodes_view = app.current;
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char(':'),
        KeyModifiers::NONE,
    )));
    text(&mut app, "credentials");
    keys(&mut app, &[KeyCode::Enter]);
    assert_ne!(app.current, nodes_view);
    let screen = draw(&app, 100, 24);
    assert!(!screen.contains("plant-ro"), "{screen}");
    // The console's own calls (the session) are every view's to see.
    let generation = app.generation();
    app.handle(Event::Done {
        generation,
        origin: Some(nodes_view),
        outcome: Ok(Reply::Credentials(ListResponse {
            items: credentials(),
            total: 5,
        })),
    });
    assert!(!draw(&app, 100, 24).contains("plant-ro"));
    app.handle(Event::Done {
        generation,
        origin: Some(app.current),
        outcome: Ok(Reply::Credentials(ListResponse {
            items: credentials(),
            total: 5,
        })),
    });
    assert!(draw(&app, 100, 24).contains("plant-ro"));
}

#[test]
fn deleting_a_node_asks_first() {
    let mut app = with_nodes(Role::Operator);
    keys(&mut app, &[KeyCode::Char('d')]);
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("Delete node core-sw-1 (10.10.0.1)?"),
        "{screen}"
    );
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('y'),
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1);
}

#[test]
fn credentials_view_masks_every_secret() {
    let app = with_credentials(Role::Operator);
    snap("credentials", &app);
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("community ***") && screen.contains("attach"),
        "{screen}"
    );
    assert!(
        !screen.contains("reveal") && !screen.contains("create"),
        "{screen}"
    );
}

#[test]
fn creating_a_credential_asks_the_kind_then_its_fields_masked() {
    let mut app = with_credentials(Role::Admin);
    keys(&mut app, &[KeyCode::Char('c')]);
    text(&mut app, "plant-v3");
    keys(&mut app, &[KeyCode::Tab, KeyCode::Right, KeyCode::Right]);
    snap("credentials_create_kind", &app);
    keys(&mut app, &[KeyCode::Enter]);
    text(&mut app, "monitor");
    keys(
        &mut app,
        &[KeyCode::Tab, KeyCode::Right, KeyCode::Right, KeyCode::Tab],
    );
    text(&mut app, "auth-secret-1");
    snap("credentials_create_v3", &app);
    assert!(!draw(&app, 80, 24).contains("auth-secret-1"));
}

#[test]
fn editing_a_credential_reveals_it_masked_and_reveal_shows_it() {
    let mut app = with_credentials(Role::Admin);
    keys(&mut app, &[KeyCode::Char('e')]);
    let mut revealed = credentials()[0].clone();
    revealed.secrets = BTreeMap::from([("community".to_owned(), Some("s3cret-plant".into()))]);
    revealed.revealed = true;
    reply(
        &mut app,
        Reply::CredentialRevealed {
            credential: Box::new(revealed.clone()),
            edit: true,
        },
    );
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("Edit plant-ro") && screen.contains("••••••••••••"),
        "{screen}"
    );
    assert!(!screen.contains("s3cret-plant"), "{screen}");
    // Its networks are in the form too.
    assert!(screen.contains("10.10.0.0/16"), "{screen}");
    // Unchanged: nothing is sent.
    keys(&mut app, &[KeyCode::Tab, KeyCode::Tab]);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert!(app.outbox.is_empty());
    assert!(app.overlay.is_none());
    keys(&mut app, &[KeyCode::Char('v')]);
    reply(
        &mut app,
        Reply::CredentialRevealed {
            credential: Box::new(revealed),
            edit: false,
        },
    );
    snap("credentials_revealed", &app);
}

// ---- the keymap ----

/// Every action, listed through an exhaustive match so a new one cannot be forgotten here.
fn all_actions() -> Vec<Action> {
    let all = [
        Action::Quit,
        Action::Back,
        Action::Close,
        Action::Help,
        Action::Palette,
        Action::Filter,
        Action::Refresh,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::Open,
        Action::SortBy(0),
        Action::Create,
        Action::Edit,
        Action::ChangeRole,
        Action::ResetPassword,
        Action::Delete,
        Action::Mark,
        Action::Attach,
        Action::Reveal,
        Action::Approve,
        Action::Revoke,
        Action::NewToken,
        Action::AddContext,
        Action::RemoveContext,
        Action::Charts,
        Action::Range(0),
        Action::Acknowledge,
        Action::Unacknowledge,
        Action::History,
        Action::JumpToNode,
        Action::Toggle,
        Action::Test,
        Action::Import,
        Action::Dismiss,
        Action::Leave,
        Action::Unpin,
        Action::AddCheck,
        Action::Pause,
        Action::NewEventRule,
        Action::Reroot,
        Action::SuggestParents,
        Action::ApplyParents,
        Action::NextPane,
        Action::TopOf,
        Action::Cursor(1),
        Action::Zoom(1),
        Action::Scroll(1),
        Action::Export,
        Action::MarkAll,
        Action::BulkEdit,
        Action::MustRun,
    ];
    for action in all {
        match action {
            Action::Quit
            | Action::Back
            | Action::Close
            | Action::Help
            | Action::Palette
            | Action::Filter
            | Action::Refresh
            | Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom
            | Action::Open
            | Action::SortBy(_)
            | Action::Create
            | Action::Edit
            | Action::ChangeRole
            | Action::ResetPassword
            | Action::Delete
            | Action::Mark
            | Action::Attach
            | Action::Reveal
            | Action::Approve
            | Action::Revoke
            | Action::NewToken
            | Action::AddContext
            | Action::RemoveContext
            | Action::Charts
            | Action::Range(_)
            | Action::Acknowledge
            | Action::Unacknowledge
            | Action::History
            | Action::JumpToNode
            | Action::Toggle
            | Action::Test
            | Action::Import
            | Action::Dismiss
            | Action::Leave
            | Action::Unpin
            | Action::AddCheck
            | Action::Pause
            | Action::NewEventRule
            | Action::Reroot
            | Action::SuggestParents
            | Action::ApplyParents
            | Action::NextPane
            | Action::TopOf
            | Action::Cursor(_)
            | Action::Zoom(_)
            | Action::Scroll(_)
            | Action::Export
            | Action::MarkAll
            | Action::BulkEdit
            | Action::MustRun => {}
        }
    }
    all.to_vec()
}

const ROLES: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

#[test]
fn no_key_does_two_things_in_any_view_for_any_role() {
    for spec in VIEWS {
        for role in ROLES {
            let bindings = views::bindings_of((spec.make)().as_ref(), role);
            let mut seen = std::collections::HashMap::new();
            for binding in &bindings {
                for key in &binding.keys {
                    if let Some(other) = seen.insert(*key, binding.action) {
                        panic!(
                            "{}: {key} is bound to {other:?} and {:?}",
                            spec.name, binding.action
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_action_is_reachable_by_some_key() {
    let mut bound: Vec<Action> = Vec::new();
    for spec in VIEWS {
        bound.extend(
            views::bindings_of((spec.make)().as_ref(), Role::Admin)
                .iter()
                .map(|b| match b.action {
                    Action::SortBy(_) => Action::SortBy(0),
                    action => action,
                }),
        );
    }
    // The chart ranges are bound while a node's charts are open.
    let mut view = plantwatch_tui::views::nodes::NodesView::new();
    view.charts = Some(NodeCharts::new(nodes()[0].clone()));
    bound.extend(
        views::bindings_of(&view, Role::Viewer)
            .iter()
            .map(|b| b.action),
    );
    // The cursor and the export are bound while one chart is picked.
    if let Some(charts) = &mut view.charts {
        charts.focus = Some(Pick::Top {
            metric: "cpu.load_pct".into(),
        });
    }
    bound.extend(
        views::bindings_of(&view, Role::Viewer)
            .iter()
            .map(|b| b.action),
    );
    // Import, dismiss and leave are bound while a job's inbox is open.
    let mut discovery = plantwatch_tui::views::discovery::DiscoveryView::new();
    discovery.inbox = Some(job(7, "198.18.0.0/24", JobState::Done, 254, 3));
    bound.extend(
        views::bindings_of(&discovery, Role::Admin)
            .iter()
            .map(|b| b.action),
    );
    // Setting parents is bound while the suggestions are shown.
    let mut topology = plantwatch_tui::views::topology::TopologyView::new();
    topology.show_parents(Vec::new());
    bound.extend(
        views::bindings_of(&topology, Role::Operator)
            .iter()
            .map(|b| b.action),
    );
    let bound: Vec<Action> = bound
        .into_iter()
        .map(|action| match action {
            Action::SortBy(_) => Action::SortBy(0),
            Action::Range(_) => Action::Range(0),
            Action::Cursor(_) => Action::Cursor(1),
            Action::Zoom(_) => Action::Zoom(1),
            Action::Scroll(_) => Action::Scroll(1),
            action => action,
        })
        .collect();
    for action in all_actions() {
        assert!(bound.contains(&action), "no key reaches {action:?}");
    }
}

fn series(metric: &str, tags: &[(&str, &str)], base: f64) -> MetricSeries {
    MetricSeries {
        metric: metric.into(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        kind: SeriesKind::Gauge,
        points: (0..60)
            .map(|i| {
                let wave = ((i as f64) / 6.0).sin();
                (NOW.unix_timestamp() - 3_600 + i * 60, base * (1.2 + wave))
            })
            .collect(),
    }
}

fn constant(metric: &str, interface: &str, value: f64) -> MetricSeries {
    let mut series = series(metric, &[("ifName", interface)], 1.0);
    for point in &mut series.points {
        point.1 = value;
    }
    series
}

#[test]
fn node_charts_show_ping_cpu_memory_traffic_disks_and_interfaces() {
    let mut app = with_nodes(Role::Viewer);
    let press =
        |app: &mut App, code| app.handle(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    press(&mut app, KeyCode::Char('m'));
    assert_eq!(app.outbox.len(), 2, "the metrics and the rules");
    let node_id = nodes()[0].id;
    let answer = charts_answer(node_id);
    reply(
        &mut app,
        Reply::NodeMetrics {
            node_id,
            generation: 0,
            answer: Box::new(answer),
        },
    );
    snap("nodes_charts", &app);
    // Another range asks again; Esc goes back to the table.
    let before = app.outbox.len();
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(app.outbox.len(), before + 1, "a call for the 24 h range");
    keys(&mut app, &[KeyCode::Esc]);
    assert!(draw(&app, 80, 24).contains("POLLED"));
}

/// Ping, CPU, memory, disks and two interfaces of a switch over the last hour.
fn charts_answer(node_id: i64) -> MetricsAnswer {
    let mut answer = MetricsAnswer {
        node_id,
        from: NOW.unix_timestamp() - 3_600,
        to: NOW.unix_timestamp(),
        step: 60,
        agg: Aggregation::Avg,
        items: vec![
            series("ping.rtt_avg_ms", &[], 1.5),
            series("ping.loss_pct", &[], 0.0),
            series("cpu.load_pct", &[("cpu", "1")], 20.0),
            series("storage.used_pct", &[("descr", "Physical memory")], 40.0),
            series("storage.used_pct", &[("descr", "/")], 30.0),
            series(
                "interface.in_octets_total",
                &[("ifName", "Gi0/1")],
                1_200_000.0,
            ),
            series(
                "interface.out_octets_total",
                &[("ifName", "Gi0/1")],
                300_000.0,
            ),
            constant("interface.oper_status", "Gi0/1", 1.0),
            series("interface.in_octets_total", &[("ifName", "Gi0/2")], 0.0),
            constant("interface.oper_status", "Gi0/2", 2.0),
        ],
        total: 3,
        truncated: false,
    };
    // Octets are counters: they come as rates.
    for series in &mut answer.items {
        if series.metric.ends_with("octets_total") {
            series.kind = SeriesKind::Counter;
        }
    }
    answer
}

fn uplink_rule() -> AlertRule {
    let spec: RuleSpec = serde_json::from_value(serde_json::json!({
        "name": "uplink busy", "metric": "interface.in_octets_total",
        "tags": {"ifName": "Gi0/*"}, "comparison": ">", "warning": 1_500_000.0
    }))
    .unwrap();
    AlertRule {
        id: 9,
        spec,
        builtin: None,
        created_at: NOW,
        updated_at: NOW,
    }
}

#[test]
fn every_series_of_a_node_lists_and_one_charts_with_axes_thresholds_and_a_cursor() {
    let mut app = with_nodes(Role::Viewer);
    keys(&mut app, &[KeyCode::Char('m')]);
    let node_id = nodes()[0].id;
    reply(
        &mut app,
        Reply::NodeMetrics {
            node_id,
            generation: 0,
            answer: Box::new(charts_answer(node_id)),
        },
    );
    reply(
        &mut app,
        Reply::Rules(ListResponse {
            items: vec![uplink_rule()],
            total: 1,
        }),
    );
    // Tab: every series, grouped by measurement, with its unit and a sparkline.
    keys(&mut app, &[KeyCode::Tab]);
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("Series (10)"), "{screen}");
    assert!(
        screen.contains("interface") && screen.contains("ifName=Gi0/1"),
        "{screen}"
    );
    assert!(
        screen.contains("1.20 ms") && screen.contains("963 kB/s"),
        "{screen}"
    );
    snap("nodes_charts_series", &app);
    // The interfaces come first by measurement; Enter on Gi0/1's in-octets charts in and out.
    let row = app_screen_row(&screen, "in_octets_total");
    keys(
        &mut app,
        &vec![KeyCode::Down; row]
            .into_iter()
            .chain([KeyCode::Enter])
            .collect::<Vec<_>>(),
    );
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("interface.in_octets_total Gi0/1 (b/s)"),
        "{screen}"
    );
    assert!(
        screen.contains("warning: uplink busy 12.0 Mb/s"),
        "the threshold in bits: {screen}"
    );
    assert!(
        screen.contains("UTC") && screen.contains("latest"),
        "{screen}"
    );
    // ← puts the cursor on the last step, again one step earlier: its reading is shown.
    keys(&mut app, &[KeyCode::Left, KeyCode::Left]);
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("at 11-29 15:58"), "{screen}");
    snap("nodes_charts_focus", &app);
    // Zoom and scroll ask for the new window; Esc leaves the chart, then the charts.
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('+'),
        KeyModifiers::NONE,
    )));
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('['),
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 2, "a call per window change");
    keys(&mut app, &[KeyCode::Esc]);
    assert!(draw(&app, 120, 40).contains("Series (10)"));
    keys(&mut app, &[KeyCode::Esc]);
    assert!(draw(&app, 80, 24).contains("POLLED"));
}

/// The position of the first list row that mentions `text`, counted from the first row.
fn app_screen_row(screen: &str, text: &str) -> usize {
    let lines: Vec<&str> = screen.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.contains("MEASUREMENT"))
        .expect("a header");
    lines[header + 1..]
        .iter()
        .position(|l| l.contains(text))
        .expect("a row")
}

#[test]
fn a_picked_chart_exports_as_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let mut charts = NodeCharts::new(nodes()[0].clone());
    charts.export_dir = dir.path().to_owned();
    assert!(
        matches!(charts.on_action(Action::Export), Outcome::Info(text) if text.contains("Pick a chart"))
    );
    charts.set_answer(charts_answer(nodes()[0].id));
    charts.rules = vec![uplink_rule()];
    // The panels' interface table: Gi0/1 first (natural order); t charts every in-rate.
    assert_eq!(charts.on_action(Action::TopOf), Outcome::Reload);
    let Outcome::Info(said) = charts.on_action(Action::Export) else {
        panic!("no message");
    };
    assert!(said.starts_with("✔ wrote"), "{said}");
    let mut written: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(
        written[0].starts_with("core-sw-1_interface.in_octets_total_")
            && written[0].ends_with(".png"),
        "{written:?}"
    );
    let svg = std::fs::read_to_string(dir.path().join(&written[1])).unwrap();
    assert!(
        svg.contains("Gi0/1") && svg.contains("Gi0/2") && svg.contains("warning: uplink busy"),
        "{svg}"
    );
}

#[test]
fn node_charts_of_a_meter_show_its_own_values_instead_of_cpu_and_memory() {
    let mut app = with_nodes(Role::Viewer);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('m'),
        KeyModifiers::NONE,
    )));
    let answer = MetricsAnswer {
        node_id: nodes()[0].id,
        from: NOW.unix_timestamp() - 3_600,
        to: NOW.unix_timestamp(),
        step: 60,
        agg: Aggregation::Avg,
        items: vec![
            series("ping.rtt_avg_ms", &[], 1.5),
            series("meter.voltage", &[("phase", "L1")], 230.5),
            series("meter.power_w", &[], 8_100.0),
            series("modbus.up", &[], 1.0),
            series("tank.level_pct", &[("tank", "T-101")], 85.0),
        ],
        total: 5,
        truncated: false,
    };
    reply(
        &mut app,
        Reply::NodeMetrics {
            node_id: nodes()[0].id,
            generation: 0,
            answer: Box::new(answer),
        },
    );
    let screen = draw(&app, 120, 40);
    // Charts of the first two values by name, and every value's latest in the list; the
    // Modbus health stays out of it.
    assert!(
        screen.contains("meter.power_w") && screen.contains("meter.voltage phase=L1"),
        "{screen}"
    );
    assert!(
        !screen.contains("CPU (%)") && screen.contains(" values "),
        "{screen}"
    );
    assert!(screen.contains("tank.level_pct tank=T-101"), "{screen}");
    assert!(!screen.contains("modbus.up"), "{screen}");
    snap("nodes_charts_meter", &app);
}

#[test]
fn help_lists_every_binding_of_every_view() {
    for spec in VIEWS {
        let mut app = on_view(Role::Admin, spec.name);
        keys(&mut app, &[KeyCode::Char('?')]);
        let screen = draw(&app, 120, 60);
        for binding in app.bindings() {
            let line = format!("{:<16}{}", binding.keys_label(), binding.help);
            assert!(
                screen.contains(&line),
                "{}: help lacks {line:?}\n{screen}",
                spec.name
            );
        }
    }
}

#[test]
fn viewers_are_offered_no_edit_action_and_no_admin_view() {
    for spec in VIEWS {
        let bindings = views::bindings_of((spec.make)().as_ref(), Role::Viewer);
        assert!(
            bindings.iter().all(|b| !b.action.is_edit()),
            "{} offers a viewer an edit action",
            spec.name
        );
    }
    let mut app = signed_in(Role::Viewer);
    let names: Vec<&str> = app.palette_matches("").iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "dashboard",
            "search",
            "alerts",
            "nodes",
            "certs",
            "events",
            "topology",
            "discovery",
            "credentials",
            "collectors",
            "rules",
            "templates",
            "maintenance",
            "sites",
            "contexts"
        ]
    );
    app.go_to("users");
    assert_eq!(app.view_name(), "dashboard");
    assert!(
        draw(&app, 80, 24).contains("The users view is for the admin role"),
        "{}",
        draw(&app, 80, 24)
    );
    // Even a key that would create a user in the users view does nothing here.
    keys(&mut app, &[KeyCode::Char('c')]);
    assert!(app.overlay.is_none());
}

#[test]
fn operators_do_not_see_the_users_view_either() {
    let mut app = signed_in(Role::Operator);
    app.go_to("us");
    assert_eq!(app.view_name(), "dashboard");
    let mut admin = signed_in(Role::Admin);
    admin.go_to("us");
    assert_eq!(admin.view_name(), "users");
}

#[test]
fn back_clears_the_filter_then_returns_then_quits() {
    let mut app = with_users();
    keys(
        &mut app,
        &[KeyCode::Char('/'), KeyCode::Char('x'), KeyCode::Enter],
    );
    assert!(draw(&app, 80, 24).contains("/x"));
    keys(&mut app, &[KeyCode::Char('q')]);
    assert!(!draw(&app, 80, 24).contains("/x"));
    assert_eq!(app.view_name(), "users");
    keys(&mut app, &[KeyCode::Char('q')]);
    assert_eq!(app.view_name(), "dashboard");
    assert!(!app.quit);
    keys(&mut app, &[KeyCode::Esc]);
    assert!(!app.quit, "Esc on the first view does not quit");
    keys(&mut app, &[KeyCode::Char('q')]);
    assert!(app.quit);
}

#[test]
fn a_revealed_v3_credential_keeps_its_labels_apart_from_the_values() {
    let mut app = with_credentials(Role::Admin);
    let mut revealed = credentials()[0].clone();
    revealed.secrets = BTreeMap::from([
        ("auth_password".to_owned(), Some("pass-phrase-1".into())),
        ("privacy_password".to_owned(), Some("pass-phrase-2".into())),
    ]);
    revealed.revealed = true;
    reply(
        &mut app,
        Reply::CredentialRevealed {
            credential: Box::new(revealed),
            edit: false,
        },
    );
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("auth_password    pass-phrase-1"),
        "{screen}"
    );
    assert!(
        screen.contains("privacy_password pass-phrase-2"),
        "{screen}"
    );
}

#[test]
fn views_opened_from_the_palette_replace_each_other_and_q_quits() {
    let mut app = signed_in(Role::Admin);
    for view in ["nodes", "alerts", "users", "credentials", "audit", "alerts"] {
        keys(&mut app, &[KeyCode::Char(':')]);
        text(&mut app, view);
        keys(&mut app, &[KeyCode::Enter]);
        assert_eq!(app.view_name(), view);
    }
    // A drill-down remembers where it came from: `q` goes back there, then quits.
    app.go_to("nodes");
    keys(&mut app, &[KeyCode::Char('q')]);
    assert_eq!(app.view_name(), "alerts");
    assert!(!app.quit);
    keys(&mut app, &[KeyCode::Char('q')]);
    assert!(app.quit, "one q after a tour of six views");
}

#[test]
fn status_messages_expire() {
    let mut app = signed_in(Role::Admin);
    keys(&mut app, &[KeyCode::Char(':')]);
    text(&mut app, "nosuchview");
    keys(&mut app, &[KeyCode::Enter]);
    assert!(draw(&app, 120, 30).contains("There is no view called"));
    app.on_tick(NOW + time::Duration::seconds(5));
    assert!(
        draw(&app, 120, 30).contains("There is no view called"),
        "errors stay a while"
    );
    app.on_tick(NOW + time::Duration::seconds(25));
    assert!(!draw(&app, 120, 30).contains("There is no view called"));
}

#[test]
fn ctrl_c_quits_even_from_a_form() {
    let mut app = with_users();
    keys(&mut app, &[KeyCode::Char('c')]);
    assert!(app.overlay.is_some());
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert!(app.quit);
}

#[test]
fn a_refresh_keeps_cursor_and_filter() {
    let mut app = with_users();
    keys(&mut app, &[KeyCode::Char('/')]);
    text(&mut app, "er");
    keys(&mut app, &[KeyCode::Enter, KeyCode::Down, KeyCode::Down]);
    let before = draw(&app, 80, 24);
    assert!(before.contains("│›ben@plant1"), "{before}");
    // The next load has one more user, listed first; cursor and filter stay.
    let mut more = users();
    more.insert(0, user(7, "aaron", Role::Viewer, 1, None));
    reply(
        &mut app,
        Reply::Users(ListResponse {
            items: more,
            total: 7,
        }),
    );
    let after = draw(&app, 80, 24);
    assert!(after.contains("│›ben@plant1"), "{after}");
    assert!(after.contains("Users (5 of 7) /er"), "{after}");
}

#[test]
fn refresh_is_due_every_10_s_and_every_5_s_while_unreachable() {
    let mut app = with_users();
    // The fixture's clock is behind the real one it started with: that counts as due.
    app.on_tick(NOW);
    assert_eq!(app.outbox.len(), 3);
    app.outbox.clear();
    app.on_tick(NOW + time::Duration::seconds(9));
    assert!(app.outbox.is_empty());
    app.on_tick(NOW + time::Duration::seconds(10));
    // Health, session and the users list.
    assert_eq!(app.outbox.len(), 3);
    app.outbox.clear();
    deliver(
        &mut app,
        Err(Failure {
            doing: "checking the server",
            error: Error::Connect {
                url: "https://plant1.example:8443".into(),
                reason: "connection refused".into(),
            },
        }),
    );
    app.on_tick(NOW + time::Duration::seconds(14));
    assert!(app.outbox.is_empty());
    app.on_tick(NOW + time::Duration::seconds(15));
    assert_eq!(app.outbox.len(), 3);
}

#[test]
fn an_ended_session_returns_to_login_and_late_replies_are_dropped() {
    let mut app = with_users();
    let old = app.generation();
    deliver(
        &mut app,
        Err(Failure {
            doing: "loading the users",
            error: Error::Api {
                status: 401,
                code: ErrorCode::Unauthenticated,
                message: "sign in first".into(),
                details: None,
            },
        }),
    );
    let screen = draw(&app, 80, 24);
    assert!(screen.contains("Your session has ended"), "{screen}");
    assert!(screen.contains("https://plant1.example:8443"), "{screen}");
    assert!(app.profiles.get("plant1").unwrap().token.is_none());
    app.handle(Event::Done {
        generation: old,
        origin: None,
        outcome: Ok(Reply::Users(ListResponse {
            items: users(),
            total: 6,
        })),
    });
    assert!(draw(&app, 80, 24).contains("Your session has ended"));
}

// ---- signing in, trusting, switching ----

/// The login form filled in and submitted, the certificate shown, then `answer` pressed and the
/// server's answer delivered.
fn sign_in_trusting(answer: char) -> App {
    let mut app = App::new(Profiles::default(), None, Theme { color: false });
    app.start(None);
    app.now = NOW;
    text(&mut app, "plant9.example:8443");
    keys(&mut app, &[KeyCode::Enter]);
    text(&mut app, "admin");
    keys(&mut app, &[KeyCode::Enter]);
    text(&mut app, "admin-password");
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "one call: reading the certificate");
    app.outbox.clear();
    let fingerprint = Fingerprint::of_der(b"plant9");
    reply(
        &mut app,
        Reply::Probed {
            url: "https://plant9.example:8443".into(),
            fingerprint,
        },
    );
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char(answer),
        KeyModifiers::NONE,
    )));
    if answer == 'r' {
        assert!(app.outbox.is_empty(), "refused: nothing is sent");
        return app;
    }
    assert_eq!(app.outbox.len(), 1, "one call: signing in");
    app.outbox.clear();
    reply(
        &mut app,
        Reply::SignedIn(Box::new(plantwatch_shared::api::LoginResponse {
            token: "pws_new".into(),
            user: user(1, "admin", Role::Admin, 1, Some(0)),
            session: SessionInfo {
                expires_at: NOW + time::Duration::days(7),
                idle_timeout_secs: 43200,
            },
        })),
    );
    app
}

#[test]
fn trusting_always_saves_the_context_with_its_fingerprint() {
    let app = sign_in_trusting('a');
    let saved = app.profiles.select(None).unwrap();
    assert_eq!(saved.url, "https://plant9.example:8443");
    assert_eq!(saved.fingerprint, Some(Fingerprint::of_der(b"plant9")));
    assert!(draw(&app, 80, 24).contains("ctx plant9.example:8443  admin (admin)"));
}

#[test]
fn trusting_once_saves_nothing() {
    let app = sign_in_trusting('o');
    assert!(app.profiles.contexts.is_empty());
    let screen = draw(&app, 80, 24);
    assert!(screen.contains("ctx (trusted once)"), "{screen}");
    assert!(screen.contains("Dashboard"), "{screen}");
}

#[test]
fn refusing_the_certificate_stays_on_the_login_screen() {
    let app = sign_in_trusting('r');
    let screen = draw(&app, 80, 24);
    assert!(screen.contains("Certificate refused"), "{screen}");
    assert!(
        screen.contains("Sign in to a plantwatch server"),
        "{screen}"
    );
    assert!(app.profiles.contexts.is_empty());
}

#[test]
fn switching_to_a_signed_out_context_asks_to_sign_in_and_add_returns_on_esc() {
    let mut app = on_view(Role::Admin, "contexts");
    reply(&mut app, Reply::Contexts(profiles()));
    // plant2 is listed first and has no session.
    keys(&mut app, &[KeyCode::Enter]);
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("Sign in again to use this context."),
        "{screen}"
    );
    assert!(screen.contains("https://plant2.example:8443"), "{screen}");
    assert_eq!(app.profiles.current.as_deref(), Some("plant2"));
    // Esc: back to the session still open on plant1, which is current again.
    keys(&mut app, &[KeyCode::Esc]);
    assert!(!app.quit);
    assert!(draw(&app, 80, 24).contains("ctx plant1"));
    assert_eq!(app.profiles.current.as_deref(), Some("plant1"));

    let mut app = on_view(Role::Admin, "contexts");
    reply(&mut app, Reply::Contexts(profiles()));
    keys(&mut app, &[KeyCode::Char('a')]);
    assert!(draw(&app, 80, 24).contains("Sign in to a plantwatch server"));
    keys(&mut app, &[KeyCode::Esc]);
    assert!(draw(&app, 80, 24).contains("Contexts (2)"));
    assert!(!app.quit);
}

#[test]
fn the_context_in_use_cannot_be_removed_but_another_can() {
    let mut app = on_view(Role::Admin, "contexts");
    reply(&mut app, Reply::Contexts(profiles()));
    keys(
        &mut app,
        &[KeyCode::Down, KeyCode::Char('d'), KeyCode::Char('y')],
    );
    assert!(draw(&app, 80, 24).contains("plant1 is the context in use"));
    assert!(app.profiles.get("plant1").is_some());
    keys(
        &mut app,
        &[KeyCode::Up, KeyCode::Char('d'), KeyCode::Char('y')],
    );
    assert!(app.profiles.get("plant2").is_none());
}

#[test]
fn tiny_terminals_draw_without_panicking() {
    let mut apps = vec![
        with_users(),
        App::new(Profiles::default(), None, Theme { color: true }),
    ];
    for overlay_key in ['?', ':', '/', 'c', 'd', 'r', 'p'] {
        let mut app = with_users();
        keys(&mut app, &[KeyCode::Char(overlay_key)]);
        apps.push(app);
    }
    for name in ["dashboard", "contexts", "audit"] {
        apps.push(on_view(Role::Admin, name));
    }
    apps.push(sign_in_trusting('r'));
    for app in &apps {
        for (width, height) in [(1, 1), (2, 3), (20, 5), (40, 10), (79, 23)] {
            draw(app, width, height);
        }
    }
}

fn api_error(doing: &'static str, status: u16, message: &str) -> Failure {
    Failure {
        doing,
        error: Error::Api {
            status,
            code: ErrorCode::AlreadyExists,
            message: message.into(),
            details: None,
        },
    }
}

#[test]
fn a_form_shows_the_failure_of_its_own_call_only() {
    let mut app = with_users();
    keys(&mut app, &[KeyCode::Char('c')]);
    text(&mut app, "ana.lopez");
    keys(&mut app, &[KeyCode::Tab]);
    text(&mut app, "long-enough-1");
    keys(&mut app, &[KeyCode::Tab]);
    text(&mut app, "long-enough-1");
    keys(&mut app, &[KeyCode::Tab]);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "the create call");
    app.outbox.clear();
    assert!(draw(&app, 80, 24).contains("… working"));

    // A background refresh failing meanwhile goes to the status line; the form keeps waiting.
    deliver(
        &mut app,
        Err(api_error("loading the users", 500, "disk full")),
    );
    let screen = draw(&app, 80, 24);
    assert!(screen.contains("… working"), "{screen}");
    assert!(
        screen.contains("loading the users failed: disk full"),
        "{screen}"
    );

    // Its own call's failure shows in the form, which can be sent again.
    deliver(
        &mut app,
        Err(api_error(
            "creating the user",
            409,
            "username ana.lopez is taken",
        )),
    );
    let screen = draw(&app, 80, 24);
    assert!(screen.contains("✖ username ana.lopez is taken"), "{screen}");
    assert!(!screen.contains("… working"), "{screen}");
}

fn component(
    id: i64,
    kind: ComponentKind,
    name: &str,
    status: ComponentStatus,
    seen_minutes_ago: Option<i64>,
) -> Component {
    Component {
        id,
        kind,
        name: name.into(),
        status,
        is_local: name == "local",
        machine_id: format!("machine-{id}"),
        hostname: Some(format!("{name}.plant1")),
        version: Some("0.1.0".into()),
        enrolled_with: (name != "local").then(|| "plant1 rollout".into()),
        created_at: NOW - time::Duration::days(3),
        approved_at: (status != ComponentStatus::Pending).then(|| NOW - time::Duration::days(2)),
        last_seen_at: seen_minutes_ago.map(|m| NOW - time::Duration::minutes(m)),
        node_id: (kind == ComponentKind::Agent).then_some(40 + id),
        node: (kind == ComponentKind::Agent).then(|| format!("{name}-node")),
        target_count: (kind == ComponentKind::Collector).then_some(id as u32 * 7),
        config_sha256: (kind == ComponentKind::Collector).then(|| "ab12".repeat(16)),
        reported_sha256: None,
        config_in_sync: (kind == ComponentKind::Collector && status != ComponentStatus::Pending)
            .then_some(status == ComponentStatus::Online),
        last_errors: Vec::new(),
        outbox: None,
        events: (name == "hall-b").then_some(plantwatch_shared::api::EventCounts {
            received: 1_204,
            rate_limited: 300,
            malformed: 2,
            acknowledged: 17,
        }),
    }
}

/// In the server's order: pending first, then by name.
fn components() -> Vec<Component> {
    let mut south = component(
        4,
        ComponentKind::Collector,
        "hall-b",
        ComponentStatus::Offline,
        Some(45),
    );
    south.last_errors = vec!["cannot reach https://pw.plant1:8443: connection refused".into()];
    vec![
        component(
            5,
            ComponentKind::Collector,
            "north-gate",
            ComponentStatus::Pending,
            Some(1),
        ),
        component(
            6,
            ComponentKind::Agent,
            "historian-01",
            ComponentStatus::Pending,
            Some(2),
        ),
        south,
        component(
            1,
            ComponentKind::Collector,
            "local",
            ComponentStatus::Online,
            Some(0),
        ),
        component(
            7,
            ComponentKind::Collector,
            "old-gateway",
            ComponentStatus::Revoked,
            Some(9000),
        ),
        component(
            3,
            ComponentKind::Agent,
            "scada-srv",
            ComponentStatus::Online,
            Some(0),
        ),
    ]
}

fn with_components(role: Role) -> App {
    let mut app = on_view(role, "collectors");
    reply(
        &mut app,
        Reply::Components(ListResponse {
            items: components(),
            total: 6,
        }),
    );
    app
}

#[test]
fn collectors_view_shows_pending_approvals_first() {
    let app = with_components(Role::Admin);
    snap("collectors_admin", &app);
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("2 waiting for approval"), "{screen}");
    assert!(draw(&app, 80, 24).contains("2 waiting for approval"));
    let viewer = draw(&with_components(Role::Viewer), 80, 24);
    assert!(
        !viewer.contains("approve") && !viewer.contains("join code"),
        "{viewer}"
    );
}

#[test]
fn an_admin_sets_a_collectors_receivers_in_a_form_checked_as_typed() {
    use plantwatch_shared::api::{Receivers, parse_listens};
    let mut app = with_components(Role::Admin);
    // The first row is a pending collector; its receivers are asked for, then the form opens.
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('e'),
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "the receivers are loaded first");
    app.outbox.clear();
    reply(
        &mut app,
        Reply::Receivers {
            id: 1,
            name: "north".into(),
            receivers: Receivers {
                traps: parse_listens("udp:162").unwrap(),
                syslog: Vec::new(),
            },
        },
    );
    let form = draw(&app, 120, 40);
    assert!(
        form.contains("Event receivers of north") && form.contains("udp:162"),
        "{form}"
    );
    keys(&mut app, &[KeyCode::Down]);
    text(&mut app, "udp:514,sctp:601");
    assert!(draw(&app, 120, 40).contains("the protocol is udp or tcp"));
    for _ in 0..8 {
        keys(&mut app, &[KeyCode::Backspace]);
    }
    text(&mut app, "tcp:601");
    snap("collectors_receivers", &app);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "one call sets them");
    // Viewers are not offered the key.
    assert!(!draw(&with_components(Role::Viewer), 120, 40).contains("receivers"));
}

#[test]
fn approving_sends_one_call_and_only_for_pending_ones() {
    let mut app = with_components(Role::Admin);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('a'),
        KeyModifiers::NONE,
    )));
    assert_eq!(
        app.outbox.len(),
        1,
        "one approve call for the pending collector"
    );
    app.outbox.clear();
    keys(&mut app, &[KeyCode::Down, KeyCode::Down, KeyCode::Down]);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('a'),
        KeyModifiers::NONE,
    )));
    assert!(app.outbox.is_empty());
    let screen = draw(&app, 80, 24);
    assert!(screen.contains("local is online, not waiting"), "{screen}");
    // A viewer's `a` does nothing.
    let mut viewer = with_components(Role::Viewer);
    viewer.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('a'),
        KeyModifiers::NONE,
    )));
    assert!(viewer.outbox.is_empty());
}

#[test]
fn approving_an_agent_whose_host_matches_a_node_asks_which_node() {
    let mut app = with_components(Role::Admin);
    reply(
        &mut app,
        Reply::AgentNodeChoice {
            id: 7,
            name: "web-01".into(),
            message: "node(s) web-01 match the agent's host \"web-01\": approve with the node \
                      it reports for, or with a new node"
                .into(),
        },
    );
    let screen = draw(&app, 120, 30);
    assert!(screen.contains("Approve agent web-01"), "{screen}");
    assert!(screen.contains("Node"), "{screen}");
    assert!(screen.contains("type \"new\""), "{screen}");
    // Enter keeps the suggested node: one approve call goes out.
    app.outbox.clear();
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "{}", draw(&app, 120, 30));
}

#[test]
fn revoking_asks_first_and_details_show_errors() {
    let mut app = with_components(Role::Admin);
    keys(
        &mut app,
        &[KeyCode::Down, KeyCode::Down, KeyCode::Char('r')],
    );
    let screen = draw(&app, 80, 24);
    assert!(screen.contains("Revoke collector hall-b?"), "{screen}");
    assert!(app.outbox.is_empty(), "nothing sent before the answer");
    keys(&mut app, &[KeyCode::Esc, KeyCode::Enter]);
    let detail = draw(&app, 120, 40);
    assert!(
        detail.contains("300 over a sender's rate dropped"),
        "{detail}"
    );
    snap("collectors_detail", &app);
}

#[test]
fn a_new_token_shows_its_join_code_ready_to_copy() {
    let mut app = with_components(Role::Admin);
    keys(&mut app, &[KeyCode::Char('t')]);
    text(&mut app, "hall C");
    app.handle(Event::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
    for _ in 0..2 {
        app.handle(Event::Key(KeyEvent::new(
            KeyCode::Backspace,
            KeyModifiers::NONE,
        )));
    }
    text(&mut app, "5y");
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("unknown unit"),
        "checked as typed: {screen}"
    );
    for _ in 0..2 {
        app.handle(Event::Key(KeyEvent::new(
            KeyCode::Backspace,
            KeyModifiers::NONE,
        )));
    }
    text(&mut app, "2d");
    app.outbox.clear();
    // Enter moves to the last field, Enter there submits.
    for _ in 0..2 {
        app.handle(Event::Key(KeyEvent::new(
            KeyCode::Enter,
            KeyModifiers::NONE,
        )));
    }
    assert_eq!(
        app.outbox.len(),
        1,
        "one create call: {}",
        draw(&app, 80, 24)
    );
    app.outbox.clear();
    let code = JoinCode {
        url: "https://plant1.example:8443".into(),
        token: Secret::new(format!("pwe_{}", "A".repeat(43))),
        fingerprint: Some(Fingerprint::of_der(b"plant1")),
        alternates: Vec::new(),
    }
    .encode();
    reply(
        &mut app,
        Reply::TokenCreated(Box::new(CreatedToken {
            token: EnrollmentToken {
                id: 9,
                name: "hall C".into(),
                state: TokenState::Active,
                created_by: Some("admin".into()),
                created_at: NOW,
                expires_at: Some(NOW + time::Duration::days(2)),
                max_uses: None,
                uses: 0,
                revoked_at: None,
            },
            secret: Secret::new(format!("pwe_{}", "A".repeat(43))),
            join_code: code.clone(),
        })),
    );
    snap("collectors_join_code", &app);
    // What the overlay shows, copied line by line, is the join code.
    let screen = draw(&app, 120, 40);
    let overlay: Vec<&str> = screen
        .lines()
        .filter_map(|line| line.split('│').nth(2))
        .collect();
    let first = overlay
        .iter()
        .position(|content| content.starts_with("Join code"))
        .unwrap();
    let copied: String = overlay[first..]
        .iter()
        .take_while(|content| !content.starts_with("On the box"))
        .map(|content| &content[12..])
        .collect::<Vec<_>>()
        .join("\n");
    let parsed: JoinCode = copied.parse().unwrap();
    assert_eq!(parsed.encode(), code);
}

fn alert(id: i64, node: &str, rule: &str, severity: Severity, minutes_ago: i64) -> Alert {
    Alert {
        id,
        rule_id: id,
        rule: rule.into(),
        node_id: Some(id),
        node: Some(node.into()),
        collector_id: None,
        collector: None,
        series: String::new(),
        state: AlertState::Firing,
        severity,
        value: Some(96.5),
        message: format!("{rule} on {node}"),
        flapping: false,
        held: false,
        suppressed: false,
        acked_by: None,
        acked_at: None,
        ack_comment: None,
        started_at: NOW - time::Duration::minutes(minutes_ago),
        fired_at: Some(NOW - time::Duration::minutes(minutes_ago)),
        resolved_at: None,
    }
}

fn alerts() -> Vec<Alert> {
    let mut list = vec![
        alert(1, "plc-line1", "cpu_high", Severity::Warning, 5),
        alert(2, "sw-core-1", "node_unreachable", Severity::Critical, 12),
        alert(3, "ups-hall2", "ups_on_battery", Severity::Critical, 2),
        alert(4, "plc-07", "node_unreachable", Severity::Critical, 11),
    ];
    list[0].acked_by = Some("ana.lopez".into());
    list[0].ack_comment = Some("firmware update running".into());
    list[0].acked_at = Some(NOW - time::Duration::minutes(3));
    list[3].suppressed = true;
    list[3].message = "no successful ping or poll for 660 s".into();
    list[2].held = true;
    list
}

#[test]
fn alerts_view_orders_by_urgency_and_acknowledges_with_a_comment() {
    let mut app = on_view(Role::Operator, "alerts");
    reply(
        &mut app,
        Reply::Alerts(ListResponse {
            items: alerts(),
            total: 4,
        }),
    );
    snap("alerts", &app);
    let detail = AlertDetail {
        alert: alerts()[0].clone(),
        events: vec![
            AlertEvent {
                at: NOW - time::Duration::minutes(5),
                event: "firing".into(),
                severity: Some(Severity::Warning),
                value: Some(96.5),
                actor: None,
                comment: None,
            },
            AlertEvent {
                at: NOW - time::Duration::minutes(3),
                event: "acked".into(),
                severity: None,
                value: None,
                actor: Some("ana.lopez".into()),
                comment: Some("firmware update running".into()),
            },
        ],
        deliveries: vec![Delivery {
            id: 1,
            channel: "ops-hook".into(),
            event: "firing".into(),
            state: "sent".into(),
            attempts: 1,
            last_error: None,
            created_at: NOW - time::Duration::minutes(5),
            sent_at: Some(NOW - time::Duration::minutes(5)),
        }],
    };
    reply(&mut app, Reply::AlertDetail(Box::new(detail)));
    snap("alerts_detail", &app);
    keys(&mut app, &[KeyCode::Esc, KeyCode::Char('a')]);
    text(&mut app, "cabinet door open");
    snap("alerts_ack_form", &app);
    // A viewer is not offered acknowledging.
    let mut viewer = on_view(Role::Viewer, "alerts");
    reply(
        &mut viewer,
        Reply::Alerts(ListResponse {
            items: alerts(),
            total: 4,
        }),
    );
    keys(&mut viewer, &[KeyCode::Char('a')]);
    assert!(!draw(&viewer, 120, 40).contains("Acknowledge alert"));
}

#[test]
fn jumping_from_an_alert_to_its_node_filters_the_nodes_view() {
    let mut app = on_view(Role::Operator, "alerts");
    reply(
        &mut app,
        Reply::Alerts(ListResponse {
            items: alerts(),
            total: 4,
        }),
    );
    keys(&mut app, &[KeyCode::Char('n')]);
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("Nodes"), "{screen}");
    assert!(
        app.views[app.current].title().contains("sw-core-1"),
        "{screen}"
    );
}

fn rule(id: i64, name: &str, builtin: Option<BuiltinRule>, spec: RuleSpec) -> AlertRule {
    AlertRule {
        id,
        spec: RuleSpec {
            name: name.into(),
            ..spec
        },
        builtin,
        created_at: NOW,
        updated_at: NOW,
    }
}

#[test]
fn rules_view_and_the_editor_previews_before_saving() {
    let mut app = on_view(Role::Operator, "rules");
    let cpu = RuleSpec {
        aggregation: RuleAggregation::Avg,
        window_s: 300,
        comparison: Comparison::AtLeast,
        warning: Some(90.0),
        critical: Some(98.0),
        clear: Some(85.0),
        ..RuleSpec::new("", "cpu_total.usage_pct|cpu.load_pct")
    };
    let oven = RuleSpec {
        warning: Some(60.0),
        critical: Some(80.0),
        clear: Some(50.0),
        ..RuleSpec::new("", "temperature.celsius")
    };
    let mut unreachable = RuleSpec::new("", "");
    unreachable.metric = None;
    unreachable.window_s = 300;
    unreachable.critical = Some(1.0);
    reply(
        &mut app,
        Reply::Rules(ListResponse {
            items: vec![
                rule(
                    1,
                    "node_unreachable",
                    Some(BuiltinRule::NodeUnreachable),
                    unreachable,
                ),
                rule(2, "cpu_high", Some(BuiltinRule::CpuHigh), cpu),
                rule(3, "oven_hot", None, oven),
            ],
            total: 3,
        }),
    );
    snap("rules", &app);
    keys(
        &mut app,
        &[KeyCode::Down, KeyCode::Down, KeyCode::Char('e')],
    );
    // Enter moves through the twelve fields and submits on the last.
    for _ in 0..12 {
        app.handle(Event::Key(KeyEvent::new(
            KeyCode::Enter,
            KeyModifiers::NONE,
        )));
    }
    assert_eq!(app.outbox.len(), 1, "the first submit asks for a preview");
    app.outbox.clear();
    reply(
        &mut app,
        Reply::RulePreview(vec![
            RulePreviewRow {
                node_id: 4,
                node: "oven-1".into(),
                series: "temperature.celsius{sensor=zone1}".into(),
                value: Some(72.5),
                severity: Some(Severity::Warning),
            },
            RulePreviewRow {
                node_id: 5,
                node: "oven-2".into(),
                series: "temperature.celsius{sensor=zone1}".into(),
                value: Some(41.0),
                severity: None,
            },
        ]),
    );
    snap("rules_preview", &app);
}

#[test]
fn event_rules_are_listed_with_their_events_and_edited_in_their_own_form() {
    use plantwatch_shared::api::{EventMatch, EventRuleSpec};
    let mut app = on_view(Role::Operator, "event-rules");
    let traps = |names: &[&str]| EventMatch {
        traps: names.iter().map(|n| (*n).to_owned()).collect(),
        ..EventMatch::default()
    };
    let mut link = RuleSpec::new("", "");
    link.metric = None;
    link.event = Some(EventRuleSpec {
        on: traps(&["linkDown"]),
        clear: Some(traps(&["linkUp"])),
        key: vec!["ifIndex".into()],
        severity: Severity::Warning,
        expire_s: 86_400,
    });
    let mut quality = link.clone();
    quality.event = Some(EventRuleSpec {
        on: EventMatch {
            program: Some("runtime".into()),
            text: Some("bad quality".into()),
            ..EventMatch::default()
        },
        clear: None,
        key: vec![],
        severity: Severity::Critical,
        expire_s: 600,
    });
    reply(
        &mut app,
        Reply::Rules(ListResponse {
            items: vec![
                rule(20, "trap_link_down", Some(BuiltinRule::TrapLinkDown), link),
                rule(30, "runtime_quality", None, quality),
            ],
            total: 2,
        }),
    );
    snap("event_rules", &app);
    // A built-in event rule: only severity, expiry and scope to tune.
    keys(&mut app, &[KeyCode::Char('e')]);
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("Expire s") && !screen.contains("Clear traps"),
        "{screen}"
    );
    keys(&mut app, &[KeyCode::Esc]);
    // A new one: what is no trap name is refused as typed; names save at once.
    keys(&mut app, &[KeyCode::Char('E')]);
    text(&mut app, "ups_alarm");
    keys(&mut app, &[KeyCode::Enter]);
    text(&mut app, "upsTrapAlarmEntryAdded, fan fail");
    keys(&mut app, &[KeyCode::Enter]);
    snap("event_rule_form", &app);
    keys(&mut app, &[KeyCode::Up]);
    keys(&mut app, &[KeyCode::Backspace; 10]);
    // Enter moves through the thirteen fields left and saves on the last: no preview.
    for _ in 0..12 {
        keys(&mut app, &[KeyCode::Enter]);
    }
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "{}", draw(&app, 120, 40));
}

#[test]
fn topology_view_shows_the_tree_with_ports_and_goes_to_a_node() {
    use plantwatch_shared::api::{
        NeighbourProtocol, NeighbourRow, Topology, TopologyLink, TopologyNode, UnmanagedNeighbour,
    };
    let mut app = on_view(Role::Viewer, "topology");
    let node = |id, name: &str, health| TopologyNode {
        id,
        name: name.into(),
        address: format!("10.0.0.{id}"),
        health,
        parent_id: None,
    };
    let link = |a, a_port: &str, b, b_port: &str, both_ends, gone| TopologyLink {
        a,
        a_port: Some(a_port.into()),
        b,
        b_port: Some(b_port.into()),
        protocols: vec![NeighbourProtocol::Lldp],
        both_ends,
        first_seen: NOW,
        last_seen: NOW,
        gone,
    };
    let map = Topology {
        nodes: vec![
            node(1, "core", NodeStatus::Healthy),
            node(2, "hall-a", NodeStatus::Warning),
            node(3, "plc-1", NodeStatus::Healthy),
            node(4, "hall-b", NodeStatus::Healthy),
        ],
        links: vec![
            link(1, "Te1/1", 2, "Te0/1", true, false),
            link(2, "Gi0/7", 3, "eth0", false, false),
            link(1, "Te1/2", 4, "Te0/1", true, true),
        ],
        unmanaged: vec![UnmanagedNeighbour {
            seen_by: 2,
            neighbour: NeighbourRow {
                protocol: NeighbourProtocol::Lldp,
                local_port: "Gi0/9".into(),
                chassis_id: None,
                port: None,
                port_descr: None,
                sys_name: Some("cam-7".into()),
                address: None,
                platform: None,
            },
            last_seen: NOW,
        }],
    };
    reply(&mut app, Reply::Topology(Box::new(map)));
    snap("topology", &app);
    // From the PLC: it is the root, hall-a under it, the rest behind.
    keys(
        &mut app,
        &[
            KeyCode::Down,
            KeyCode::Down,
            KeyCode::Down,
            KeyCode::Char('r'),
        ],
    );
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("from plc-1"), "{screen}");
    let rows: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("plc-1") || l.contains("hall-a") || l.contains("core"))
        .collect();
    assert!(
        rows[1].contains("│›plc-1") && rows[2].contains("   hall-a"),
        "{screen}"
    );
    // r again: back to the default roots, the PLC still selected; Enter goes to it.
    keys(&mut app, &[KeyCode::Char('r')]);
    assert!(!draw(&app, 120, 40).contains("from plc-1"));
    keys(&mut app, &[KeyCode::Enter]);
    let title = app.views[app.current].title();
    assert!(
        title.contains("Nodes") && title.contains("plc-1"),
        "{title}"
    );
}

#[test]
fn topology_view_lists_the_parents_the_links_suggest_and_sets_the_marked_ones() {
    use plantwatch_shared::api::ParentSuggestion;
    let mut app = on_view(Role::Operator, "topology");
    let press = |app: &mut App, code: KeyCode| {
        app.handle(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    };
    press(&mut app, KeyCode::Char('p'));
    assert_eq!(app.outbox.len(), 1, "one call loads the suggestions");
    app.outbox.clear();
    let suggestion =
        |node_id, node: &str, now: Option<&str>, parent: &str, port: &str| ParentSuggestion {
            node_id,
            node: node.into(),
            current: now.map(|_| 1),
            current_name: now.map(Into::into),
            suggested: 2,
            suggested_name: parent.into(),
            via_port: Some(port.into()),
        };
    reply(
        &mut app,
        Reply::ParentSuggestions(ListResponse {
            items: vec![
                suggestion(3, "plc-1", None, "hall-a", "Gi0/7"),
                suggestion(5, "plc-2", Some("core"), "hall-a", "Gi0/8"),
            ],
            total: 2,
        }),
    );
    snap("topology_parents", &app);
    // Mark plc-2 only: `a` asks to set that one, `y` sends one request.
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char('a'));
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("Set 1 parents (plc-2 under hall-a)?"),
        "{screen}"
    );
    assert!(app.outbox.is_empty());
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(app.outbox.len(), 1, "one request sets the parents");
    app.outbox.clear();
    reply(&mut app, Reply::ParentsSet(1));
    assert!(draw(&app, 120, 40).contains("Set 1 parents from the links."));
    // p again: back to the tree.
    keys(&mut app, &[KeyCode::Char('p')]);
    assert!(!draw(&app, 120, 40).contains("Parents the links suggest"));
}

#[test]
fn maintenance_and_channels_views() {
    let mut app = on_view(Role::Operator, "maintenance");
    reply(
        &mut app,
        Reply::Maintenance(ListResponse {
            items: vec![
                MaintenanceWindow {
                    id: 2,
                    name: "die change press 4".into(),
                    scope: MaintenanceScope::Node,
                    target: "press-4".into(),
                    starts_at: NOW - time::Duration::minutes(30),
                    ends_at: NOW + time::Duration::minutes(90),
                    recurrence: Recurrence::None,
                    active: true,
                    next_start: Some(NOW - time::Duration::minutes(30)),
                    next_end: Some(NOW + time::Duration::minutes(90)),
                    ended_at: None,
                    created_by: Some("ana.lopez".into()),
                },
                MaintenanceWindow {
                    id: 1,
                    name: "Sunday patching".into(),
                    scope: MaintenanceScope::Tag,
                    target: "windows-servers".into(),
                    starts_at: NOW - time::Duration::days(14),
                    ends_at: NOW - time::Duration::days(14) + time::Duration::hours(2),
                    recurrence: Recurrence::Weekly,
                    active: false,
                    next_start: Some(NOW + time::Duration::days(3)),
                    next_end: Some(NOW + time::Duration::days(3) + time::Duration::hours(2)),
                    ended_at: None,
                    created_by: Some("admin".into()),
                },
            ],
            total: 2,
        }),
    );
    snap("maintenance", &app);
    keys(&mut app, &[KeyCode::Char('c')]);
    snap("maintenance_form", &app);

    let mut app = on_view(Role::Admin, "channels");
    reply(
        &mut app,
        Reply::Channels(ListResponse {
            items: vec![Channel {
                id: 1,
                name: "shift-mail".into(),
                kind: ChannelKind::Email,
                settings: ChannelSettings {
                    smtp_host: Some("relay.plant.local".into()),
                    to: vec!["shift-lead@plant.example".into()],
                    ..ChannelSettings::default()
                },
                secrets: vec!["password".into()],
                min_severity: Severity::Critical,
                tags: vec!["line-1".into()],
                collectors: vec![],
                repeat_s: 1800,
                send_resolved: true,
                enabled: true,
            }],
            total: 1,
        }),
    );
    snap("channels", &app);
    // Enter: the channel whole, its password named but not shown.
    keys(&mut app, &[KeyCode::Enter]);
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("Channel shift-mail") && screen.contains("password (set, not shown)"),
        "{screen}"
    );
    assert!(
        screen.contains("critical+, tag line-1, repeat 1800s"),
        "{screen}"
    );
    keys(&mut app, &[KeyCode::Esc]);
    // e: the same form as a new one, filled in; the secret stays empty and is kept.
    keys(&mut app, &[KeyCode::Char('e')]);
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("Edit channel shift-mail")
            && screen.contains("relay.plant.local")
            && screen.contains("shift-lead@plant.example")
            && screen.contains("keeps the one set"),
        "{screen}"
    );
    for _ in 0..8 {
        keys(&mut app, &[KeyCode::Tab]);
    }
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "one update call");
}

#[test]
fn the_dashboard_shows_the_most_urgent_alerts() {
    let mut app = signed_in(Role::Operator);
    let summary = Summary {
        nodes_by_health: BTreeMap::from([
            ("healthy".into(), 41),
            ("critical".into(), 1),
            ("offline".into(), 2),
            ("warning".into(), 1),
        ]),
        collectors: vec![],
        ingest: Default::default(),
        active_alerts: 4,
        alerts_by_severity: Default::default(),
        newest_alerts: alerts(),
        evaluator_cycle_ms: Some(12.4),
        remote_write: None,
    };
    reply(&mut app, Reply::Summary(Box::new(summary)));
    snap("dashboard_alerts", &app);
}

#[test]
fn the_dashboard_shows_the_remote_write_backlog_while_the_engine_is_down() {
    let mut app = signed_in(Role::Operator);
    let summary = Summary {
        nodes_by_health: BTreeMap::from([("healthy".into(), 12)]),
        remote_write: Some(plantwatch_shared::api::RemoteWriteStatus {
            url: "http://vm.plant.local:8428/api/v1/write".into(),
            queued_samples: 1_250_000,
            max_queued_samples: 50_000_000,
            oldest_queued_age_secs: Some(1_830),
            sent_samples: 9_000_000,
            rejected_samples: 3,
            failed_attempts: 61,
            retrying: true,
            last_success: Some(1_700_000_000),
            last_error: Some("http://vm.plant.local:8428/api/v1/write: Connection refused".into()),
        }),
        ..Summary::default()
    };
    reply(&mut app, Reply::Summary(Box::new(summary)));
    snap("dashboard_remote_write", &app);
}

fn job(id: i64, name: &str, state: JobState, done: u64, hosts: u64) -> Job {
    Job {
        id,
        name: name.into(),
        collector_id: 1,
        collector: "local".into(),
        targets: vec![name.into()],
        exclusions: vec![],
        credentials: vec!["plant-ro".into()],
        options: ScanOptions::default(),
        every_s: None,
        repeat_of: None,
        state,
        total: 254,
        done,
        hosts_found: hosts,
        snmp_identified: hosts / 2,
        rate: Some(84.0),
        eta_s: (state == JobState::Running).then_some(2),
        error: None,
        created_by: Some("ana.lopez".into()),
        created_at: NOW - time::Duration::minutes(5),
        started_at: Some(NOW - time::Duration::minutes(4)),
        finished_at: state
            .is_finished()
            .then_some(NOW - time::Duration::minutes(1)),
        next_run_at: None,
    }
}

fn device(id: i64, address: &str, name: Option<&str>, template: Option<&str>) -> Device {
    Device {
        id,
        job_id: 7,
        address: address.into(),
        dns_name: None,
        sys_name: name.map(Into::into),
        sys_descr: template.map(|t| format!("{t} device, firmware 12.2(55)SE")),
        sys_object_id: template.map(|_| "1.3.6.1.4.1.9.1.617".into()),
        sys_location: template.map(|_| "Hall 2, rack 4".into()),
        sys_contact: None,
        sys_uptime_s: template.map(|_| 1_234_567),
        vendor: template.map(|_| "Cisco".into()),
        template: template.map(Into::into),
        credential: template.map(|_| "plant-ro".into()),
        rtt_ms: Some(0.4),
        open_ports: vec![],
        found_by: FoundBy::Icmp,
        node_id: None,
        node: None,
        seen_before: false,
        changes: vec![],
        status: DeviceStatus::New,
        found_at: NOW - time::Duration::minutes(2),
    }
}

#[test]
fn the_discovery_view_follows_scans_and_imports_from_the_inbox() {
    let mut app = on_view(Role::Operator, "discovery");
    reply(
        &mut app,
        Reply::Jobs(ListResponse {
            items: vec![
                job(7, "198.18.0.0/24", JobState::Running, 120, 9),
                job(6, "10.20.0.0/24", JobState::Done, 254, 31),
                job(5, "10.30.0.0/22", JobState::Cancelled, 300, 2),
            ],
            total: 3,
        }),
    );
    reply(
        &mut app,
        Reply::ScanChoices {
            collectors: vec!["local".into(), "north".into()],
            credentials: vec!["plant-ro".into(), "plant-v3".into()],
        },
    );
    snap("discovery_jobs", &app);

    // The new-scan form checks targets as they are typed.
    keys(&mut app, &[KeyCode::Char('c')]);
    text(&mut app, "10.0.0.0/15");
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("131070 addresses is more than 65536"),
        "{screen}"
    );
    keys(&mut app, &[KeyCode::Backspace, KeyCode::Backspace]);
    text(&mut app, "24");
    // Collector: north; credentials: plant-v3 then plant-ro.
    keys(
        &mut app,
        &[
            KeyCode::Tab,
            KeyCode::Tab,
            KeyCode::Right,
            KeyCode::Tab,
            KeyCode::Right,
            KeyCode::Char(' '),
            KeyCode::Left,
            KeyCode::Char(' '),
        ],
    );
    snap("discovery_form", &app);
    for _ in 0..7 {
        keys(&mut app, &[KeyCode::Tab]);
    }
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "the form sends one request");
    app.outbox.clear();
    keys(&mut app, &[KeyCode::Esc]);

    // The inbox: Enter on the running job.
    keys(&mut app, &[KeyCode::Enter]);
    assert!(app.view_title().contains("inbox"), "{}", app.view_title());
    let mut monitored = device(
        3,
        "198.18.0.12",
        Some("pwr-dc01-temp"),
        Some("geist-sensor"),
    );
    monitored.node = Some("temp-rack1".into());
    monitored.node_id = Some(40);
    monitored.vendor = Some("Geist".into());
    monitored.seen_before = true;
    monitored.changes = vec!["sys_descr".into()];
    let mut tcp = device(4, "198.18.3.10", None, None);
    tcp.found_by = FoundBy::Tcp;
    tcp.open_ports = vec![502, 8443];
    tcp.rtt_ms = Some(0.2);
    // Answering on 8443: a tls check is proposed, to be added at import.
    let lines = plantwatch_tui::views::discovery::detail_lines(&tcp);
    assert!(
        lines
            .iter()
            .any(|(label, value)| label == "Checks" && value == "tls:8443 (added at import)"),
        "{lines:?}"
    );
    // Answering on 502: a Modbus candidate, said so in the template column and the details.
    assert_eq!(tcp.template_hint(), "modbus?");
    assert!(
        lines.iter().any(|(label, _)| label == "Modbus"),
        "{lines:?}"
    );
    let mut named = device(2, "198.18.0.30", None, None);
    named.dns_name = Some("press-line-3.plant.example".into());
    reply(
        &mut app,
        Reply::Devices {
            job_id: 7,
            list: ListResponse {
                items: vec![
                    device(1, "198.18.0.10", Some("core-sw-1"), Some("cisco-ios")),
                    named,
                    monitored,
                    tcp,
                ],
                total: 4,
            },
        },
    );
    keys(
        &mut app,
        &[KeyCode::Char(' '), KeyCode::Down, KeyCode::Char(' ')],
    );
    snap("discovery_inbox", &app);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('i'),
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "one import of the two marked devices");
    app.outbox.clear();
    keys(&mut app, &[KeyCode::Up, KeyCode::Enter]);
    snap("discovery_device", &app);
    keys(&mut app, &[KeyCode::Esc, KeyCode::Esc]);
    assert!(!app.view_title().contains("inbox"), "{}", app.view_title());

    // Viewers see both lists, but not the keys that change anything.
    let spec = views::find("discovery").unwrap().1;
    let offered: Vec<Action> = views::bindings_of((spec.make)().as_ref(), Role::Viewer)
        .into_iter()
        .map(|b| b.action)
        .collect();
    assert!(offered.contains(&Action::Open));
    assert!(!offered.contains(&Action::Create) && !offered.contains(&Action::Delete));
}

#[test]
fn settings_view_shows_the_directory_edits_it_and_shows_a_test_step_by_step() {
    use plantwatch_shared::api::{
        GroupLookup, GroupRole, LdapGroup, LdapSettings, LdapStep, LdapStepKind, LdapTestReport,
    };
    let mut app = on_view(Role::Admin, "settings");
    let settings = LdapSettings {
        enabled: true,
        urls: vec![
            "ldaps://dc1.plant.local".into(),
            "ldaps://dc2.plant.local".into(),
        ],
        bind_dn: "CN=svc-plantwatch,OU=Service,DC=plant,DC=local".into(),
        bind_password_set: true,
        user_base_dn: "OU=People,DC=plant,DC=local".into(),
        user_filter: "(sAMAccountName={user})".into(),
        group_lookup: GroupLookup::InChain,
        group_roles: vec![GroupRole {
            group: "CN=OT-Admins,OU=Groups,DC=plant,DC=local".into(),
            role: Role::Admin,
        }],
        ..LdapSettings::default()
    };
    reply(&mut app, Reply::LdapSettings(Box::new(settings)));
    snap("settings", &app);
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("bind_password") && screen.contains("set"),
        "{screen}"
    );

    // Edit: the forms are filled with what is in force; the password field is empty.
    keys(&mut app, &[KeyCode::Char('e')]);
    snap("settings_connection", &app);
    let screen = draw(&app, 120, 30);
    assert!(
        screen.contains("ldaps://dc1.plant.local ldaps://dc2.plant.local"),
        "{screen}"
    );
    keys(&mut app, &[KeyCode::Esc, KeyCode::Char('r')]);
    snap("settings_roles", &app);
    let screen = draw(&app, 120, 30);
    assert!(
        screen.contains("CN=OT-Admins,OU=Groups,DC=plant,DC=local=admin"),
        "{screen}"
    );
    keys(&mut app, &[KeyCode::Esc]);

    // A test's report: each step, the groups (nested marked) and the verdict.
    let step = |step, ok, detail: &str| LdapStep {
        step,
        ok,
        detail: detail.into(),
        elapsed_ms: 3,
    };
    let report = LdapTestReport {
        ok: true,
        steps: vec![
            step(
                LdapStepKind::Connect,
                false,
                "ldaps://dc1.plant.local: connection refused",
            ),
            step(
                LdapStepKind::Connect,
                true,
                "connected to ldaps://dc2.plant.local",
            ),
            step(LdapStepKind::Tls, true, "LDAPS; certificate SHA-256 AB:CD"),
            step(
                LdapStepKind::ServiceBind,
                true,
                "bound as CN=svc-plantwatch",
            ),
            step(
                LdapStepKind::Search,
                true,
                "found CN=Ana,OU=People,DC=plant,DC=local",
            ),
            step(
                LdapStepKind::Groups,
                true,
                "2 group(s), 1 through nesting (in_chain)",
            ),
            step(
                LdapStepKind::UserBind,
                true,
                "not tried (no password given)",
            ),
            step(LdapStepKind::Role, true, "admin (from CN=OT-Admins)"),
        ],
        url: Some("ldaps://dc2.plant.local".into()),
        dn: Some("CN=Ana,OU=People,DC=plant,DC=local".into()),
        groups: vec![
            LdapGroup {
                dn: "CN=Shift,OU=Groups,DC=plant,DC=local".into(),
                nested: false,
            },
            LdapGroup {
                dn: "CN=OT-Admins,OU=Groups,DC=plant,DC=local".into(),
                nested: true,
            },
        ],
        role: Some(Role::Admin),
    };
    reply(
        &mut app,
        Reply::LdapTested {
            username: "ana".into(),
            report: Box::new(report),
        },
    );
    snap("settings_test", &app);
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("FAILED") && screen.contains("ana would sign in as admin"),
        "{screen}"
    );
}

fn site(name: &str, state: &str, nodes: &[(&str, i64)], alerts: &[(&str, u64)]) -> SiteStatus {
    SiteStatus {
        site: name.into(),
        url: format!("https://{name}.example:8443"),
        current: name == "plant1",
        state: state.into(),
        problem: (state != "ok").then(|| "connecting: connection refused".into()),
        nodes: nodes.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
        alerts: alerts.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
        collectors: 2,
        collectors_offline: usize::from(name == "plant1"),
        answer_ms: Some(12),
    }
}

#[test]
fn sites_view_shows_every_site_worst_first_and_their_alerts_merged() {
    let mut app = signed_in(Role::Viewer);
    app.go_to("sites");
    assert_eq!(app.outbox.len(), 2, "one call per saved site, in parallel");
    reply(
        &mut app,
        Reply::Site(Box::new(site(
            "plant1",
            "ok",
            &[("healthy", 40), ("critical", 1), ("offline", 2)],
            &[("critical", 1), ("warning", 3)],
        ))),
    );
    reply(
        &mut app,
        Reply::Site(Box::new(site("plant2", "unreachable", &[], &[]))),
    );
    let screen = draw(&app, 120, 40);
    let first = screen.find("plant2").expect("plant2 listed");
    assert!(
        first < screen.find("* plant1").expect("plant1 listed"),
        "unreachable first: {screen}"
    );
    assert!(screen.contains("43 (1 critical, 2 offline)"), "{screen}");
    assert!(screen.contains("connection refused"), "{screen}");
    snap("sites", &app);
    // A second answer from the same site replaces its row.
    reply(
        &mut app,
        Reply::Site(Box::new(site("plant1", "ok", &[("healthy", 43)], &[]))),
    );
    assert!(draw(&app, 120, 40).contains("Sites (2)"));
    // Tab: the alerts of every site in one list, critical first, naming the sites not read.
    app.handle(Event::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
    assert_eq!(app.outbox.len(), 1, "one call asks every site");
    let mut merged = vec![
        SiteAlert {
            site: "plant1".into(),
            alert: alert(1, "plc-line1", "cpu_high", Severity::Warning, 5),
        },
        SiteAlert {
            site: "plant3".into(),
            alert: alert(2, "sw-core-1", "node_unreachable", Severity::Critical, 12),
        },
    ];
    plantwatch_tui::sites::sort_alerts(&mut merged);
    reply(
        &mut app,
        Reply::SiteAlerts {
            alerts: merged,
            unread: vec![("plant2".into(), "connection refused".into())],
        },
    );
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("not read: plant2"), "{screen}");
    let critical = screen.find("sw-core-1").expect("the critical alert");
    assert!(
        critical < screen.find("plc-line1").expect("the warning"),
        "{screen}"
    );
    snap("sites_alerts", &app);
    // `:alerts --all-sites` opens the same list from anywhere, whichever pane was shown last.
    keys(&mut app, &[KeyCode::Tab]);
    assert!(draw(&app, 120, 40).contains("Sites (2)"));
    app.go_to("dashboard");
    keys(&mut app, &[KeyCode::Char(':')]);
    text(&mut app, "alerts --all-sites");
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.view_name(), "sites");
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("Alerts of all sites"), "{screen}");
    // Enter switches to the alert's site (plant3 is not saved here: the login asks).
    keys(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.profiles.current.as_deref(), Some("plant1"));
}

fn template(id: i64, name: &str, nodes: i64) -> plantwatch_shared::api::Template {
    serde_json::from_value(serde_json::json!({
        "id": id, "name": name, "vendor": "APC", "interval_s": 30,
        "fingerprints": [{"sys_object_id": "1.3.6.1.4.1.318.1.3", "priority": 0}],
        "metric_count": 2, "source": "built-in", "node_count": nodes,
    }))
    .unwrap()
}

#[test]
fn templates_view_lists_them_and_opens_one_with_what_it_reads() {
    let mut app = on_view(Role::Viewer, "templates");
    reply(
        &mut app,
        Reply::Templates(ListResponse {
            items: vec![template(1, "apc-ups", 3), template(2, "generic", 12)],
            total: 2,
        }),
    );
    snap("templates", &app);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "the template is loaded whole");
    let mut whole = template(1, "apc-ups", 3);
    whole.definition = Some(
        serde_json::from_value(serde_json::json!({
            "name": "apc-ups",
            "scalars": [{"measurement": "ups", "fields": [
                {"name": "load_pct", "oid": "1.3.6.1.4.1.318.1.1.1.4.2.3.0", "kind": "gauge"},
                {"name": "on_battery", "oid": "1.3.6.1.4.1.318.1.1.1.4.1.1.0", "kind": "gauge"}
            ]}]
        }))
        .unwrap(),
    );
    reply(&mut app, Reply::TemplateDetail(Box::new(whole)));
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("Template apc-ups"), "{screen}");
    assert!(
        screen.contains("ups.load_pct  1.3.6.1.4.1.318.1.1.1.4.2.3.0")
            && screen.contains("1.3.6.1.4.1.318.1.3"),
        "{screen}"
    );
}

#[test]
fn slash_on_the_dashboard_searches_everything_and_enter_goes_to_the_hit() {
    use plantwatch_tui::views::search::Hit;
    let mut app = signed_in(Role::Viewer);
    keys(&mut app, &[KeyCode::Char('/')]);
    assert_eq!(app.view_name(), "search");
    let hit = |kind, name: &str, detail: &str, view, filter: &str| Hit {
        kind,
        name: name.into(),
        detail: detail.into(),
        view,
        filter: filter.into(),
    };
    reply(
        &mut app,
        Reply::SearchHits(vec![
            hit(
                "node",
                "press-plc-2",
                "10.10.2.12 · plc · critical · tags line-3",
                "nodes",
                "press-plc-2",
            ),
            hit(
                "node",
                "core-sw-1",
                "10.10.0.1 · network · healthy",
                "nodes",
                "core-sw-1",
            ),
            hit(
                "alert",
                "critical node_unreachable",
                "press-plc-2: no answer for 5 min",
                "alerts",
                "press-plc-2",
            ),
            hit(
                "credential",
                "plant-ro",
                "snmp_v2c · 12 node(s)",
                "credentials",
                "plant-ro",
            ),
            hit(
                "device",
                "PLC-9",
                "10.10.2.19 · Siemens",
                "discovery",
                "10.10.2.0/24",
            ),
        ]),
    );
    // The filter is open: an address finds the node and its alert; a tag finds it too.
    text(&mut app, "10.10.2.1");
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("Search (2 of 5)"), "{screen}");
    assert!(
        screen.contains("press-plc-2") && !screen.contains("core-sw-1"),
        "{screen}"
    );
    keys(&mut app, &[KeyCode::Enter]);
    snap("search", &app);
    keys(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.view_name(), "nodes");
    assert!(draw(&app, 120, 40).contains("/press-plc-2"));
}

#[test]
fn marked_nodes_change_together_after_a_preview_in_one_request() {
    let mut app = with_nodes(Role::Operator);
    // Nothing marked: b says how to mark.
    keys(&mut app, &[KeyCode::Char('b')]);
    assert!(draw(&app, 120, 40).contains("Mark nodes first"));
    // * marks every node the filter shows.
    keys(&mut app, &[KeyCode::Char('/')]);
    text(&mut app, "10.10.");
    keys(&mut app, &[KeyCode::Enter, KeyCode::Char('*')]);
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("· 4 marked"), "{screen}");
    keys(&mut app, &[KeyCode::Char('b')]);
    assert!(draw(&app, 120, 40).contains("Change the 4 marked nodes"));
    text(&mut app, "audited");
    keys(
        &mut app,
        &[KeyCode::Tab, KeyCode::Tab, KeyCode::Tab, KeyCode::Tab],
    );
    text(&mut app, "30");
    // Enter moves to the last field, then submits.
    keys(&mut app, &[KeyCode::Enter, KeyCode::Enter]);
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("Change 4 nodes"), "{screen}");
    assert!(
        screen.contains("core-sw-1: tags line-2 → line-2;audited")
            && screen.contains("interval_s template's → 30 s"),
        "{screen}"
    );
    snap("nodes_bulk_preview", &app);
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('y'),
        KeyModifiers::NONE,
    )));
    assert_eq!(app.outbox.len(), 1, "one request for the four");
    reply(
        &mut app,
        Reply::NodesChanged(Box::new(plantwatch_shared::api::BulkNodesAnswer {
            updated: nodes()[..4].to_vec(),
            deleted: vec![],
        })),
    );
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("✔ Nodes 4 changed in one transaction."),
        "{screen}"
    );
    assert!(!screen.contains("marked"), "marks cleared: {screen}");
}

#[test]
fn the_node_form_completes_parent_template_and_credentials_from_the_real_lists() {
    let mut app = with_nodes(Role::Operator);
    reply(
        &mut app,
        Reply::Templates(ListResponse {
            items: vec![template(1, "cisco-ios", 3), template(2, "cisco-nxos", 1)],
            total: 2,
        }),
    );
    keys(&mut app, &[KeyCode::Char('c')]);
    // Name, address, type, tags, then the parent: "co" completes to the node core-sw-1.
    keys(
        &mut app,
        &[KeyCode::Tab, KeyCode::Tab, KeyCode::Tab, KeyCode::Tab],
    );
    text(&mut app, "co");
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("core-sw-1"), "the rest shown: {screen}");
    assert!(screen.contains("→ completes"), "{screen}");
    keys(&mut app, &[KeyCode::Right, KeyCode::Tab, KeyCode::Tab]);
    text(&mut app, "CISCO-N");
    keys(&mut app, &[KeyCode::Right, KeyCode::Tab]);
    text(&mut app, "plant");
    keys(&mut app, &[KeyCode::Right]);
    let screen = draw(&app, 120, 40);
    snap("nodes_form_completed", &app);
    for value in ["core-sw-1", "cisco-nxos", "plant-ro"] {
        assert!(screen.contains(value), "{value}: {screen}");
    }
}
