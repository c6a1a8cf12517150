//! Test harness: the real server, in-process, over HTTPS on 127.0.0.1:0 with a temporary data
//! dir, and the real `shared` client pinned to its certificate.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use plantwatch_server::config::{BootstrapAdmin, Config};
use plantwatch_server::server::{Running, start};
use plantwatch_shared::Client;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use plantwatch_shared::Secret;
use plantwatch_shared::api::{
    ComponentKind, CreateCredentialRequest, CreateTokenRequest, CreateUserRequest, CredentialKind,
    CredentialParams, NodeSpec, RegisterRequest, Registration, Role,
};
use reqwest::Method;
use rusqlite::Connection;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub struct TestApp {
    pub server: Running,
    pub dir: tempfile::TempDir,
}

/// A config for a test server in `dir`, with an admin from the environment-style bootstrap.
pub fn test_config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap_admin: Some(BootstrapAdmin {
            username: ADMIN.to_owned(),
            password: ADMIN_PASSWORD.into(),
        }),
        // Test nodes have made-up addresses: only tests that poll loopback turn this on.
        local_polling: false,
        // Nor may it scan: only the discovery tests on their own namespaces turn this on.
        local_discovery: false,
        ..Config::default()
    }
}

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        plantwatch_server::logging::init(Default::default());
    }
}

/// Starts a server with an admin; `tweak` adjusts the config first.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    tweak(&mut config);
    let server = start(config).await.unwrap();
    TestApp { server, dir }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

impl TestApp {
    /// An anonymous client pinned to the server's certificate.
    pub fn client(&self) -> Client {
        Client::new(&self.server.url(), self.server.fingerprint).unwrap()
    }

    /// A client signed in as `username`.
    pub async fn login(&self, username: &str, password: &str) -> Client {
        let client = self.client();
        let session = client.login(username, password).await.unwrap();
        client.with_token(session.token)
    }

    pub async fn admin(&self) -> Client {
        self.login(ADMIN, ADMIN_PASSWORD).await
    }

    /// Creates a user with `role` (password `password-<name>`) and returns a client signed in
    /// as them, and their id.
    pub async fn user_with_role(&self, admin: &Client, name: &str, role: Role) -> (Client, i64) {
        let password = format!("password-{name}");
        let user = admin
            .create_user(&CreateUserRequest {
                username: name.to_owned(),
                password: password.clone().into(),
                role,
            })
            .await
            .unwrap();
        (self.login(name, &password).await, user.id)
    }
}

