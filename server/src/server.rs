//! Start-up and shutdown: data dir, database, first admin or setup code, TLS, listener, and the
//! background loops.

use plantwatch_shared::api::AuditAction;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use plantwatch_shared::Fingerprint;
use plantwatch_shared::api::Role;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{self, hash_password, password_problem, username_problem};
use crate::config::Config;
use crate::db::{self, Db, audit, sessions, users};
use crate::metrics_store::{MetricsStore, Sink, StoreOptions};
use crate::state::AppState;
use crate::vault::{self, Vault};
use crate::{alerting, api, config_delivery, local_collector, tls};

/// How long in-flight requests may take to finish at shutdown.
const GRACE_PERIOD: Duration = Duration::from_secs(10);
/// How often the in-memory last contact of components is written to the database.
const PRESENCE_WRITE_EVERY: Duration = Duration::from_secs(5);
/// How often expired sessions are swept from the database.
const SESSION_SWEEP_EVERY: Duration = Duration::from_secs(600);

/// A server that accepts connections.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Fingerprint of the served certificate; `None` over plain HTTP.
    pub fingerprint: Option<Fingerprint>,
    /// The one-time setup code, when the server has no user yet.
    pub setup_code: Option<String>,
    pub state: AppState,
    /// Held while the server runs, so offline commands (vault rotate) refuse to run beside it.
    _lock: std::fs::File,
    handle: Handle<SocketAddr>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The base URL clients use.
    pub fn url(&self) -> String {
        let scheme = if self.fingerprint.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting connections, lets in-flight requests finish, stops background loops.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.handle.graceful_shutdown(Some(GRACE_PERIOD));
        for task in self.background {
            let _ = task.await;
        }
        self.server
            .await
            .context("server task panicked")?
            .context("server failed")?;
        tracing::info!("Stopped.");
        Ok(())
    }

    /// Serves until SIGINT or SIGTERM (caught by `signals`), then shuts down gracefully.
    pub async fn wait_for_signal(self, mut signals: ShutdownSignals) -> anyhow::Result<()> {
        tokio::select! {
            _ = signals.interrupt.recv() => tracing::info!("SIGINT received, shutting down."),
            _ = signals.terminate.recv() => tracing::info!("SIGTERM received, shutting down."),
        }
        self.shutdown().await
    }
}

/// SIGINT and SIGTERM handlers, installed before the server starts so that a signal sent as soon
/// as it logs `listening on` already means a graceful shutdown.
pub struct ShutdownSignals {
    pub(crate) interrupt: tokio::signal::unix::Signal,
    pub(crate) terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignals {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }
}

/// Starts the server described by `config` and returns once it accepts connections.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    start_with(config, crate::ha::Gate::default()).await
}

/// Starts the server as [`start`] does, acting while `gate` allows (the active of a pair).
pub async fn start_with(config: Config, gate: crate::ha::Gate) -> anyhow::Result<Running> {
    config.validate()?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    prepare_data_dir(&config)?;
    let lock = lock_data_dir(&config)?;

    let db_path = config.database_path();
    let db = tokio::task::spawn_blocking(move || Db::open(&db_path))
        .await
        .context("opening the database")??;
    {
        let settings = config.settings();
        db.call(move |conn| {
            db::settings::record(conn, &settings, crate::clock::unix_secs())
                .map_err(db::DbError::from)
        })
        .await
        .context("recording settings")?;
    }

    let vault = {
        let (db, data_dir, env_key) = (
            db.clone(),
            config.data_dir.clone(),
            config.vault_key.clone(),
        );
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vault> {
            let conn = db.get()?;
            vault::open(&data_dir, env_key.as_ref(), &conn)
        })
        .await
        .context("opening the vault")??
    };
    {
        let (db, dir) = (db.clone(), config.templates_dir());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut conn = db.get()?;
            crate::templates::load_at_start(&mut conn, &dir)
        })
        .await
        .context("loading device templates")??;
    }
    db.call(|conn| crate::alerting::seed(conn).map_err(db::DbError::from))
        .await
        .context("storing the built-in alert rules")?;
    let setup_code = first_admin(&db, &config).await?;
    let local = local_collector::prepare(&db).await?;
    let delivery = Arc::new(config_delivery::Stats::default());
    config_delivery::regenerate_all(&db, &vault, &delivery).await?;
    let tls = if config.insecure_http {
        None
    } else {
        let tls_config = config.clone();
        Some(
            tokio::task::spawn_blocking(move || tls::load_or_generate(&tls_config))
                .await
                .context("loading the TLS certificate")??,
        )
    };
    let fingerprint = tls.as_ref().map(|material| material.fingerprint);

    let remote = crate::remote_write::Remote::from_config(&config)?.map(Arc::new);
    let metrics_path = config.metrics_path();
    let options = StoreOptions {
        retention: config.retention(),
        background_compaction: true,
        sink: if remote.is_some() {
            Sink::RemoteQueue
        } else {
            Sink::Head
        },
        series_limits: config.series_limits(),
        head_max_samples: config.metrics_head_max_samples,
    };
    let metrics =
        tokio::task::spawn_blocking(move || MetricsStore::open_with(&metrics_path, options))
            .await
            .context("opening the metric store")??;
    let state = AppState::new(
        db.clone(),
        vault.clone(),
        config.clone(),
        setup_code.clone(),
        fingerprint,
        delivery.clone(),
        metrics.clone(),
        gate.clone(),
        match &remote {
            Some(remote) => Arc::new(crate::remote_write::RemoteBackend {
                remote: remote.clone(),
                store: metrics,
            }),
            None => Arc::new(crate::metrics_store::backend::Embedded { store: metrics }),
        },
    );
    let app = api::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let (addr, handle, server) = listen(&config, tls.as_ref(), app).await?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut background = vec![
        tokio::spawn(sweep_sessions(
            db.clone(),
            config.session_idle_timeout_secs as i64,
            shutdown_rx.clone(),
        )),
        tokio::spawn(crate::api::events::sweep_every(
            db.clone(),
            config.events_retention_days,
            config.events_max_rows,
            shutdown_rx.clone(),
        )),
        tokio::spawn(config_delivery::run(
            db.clone(),
            vault.clone(),
            delivery,
            shutdown_rx.clone(),
        )),
        tokio::spawn(record_presence(state.clone(), shutdown_rx.clone())),
        tokio::spawn(crate::topology::auto_parents_every(
            db.clone(),
            shutdown_rx.clone(),
        )),
        tokio::spawn(auth::directory::check_sessions_every(
            state.clone(),
            Duration::from_secs(config.ldap_check_interval_secs),
            shutdown_rx.clone(),
        )),
        tokio::spawn(alerting::run(
            state.clone(),
            Duration::from_secs(config.alert_interval_secs),
            alerting::maintenance::time_zone(&config.time_zone).map_err(anyhow::Error::msg)?,
            state.evaluator.clone(),
            shutdown_rx.clone(),
        )),
        tokio::spawn(alerting::notify::run(
            db.clone(),
            vault,
            gate,
            shutdown_rx.clone(),
        )),
        tokio::spawn(crate::discovery::watchdog(
            state.clone(),
            shutdown_rx.clone(),
        )),
        tokio::spawn(local_collector::run(
            local,
            addr,
            fingerprint,
            config.data_dir.join("local-collector"),
            Duration::from_secs(config.push_interval_secs),
            config.local_polling,
            config.local_discovery,
            state.discovery_wake.clone(),
            shutdown_rx.clone(),
        )),
    ];
    if let Some(remote) = remote {
        tracing::info!(url = %remote.write_url, "Metrics go to a remote engine by remote write.");
        background.push(tokio::spawn(crate::remote_write::forwarder::run(
            remote,
            state.metrics.clone(),
            db.clone(),
            shutdown_rx,
        )));
    }

    match fingerprint {
        Some(fp) => tracing::info!("listening on https://{addr} (fingerprint {fp})"),
        None => {
            tracing::warn!("listening on http://{addr} (plain HTTP: for local development only)")
        }
    }
    Ok(Running {
        addr,
        fingerprint,
        setup_code,
        state,
        _lock: lock,
        handle,
        shutdown,
        server,
        background,
    })
}

/// The listener's task: serves until its handle shuts it down.
pub(crate) type Serving = JoinHandle<std::io::Result<()>>;