impl TestApp {
    /// A client for each caller a role matrix checks: anonymous, viewer, operator, admin.
    pub async fn callers(&self, admin: &Client) -> [(&'static str, Client); 4] {
        let (viewer, _) = self.user_with_role(admin, "val", Role::Viewer).await;
        let (operator, _) = self.user_with_role(admin, "otto", Role::Operator).await;
        [
            ("anonymous", self.client()),
            ("viewer", viewer),
            ("operator", operator),
            ("admin", admin.clone()),
        ]
    }
}

impl TestApp {
    /// Sends a request straight to the router, in process (no socket, no TLS), with
    /// `client`'s credentials: what role matrices check, which TLS adds nothing to.
    pub async fn routed(
        &self,
        client: &Client,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        use tower::ServiceExt as _;
        let built = client.request(method, path).build().unwrap();
        let mut request = axum::http::Request::builder()
            .method(built.method().clone())
            .uri(path);
        for (name, value) in built.headers() {
            request = request.header(name, value);
        }
        if let Some(content_type) = content_type {
            request = request.header(axum::http::header::CONTENT_TYPE, content_type);
        }
        let mut request = request.body(axum::body::Body::from(body)).unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40_000,
            ))));
        let router = plantwatch_server::api::app(self.server.state.clone());
        let response = router.oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .unwrap();
        (status, bytes.to_vec())
    }

    /// Sends one request of a role matrix (a JSON `body` if any) through the router and notes
    /// it in `failures` when its status is not `expected`.
    pub async fn expect_status(
        &self,
        failures: &mut Vec<String>,
        who: &str,
        client: &Client,
        method: Method,
        path: &str,
        body: Option<String>,
        expected: u16,
    ) {
        let content_type = body.as_ref().map(|_| "application/json");
        let (status, bytes) = self
            .routed(
                client,
                method.clone(),
                path,
                content_type,
                body.unwrap_or_default().into_bytes(),
            )
            .await;
        if status != expected {
            failures.push(format!(
                "{who} {method} {path}: expected {expected}, got {status} {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
    }
}

pub fn db(app: &TestApp) -> Connection {
    let conn = Connection::open(app.dir.path().join("plantwatch.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

pub async fn token(admin: &Client, name: &str) -> Secret {
    admin
        .create_token(&CreateTokenRequest {
            name: name.into(),
            ..CreateTokenRequest::default()
        })
        .await
        .unwrap()
        .secret
}

pub fn registration(
    token: &Secret,
    kind: ComponentKind,
    name: &str,
    machine: &str,
) -> RegisterRequest {
    RegisterRequest {
        token: token.clone(),
        kind,
        name: name.into(),
        machine_id: machine.into(),
        version: "0.1.0".into(),
        hostname: Some(name.into()),
    }
}

pub async fn register(
    app: &TestApp,
    token: &Secret,
    kind: ComponentKind,
    name: &str,
    machine: &str,
) -> Registration {
    app.client()
        .register(&registration(token, kind, name, machine))
        .await
        .unwrap()
}

pub fn keyed(app: &TestApp, registration: &Registration) -> Client {
    app.client().with_api_key(registration.api_key.clone())
}

/// An SNMPv2c credential with `secret` as its community.
pub fn community(name: &str, secret: &str) -> CreateCredentialRequest {
    CreateCredentialRequest {
        name: name.into(),
        kind: CredentialKind::SnmpV2c,
        params: CredentialParams::default(),
        secrets: BTreeMap::from([("community".to_owned(), secret.into())]),
        networks: Vec::new(),
    }
}

pub fn spec(name: &str, address: &str, collector: &str) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        address: address.into(),
        collector: Some(collector.into()),
        ..NodeSpec::default()
    }
}

/// The metric store of a test server.
pub fn metrics_db(app: &TestApp) -> Connection {
    let conn = Connection::open(app.dir.path().join("metrics.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

/// Every stored raw sample (head and sealed chunks) from `since_ms` of the series matching
/// `node_id` and `metric` (any when `None`), series by series, each in time order.
#[allow(dead_code)]
pub fn stored_samples(
    conn: &Connection,
    node_id: Option<i64>,
    metric: Option<&str>,
    since_ms: i64,
) -> Vec<(i64, f64)> {
    let ids: Vec<i64> = conn
        .prepare(
            "SELECT id FROM series WHERE (?1 IS NULL OR node_id = ?1)
                AND (?2 IS NULL OR metric = ?2) ORDER BY id",
        )
        .unwrap()
        .query_map(rusqlite::params![node_id, metric], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let (head, _) = plantwatch_server::metrics_store::head::replay(conn).unwrap();
    ids.into_iter()
        .flat_map(|id| {
            plantwatch_server::metrics_store::chunks::raw_points(
                conn,
                &head,
                id,
                since_ms,
                plantwatch_server::metrics_store::chunks::MAX_TS_MS,
            )
            .unwrap()
        })
        .collect()
}

/// Enrolls a collector called `name` with a new token and approves it.
pub async fn approved_collector(app: &TestApp, admin: &Client, name: &str) -> Registration {
    let token = token(admin, name).await;
    let registration = register(
        app,
        &token,
        ComponentKind::Collector,
        name,
        &format!("m-{name}"),
    )
    .await;
    admin
        .approve_component(registration.component_id)
        .await
        .unwrap();
    registration
}

/// `promtool check metrics` (Prometheus's parser and linter) on the exposition.
pub fn promtool(text: &str) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is needed: .ci/run installs it");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