/// Binds `config.listen` and serves `app` over TLS (plain HTTP without `tls`), with the
/// connection cap and the handshake, header and idle timeouts; returns once it accepts
/// connections. The server and a standby of a pair listen the same way.
pub(crate) async fn listen(
    config: &Config,
    tls: Option<&tls::TlsMaterial>,
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>,
) -> anyhow::Result<(SocketAddr, Handle<SocketAddr>, Serving)> {
    let handle: Handle<SocketAddr> = Handle::new();
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("listening on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    // Connections that hold a place without using it are closed: a TLS handshake gets 10 s,
    // then the first request, a request's headers and the wait for the next request on a
    // kept-alive connection get the header timeout each; and at most `cap` are open at once.
    let cap = crate::listener::connection_cap(
        config.max_connections,
        crate::listener::raise_open_files_limit(),
    );
    let header_timeout = Duration::from_secs(config.http_header_timeout_secs.max(1));
    let acceptor = crate::listener::CappedAcceptor::new(
        cap,
        Duration::from_secs(config.http_idle_timeout_secs.max(1)),
    );
    let mut server = axum_server::from_tcp(listener)?
        .handle(handle.clone())
        .first_request_timeout(header_timeout);
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    let server = match tls {
        Some(material) => {
            let rustls_config =
                RustlsConfig::from_pem(material.cert_pem.clone(), material.key_pem.clone())
                    .await
                    .context("loading the TLS certificate and key")?;
            let acceptor = RustlsAcceptor::new(rustls_config)
                .handshake_timeout(Duration::from_secs(10))
                .acceptor(acceptor);
            let server = server.acceptor(acceptor);
            tokio::spawn(async move { server.serve(app).await })
        }
        None => {
            let server = server.acceptor(acceptor);
            tokio::spawn(async move { server.serve(app).await })
        }
    };
    let Some(addr) = handle.listening().await else {
        return match server.await {
            Ok(Err(error)) => Err(error).context("starting the listener"),
            _ => bail!("the listener stopped before accepting connections"),
        };
    };
    Ok((addr, handle, server))
}

/// Takes the data dir's lock file, or says which process holds it.
pub fn lock_data_dir(config: &Config) -> anyhow::Result<std::fs::File> {
    let path = config.lock_path();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "the data directory {} is in use by a running plantwatch-server; stop it first",
            config.data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("locking {}", path.display()))
        }
    }
}

pub(crate) fn prepare_data_dir(config: &Config) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting the data directory {}", dir.display()))?;
    } else if let Ok(meta) = std::fs::metadata(dir)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %dir.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "The data directory is accessible to other users; chmod 700 it."
        );
    }
    Ok(())
}

/// Creates the admin from the environment when there is no user, or returns a setup code.
async fn first_admin(db: &Db, config: &Config) -> anyhow::Result<Option<String>> {
    let code_file = config.data_dir.join("setup-code");
    let count = db
        .call(|conn| users::count(conn).map_err(db::DbError::from))
        .await?;
    if count > 0 {
        let _ = std::fs::remove_file(&code_file);
        return Ok(None);
    }
    if let Some(admin) = &config.bootstrap_admin {
        let username = admin.username.trim().to_owned();
        if let Some(problem) = username_problem(&username) {
            bail!("PLANTWATCH_ADMIN_USER is not usable: {problem}");
        }
        if let Some(problem) = password_problem(admin.password.expose()) {
            bail!("PLANTWATCH_ADMIN_PASSWORD is not usable: {problem}");
        }
        let hash = hash_password(admin.password.clone()).await?;
        db.call(move |conn| -> Result<(), db::DbError> {
            let tx = conn.transaction()?;
            let now = crate::clock::unix_secs();
            let user = users::insert(&tx, &username, &hash, Role::Admin, now)?;
            let actor = audit::Actor {
                user_id: None,
                name: "system".to_owned(),
                source: None,
            };
            let target = format!("user:{}", user.id);
            audit::record(&tx, &actor, AuditAction::SetupBootstrapAdmin, Some(&target), None, now)?;
            tx.commit()?;
            tracing::info!(user = %user.username, "Created the first admin from PLANTWATCH_ADMIN_USER.");
            Ok(())
        })
        .await?;
        return Ok(None);
    }
    let code = auth::setup_code();
    let _ = std::fs::remove_file(&code_file);
    tls::write_new_file(&code_file, format!("{code}\n").as_bytes(), 0o600)?;
    tracing::warn!(
        "No admin yet. One-time setup code: {code} (also in {}). Enter it on the setup screen of \
         `plantwatch`, or POST it to /api/v1/setup.",
        code_file.display()
    );
    Ok(Some(code))
}

async fn sweep_sessions(db: Db, idle_secs: i64, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(SESSION_SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {
                let swept = db
                    .call(move |conn| sessions::delete_expired(conn, crate::clock::unix_secs(), idle_secs).map_err(db::DbError::from))
                    .await;
                match swept {
                    Ok(0) => {}
                    Ok(count) => tracing::debug!(count, "Swept expired sessions."),
                    Err(error) => tracing::warn!(%error, "Sweeping expired sessions failed."),
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Writes when components were last heard from, in batches (and once more at shutdown).
async fn record_presence(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(PRESENCE_WRITE_EVERY);
    loop {
        let stopping = tokio::select! {
            _ = every.tick() => false,
            _ = shutdown.changed() => true,
        };
        let seen = state.presence.take_unwritten();
        if !seen.is_empty() {
            let written = state
                .db
                .write(move |tx| db::components::record_seen(tx, &seen).map_err(db::DbError::from))
                .await;
            if let Err(error) = written {
                tracing::warn!(%error, "Recording when components were last seen failed.");
            }
        }
        if stopping {
            return;
        }
    }
}
