//! High availability: an active/standby pair that fails over by itself (`docs/ha.md`).
//!
//! Both servers share a directory (`ha_dir`: NFS or any file system both mount). In it the
//! **lease** (`lease.json`, see [`lease`]) names the active server and its **term**; the active
//! renews it every 5 s; a standby that sees it unchanged for 15 s by its own clock takes it
//! with the term raised. The active's databases are replicated by Litestream into
//! `replica/TERM/`, and the standby keeps a live copy by following that replica
//! ([`replication`]). The shared directory is also the **witness**: a server that cannot
//! write the lease there stops acting (fences itself) 10 s after its last renewal, before a
//! standby can take over at 15 s, so a cut link never leaves two servers sending
//! notifications.
//!
//! A standby serves only `GET /healthz` and answers everything else `503` with the code
//! `standby`, the header `x-plantwatch-role: standby` and the pair in the details, so clients
//! move to the active by themselves.

pub mod lease;
pub mod replication;
mod standby;

pub use standby::standby_response;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use plantwatch_shared::Fingerprint;
use plantwatch_shared::api::ha::{HaHealth, HaRole, ServerAddress};

use crate::config::{Config, MetricsBackend};
use crate::db::{self, Db};
use crate::server::{self, ShutdownSignals};
use lease::{Lease, Member};

/// How often the active renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How long a lease may go unrenewed before the standby takes it.
pub const TAKEOVER_AFTER: Duration = Duration::from_secs(15);
/// How long after its last renewal an active stops acting (no ingest, no notification).
pub const FENCE_AFTER: Duration = Duration::from_secs(10);
/// How often each server writes its status and the active its replication beacon.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Longest a notification waits for the standby's copy to hold its alert.
const REPLICATED_WAIT: Duration = Duration::from_secs(10);
/// A member whose status file has not changed for this long is taken as gone.
const MEMBER_STALE: Duration = Duration::from_secs(5);

/// This server's place in the pair, from the settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub dir: PathBuf,
    pub name: String,
    pub url: String,
    pub fingerprint: Option<Fingerprint>,
    pub litestream: PathBuf,
}

impl Settings {
    fn me(&self) -> ServerAddress {
        ServerAddress {
            url: self.url.clone(),
            fingerprint: self.fingerprint,
        }
    }

    fn member(&self, role: HaRole, term: u64) -> Member {
        Member {
            name: self.name.clone(),
            url: self.url.clone(),
            fingerprint: self.fingerprint,
            role,
            term,
            updated_at_ms: lease::now_ms(),
            beacon_seq: None,
            lag_ms: None,
        }
    }
}

/// The databases the pair replicates: the metadata, and the samples unless they go to a
/// remote engine (then only the metadata).
pub fn databases(config: &Config) -> Vec<&'static str> {
    match config.metrics_backend {
        MetricsBackend::Sqlite => vec!["plantwatch.db", "metrics.db"],
        MetricsBackend::RemoteWrite => vec!["plantwatch.db"],
    }
}

/// What the rest of the server asks of the pair; a server without `ha_dir` always acts.
#[derive(Debug, Clone, Default)]
pub struct Gate(Option<Arc<GateState>>);

#[derive(Debug)]
struct GateState {
    settings: Settings,
    term: u64,
    renewed: Mutex<Instant>,
    demoted: AtomicBool,
    /// The replication beacon this active wrote last.
    beacon: AtomicU64,
    /// The other members and what the freshest standby's copy holds.
    peers: Mutex<Peers>,
}

#[derive(Debug, Default)]
struct Peers {
    others: Vec<Member>,
    /// The standby's beacon, and when its status last changed (by this server's clock).
    standby: Option<(u64, Instant, u64)>,
    /// The standby's delay behind this server, as it last wrote it.
    lag_ms: Option<u64>,
}

impl crate::telemetry::registry::Report for Gate {
    fn report(&self, out: &mut crate::telemetry::registry::Exposition) {
        use crate::telemetry::registry::figures as f;
        let Some(state) = &self.0 else {
            return;
        };
        out.declare(&f::HA_TERM);
        out.value(&f::HA_TERM, state.term as f64);
        out.declare(&f::HA_ACTING);
        out.value(&f::HA_ACTING, if self.may_act() { 1.0 } else { 0.0 });
        let peers = lock(&state.peers);
        if let (Some(lag), Some((_, changed, _))) = (peers.lag_ms, peers.standby)
            && changed.elapsed() < MEMBER_STALE
        {
            out.declare(&f::HA_REPLICATION_LAG);
            out.value(&f::HA_REPLICATION_LAG, lag as f64 / 1000.0);
        }
    }
}

impl Gate {
    fn active(settings: Settings, term: u64) -> Gate {
        Gate(Some(Arc::new(GateState {
            settings,
            term,
            renewed: Mutex::new(Instant::now()),
            demoted: AtomicBool::new(false),
            beacon: AtomicU64::new(0),
            peers: Mutex::default(),
        })))
    }

    /// Whether this server may act: always without a pair; in a pair, while it holds the
    /// lease and renewed it within the last 10 s.
    pub fn may_act(&self) -> bool {
        match &self.0 {
            None => true,
            Some(state) => {
                !state.demoted.load(Ordering::SeqCst)
                    && lock(&state.renewed).elapsed() < FENCE_AFTER
            }
        }
    }

    /// The term this server is active in (`None` without a pair).
    pub fn term(&self) -> Option<u64> {
        self.0.as_ref().map(|state| state.term)
    }

    /// The pair as this server sees it, for `/healthz` and `503 standby`.
    pub fn health(&self) -> Option<HaHealth> {
        let state = self.0.as_ref()?;
        let acting = self.may_act();
        let mut servers = vec![state.settings.me()];
        servers.extend(self.alternates());
        Some(HaHealth {
            name: state.settings.name.clone(),
            role: if acting {
                HaRole::Active
            } else {
                HaRole::Standby
            },
            term: state.term,
            active: acting.then(|| state.settings.me()),
            servers,
        })
    }

    /// The other servers of the pair (for join codes).
    pub fn alternates(&self) -> Vec<ServerAddress> {
        let Some(state) = &self.0 else {
            return Vec::new();
        };
        lock(&state.peers)
            .others
            .iter()
            .map(Member::address)
            .collect()
    }

    /// Waits until the standby's copy holds everything committed before the call (at most
    /// 10 s; at once without a pair or without a standby that is following): a notification
    /// is sent only once a server taking over would know it was decided.
    pub async fn replicated(&self) {
        let Some(state) = &self.0 else {
            return;
        };
        let needed = state.beacon.load(Ordering::SeqCst) + 1;
        let started = Instant::now();
        loop {
            let standby = lock(&state.peers).standby;
            match standby {
                Some((seq, changed, _)) if changed.elapsed() < MEMBER_STALE => {
                    if seq >= needed {
                        return;
                    }
                }
                _ => return,
            }
            if started.elapsed() >= REPLICATED_WAIT {
                tracing::warn!(
                    "The standby's copy is more than {} s behind; notifying without waiting.",
                    REPLICATED_WAIT.as_secs()
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn renewed(&self) {
        if let Some(state) = &self.0 {
            *lock(&state.renewed) = Instant::now();
        }
    }

    fn demote(&self) {
        if let Some(state) = &self.0 {
            state.demoted.store(true, Ordering::SeqCst);
        }
    }

    fn since_renewal(&self) -> Duration {
        self.0
            .as_ref()
            .map_or(Duration::ZERO, |state| lock(&state.renewed).elapsed())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The pair settings of `config`, `None` without `ha_dir`.
pub fn settings(
    config: &Config,
    fingerprint: Option<Fingerprint>,
) -> anyhow::Result<Option<Settings>> {
    let Some(dir) = &config.ha_dir else {
        return Ok(None);
    };
    if let Ok(meta) = std::fs::metadata(dir) {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o077 != 0 {
            // The replicas are whole copies of the databases (password hashes, sealed secrets).
            tracing::warn!(
                path = %dir.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "The pair's shared directory is accessible to other users; chmod 700 it."
            );
        }
    }
    let dir = if dir.is_absolute() {
        dir.clone()
    } else {
        std::env::current_dir()
            .context("resolving ha_dir")?
            .join(dir)
    };
    let name = match &config.ha_name {
        Some(name) => name.clone(),
        None => plantwatch_shared::daemon::hostname().context(
            "the host name is unknown; give this server a name in the pair with ha_name",
        )?,
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        anyhow::bail!("ha_name {name:?} must be letters, digits, '-', '_' or '.'");
    }
    let scheme = if config.insecure_http {
        "http"
    } else {
        "https"
    };
    let url = match &config.ha_url {
        Some(url) => plantwatch_shared::client::normalize_url(url)?,
        None => format!("{scheme}://{}", config.listen),
    };
    Ok(Some(Settings {
        dir,
        name,
        url,
        fingerprint,
        litestream: config.ha_litestream.clone(),
    }))
}

/// Runs the server as one of a pair until SIGINT or SIGTERM: standby until it may take the
/// lease, then active until it loses or hands it over, and so on.
pub async fn serve(config: Config, mut signals: ShutdownSignals) -> anyhow::Result<()> {
    config.validate()?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    server::prepare_data_dir(&config)?;
    let tls = if config.insecure_http {
        None
    } else {
        let tls_config = config.clone();
        Some(
            tokio::task::spawn_blocking(move || crate::tls::load_or_generate(&tls_config))
                .await
                .context("loading the TLS certificate")??,
        )
    };
    let Some(settings) = settings(&config, tls.as_ref().map(|t| t.fingerprint))? else {
        anyhow::bail!("ha_dir is not set");
    };
    replication::stop_leftovers(&config.data_dir);
    // The shared directory must be this server's pair's (an unmounted share is an empty
    // folder: taking a lease in it would make a second active).
    let mut waiting_since: Option<Instant> = None;
    loop {
        match lease::join(&settings.dir, &config.data_dir)? {
            lease::Joined::Pair(id) => {
                tracing::info!(pair = %id, "The shared directory is this server's pair's.");
                break;
            }
            lease::Joined::Missing(why) => {
                if waiting_since.is_none_or(|since| since.elapsed() >= Duration::from_secs(60)) {
                    tracing::error!("Not acting until the pair's shared directory is back: {why}");
                    waiting_since = Some(Instant::now());
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = signals.interrupt.recv() => return Ok(()),
                    _ = signals.terminate.recv() => return Ok(()),
                }
            }
        }
    }
    // Joining a pair whose active has data: the credentials need its vault key here.
    if config.vault_key.is_none()
        && !config.data_dir.join(crate::vault::KEY_FILE).exists()
        && lease::read(&settings.dir)?.is_some_and(|l| l.holder.as_ref() != Some(&settings.name))
    {
        anyhow::bail!(
            "{} has no vault key: copy vault.key from the active server's data directory (mode \
             0600), or give both servers the same PLANTWATCH_VAULT_KEY, before starting the \
             standby (docs/ha.md)",
            config.data_dir.display()
        );
    }
    tracing::info!(
        name = %settings.name,
        dir = %settings.dir.display(),
        url = %settings.url,
        "Starting as one of an active/standby pair."
    );
    loop {
        let Some(term) = standby_phase(&config, &settings, tls.as_ref(), &mut signals).await?
        else {
            return Ok(());
        };
        if active_phase(&config, &settings, term, &mut signals).await? {
            return Ok(());
        }
    }
}

/// What the standby last read of its copy: the active's beacon and its age.
fn copy_beacon(path: &std::path::Path) -> Option<(u64, u64)> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    let (seq, at_ms): (i64, i64) = conn
        .query_row("SELECT seq, at_ms FROM ha_beacon WHERE id = 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .ok()?;
    Some((
        seq.max(0) as u64,
        lease::now_ms().saturating_sub(at_ms.max(0) as u64),
    ))
}

/// The standby: follows the active's replica and answers `503 standby` until the lease is
/// free or expired. Returns the term it took, or `None` when asked to stop.
async fn standby_phase(
    config: &Config,
    settings: &Settings,
    tls: Option<&crate::tls::TlsMaterial>,
    signals: &mut ShutdownSignals,
) -> anyhow::Result<Option<u64>> {
    let dbs = databases(config);
    // This server held the lease when it stopped, and nobody took it since: its own
    // databases are the newest there are, so it goes on in a new term (a fresh replica).
    let name = settings.name.clone();
    let resumed = lease::update(&settings.dir, move |now| match now {
        Some(lease) if lease.holder.as_ref() == Some(&name) => {
            let mut next = lease.clone();
            next.term += 1;
            next.renewals = 0;
            next.renewed_at_ms = lease::now_ms();
            next.handover_to = None;
            let term = next.term;
            (Some(next), Some(term))
        }
        _ => (None, None),
    })
    .unwrap_or_else(|error| {
        // The shared directory is unreachable: wait for it as a standby.
        tracing::warn!(error = format!("{error:#}"), "Reading the lease failed.");
        None
    });
    if let Some(term) = resumed {
        tracing::info!(term, "This server still held the lease: active again.");
        return Ok(Some(term));
    }
    let data_lock = server::lock_data_dir(config)?;
    let health = Arc::new(Mutex::new(HaHealth {
        name: settings.name.clone(),
        role: HaRole::Standby,
        term: 0,
        active: None,
        servers: vec![settings.me()],
    }));
    let listener = standby::listen(config, tls, health.clone()).await?;
    tracing::info!(url = %settings.url, "Standby: following the active server's replica.");
    let started = Instant::now();
    let mut follower: Option<replication::Follower> = None;
    // The term whose replica this server's copy comes from.
    let mut followed: Option<u64> = None;
    let mut follower_started = Instant::now();
    // What is wrong with the shared directory, logged once until it changes.
    let mut shared_problem: Option<String> = None;
    // The lease as last seen, and since when it has not changed.
    let mut watched: Option<(Option<Lease>, Instant)> = None;
    let mut tick = tokio::time::interval(STATUS_EVERY);
    let taken = loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = signals.interrupt.recv() => break None,
            _ = signals.terminate.recv() => break None,
        }
        let current = match lease::pair_id(&settings.dir).and_then(|_| lease::read(&settings.dir)) {
            Ok(current) => {
                if shared_problem.take().is_some() {
                    tracing::info!("The pair's shared directory is back.");
                }
                current
            }
            Err(error) => {
                let error = format!("{error:#}");
                if shared_problem.as_ref() != Some(&error) {
                    tracing::error!(%error, "Cannot read the pair's shared directory; not taking over.");
                    shared_problem = Some(error);
                }
                // The lease's silence is counted only while it can be read: when the
                // directory is back, its holder gets the first chance to renew.
                watched = None;
                continue;
            }
        };
        // Follow the replica of the lease's term.
        if let Some(lease) = &current {
            let stale = match &mut follower {
                Some(f) => f.term != lease.term || !f.alive(),
                None => true,
            };
            if stale && follower_started.elapsed() >= Duration::from_secs(2) {
                // A follower of the same term that stopped resumes where it was.
                let fresh = followed != Some(lease.term);
                if let Some(old) = follower.take() {
                    old.stop().await;
                }
                if replication::replica_txid(&settings.dir, lease.term, dbs[0]).is_some() {
                    follower_started = Instant::now();
                    match replication::Follower::start(
                        &settings.litestream,
                        &config.data_dir,
                        &settings.dir,
                        lease.term,
                        &dbs,
                        fresh,
                    ) {
                        Ok(started) => {
                            followed = Some(lease.term);
                            follower = Some(started);
                        }
                        Err(error) => {
                            tracing::error!(
                                error = format!("{error:#}"),
                                "Cannot follow the replica."
                            )
                        }
                    }
                }
            }
        }
        let members = lease::members(&settings.dir);
        let term = current.as_ref().map_or(0, |l| l.term);
        let mut me = settings.member(HaRole::Standby, term);
        if follower.as_mut().is_some_and(replication::Follower::alive)
            && let Some((seq, lag)) = copy_beacon(&config.database_path())
        {
            me.beacon_seq = Some(seq);
            me.lag_ms = Some(lag);
        }
        if let Err(error) = lease::write_member(&settings.dir, &me) {
            tracing::warn!(
                error = format!("{error:#}"),
                "Writing this server's status failed."
            );
        }
        {
            let holder = current.as_ref().and_then(|l| l.holder.clone());
            let mut health = lock(&health);
            health.term = term;
            health.active = members
                .iter()
                .find(|m| Some(&m.name) == holder.as_ref())
                .map(Member::address);
            health.servers = std::iter::once(settings.me())
                .chain(
                    members
                        .iter()
                        .filter(|m| m.name != settings.name)
                        .map(Member::address),
                )
                .collect();
        }
        // Whether to take the lease now.
        let unchanged_for = match &watched {
            Some((seen, since)) if *seen == current => since.elapsed(),
            _ => {
                watched = Some((current.clone(), Instant::now()));
                Duration::ZERO
            }
        };
        let take = match &current {
            // The first lease of the pair: a server holding data takes it at once; one
            // without waits a while for a peer that has data.
            None => {
                config.database_path().exists()
                    || started.elapsed() >= TAKEOVER_AFTER
                    || !members.iter().any(|m| {
                        m.name != settings.name
                            && lease::now_ms().saturating_sub(m.updated_at_ms)
                                < MEMBER_STALE.as_millis() as u64
                    })
            }
            // Still this server's (its shared directory was away for a while): its own
            // databases are the newest, it goes on in a new term.
            Some(lease) if lease.holder.as_ref() == Some(&settings.name) => true,
            // Released by a planned switch-over.
            Some(lease) if lease.holder.is_none() => lease
                .handover_to
                .as_deref()
                .is_none_or(|to| to == "*" || to == settings.name),
            Some(_) => unchanged_for >= TAKEOVER_AFTER,
        };
        if !take {
            continue;
        }
        let next_term = current.as_ref().map_or(1, |l| l.term + 1);
        let name = settings.name.clone();
        let expected = current.clone();
        let won = lease::update(&settings.dir, move |now| {
            if now != expected.as_ref() {
                return (None, false);
            }
            let lease = Lease {
                term: next_term,
                holder: Some(name),
                renewals: 0,
                renewed_at_ms: lease::now_ms(),
                handover_to: None,
            };
            (Some(lease), true)
        })
        .unwrap_or_else(|error| {
            tracing::warn!(error = format!("{error:#}"), "Taking the lease failed.");
            false
        });
        if !won {
            continue;
        }
        match &current {
            Some(old) if old.holder.as_ref() == Some(&settings.name) => tracing::info!(
                term = next_term,
                "This server still held the lease: active again."
            ),
            Some(old) if old.holder.is_some() => tracing::warn!(
                term = next_term,
                previous = ?old.holder,
                "The active server stopped renewing its lease for {} s: taking over.",
                TAKEOVER_AFTER.as_secs()
            ),
            Some(_) => tracing::info!(term = next_term, "Taking over (planned switch-over)."),
            None => tracing::info!(term = next_term, "Taking the pair's first lease."),
        }
        // Catch up with everything the replica of the last term holds (unless that term was
        // this server's own).
        if let Some(old) = current
            .as_ref()
            .filter(|l| l.holder.as_ref() != Some(&settings.name))
        {
            if let Some(f) = follower.take() {
                // Let it apply the last changes before stopping it.
                tokio::time::sleep(Duration::from_millis(1_200)).await;
                f.stop().await;
            }
            for db in &dbs {
                let Some(newest) = replication::replica_txid(&settings.dir, old.term, db) else {
                    continue;
                };
                let applied = replication::applied_txid(&config.data_dir, db).unwrap_or(0);
                if applied < newest {
                    tracing::info!(db, applied, newest, "Restoring the rest of the replica.");
                    replication::restore(
                        &settings.litestream,
                        &config.data_dir,
                        &settings.dir,
                        old.term,
                        db,
                    )
                    .await?;
                }
            }
        }
        break Some(next_term);
    };
    if let Some(f) = follower {
        f.stop().await;
    }
    listener.stop().await;
    drop(data_lock);
    Ok(taken)
}

enum Leaving {
    Stop,
    HandOver,
    Lost,
}

/// The active: the whole server, Litestream replicating it, the lease renewed. Returns
/// whether the process should stop (else it goes back to standby).
async fn active_phase(
    config: &Config,
    settings: &Settings,
    term: u64,
    signals: &mut ShutdownSignals,
) -> anyhow::Result<bool> {
    let gate = Gate::active(settings.clone(), term);
    let running = server::start_with(config.clone(), gate.clone()).await?;
    let dbs = databases(config);
    let mut replicator = replication::Replicator::start(
        &settings.litestream,
        &config.data_dir,
        &settings.dir,
        term,
        &dbs,
    )?;
    tracing::info!(term, url = %settings.url, "Active: holding the pair's lease.");
    let db = running.state.db.clone();
    let mut renew = tokio::time::interval(RENEW_EVERY);
    let mut status = tokio::time::interval(STATUS_EVERY);
    let leaving = loop {
        tokio::select! {
            _ = renew.tick() => {
                let renewing = settings.clone();
                match on_shared(move || renew_lease(&renewing, term)).await {
                    Ok(Renewal::Renewed) => gate.renewed(),
                    Ok(Renewal::HandOver) => {
                        tracing::info!("A switch-over was asked for: handing over to the standby.");
                        break Leaving::HandOver;
                    }
                    Ok(Renewal::Lost(other)) => {
                        tracing::warn!(
                            term,
                            now = ?other.as_ref().map(|l| (l.term, l.holder.clone())),
                            "Another server holds the lease now: becoming standby."
                        );
                        break Leaving::Lost;
                    }
                    Err(error) => {
                        let since = gate.since_renewal();
                        tracing::error!(
                            error = format!("{error:#}"),
                            since_renewal_s = since.as_secs(),
                            "Cannot renew the lease (is the shared directory reachable?); this \
                             server stops acting {} s after its last renewal.",
                            FENCE_AFTER.as_secs()
                        );
                        if since >= TAKEOVER_AFTER {
                            break Leaving::Lost;
                        }
                    }
                }
                if !replicator.alive() {
                    tracing::error!("Litestream stopped; starting it again (its last words are in this log, target litestream).");
                    replicator = replication::Replicator::start(
                        &settings.litestream, &config.data_dir, &settings.dir, term, &dbs,
                    )?;
                }
            }
            _ = status.tick() => active_status(settings, term, &gate, &db).await,
            _ = signals.interrupt.recv() => break Leaving::Stop,
            _ = signals.terminate.recv() => break Leaving::Stop,
        }
    };
    // Stop acting at once (ingest answers 503, no notification leaves), then close.
    gate.demote();
    running.shutdown().await?;
    replicator.stop().await;
    match leaving {
        Leaving::Lost => Ok(false),
        Leaving::Stop | Leaving::HandOver => {
            // Ship the last changes, then release the lease: the standby takes over at once.
            if let Err(error) = replication::sync_once(&settings.litestream, &config.data_dir).await
            {
                tracing::error!(
                    error = format!("{error:#}"),
                    "The last sync to the replica failed; not releasing the lease."
                );
                return Ok(matches!(leaving, Leaving::Stop));
            }
            let name = settings.name.clone();
            lease::update(&settings.dir, move |now| match now {
                Some(lease) if lease.term == term && lease.holder.as_ref() == Some(&name) => {
                    let mut released = lease.clone();
                    released.holder = None;
                    (Some(released), ())
                }
                _ => (None, ()),
            })?;
            tracing::info!(term, "Released the lease.");
            Ok(matches!(leaving, Leaving::Stop))
        }
    }
}

/// Longest wait for the shared directory: a hung mount must not stall the loop that renews
/// (or gives up) the lease.
const SHARED_PATIENCE: Duration = Duration::from_secs(4);

/// Runs blocking work on the shared directory off the async threads, for at most
/// [`SHARED_PATIENCE`] (the work itself may stay blocked on its own thread).
async fn on_shared<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    match tokio::time::timeout(SHARED_PATIENCE, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(result)) => result,
        Ok(Err(error)) => Err(anyhow::anyhow!(
            "the shared directory's task failed: {error}"
        )),
        Err(_) => Err(anyhow::anyhow!(
            "the shared directory did not answer within {} s",
            SHARED_PATIENCE.as_secs()
        )),
    }
}

enum Renewal {
    Renewed,
    HandOver,
    Lost(Option<Lease>),
}

fn renew_lease(settings: &Settings, term: u64) -> anyhow::Result<Renewal> {
    let name = settings.name.clone();
    lease::update(&settings.dir, move |now| match now {
        Some(lease) if lease.term == term && lease.holder.as_ref() == Some(&name) => {
            if lease.handover_to.as_ref().is_some_and(|to| *to != name) {
                return (None, Renewal::HandOver);
            }
            let mut renewed = lease.clone();
            renewed.renewals += 1;
            renewed.renewed_at_ms = lease::now_ms();
            renewed.handover_to = None;
            (Some(renewed), Renewal::Renewed)
        }
        other => (None, Renewal::Lost(other.cloned())),
    })
}

/// The active's second: its replication beacon, its status file, and the other members.
async fn active_status(settings: &Settings, term: u64, gate: &Gate, db: &Db) {
    let Some(state) = &gate.0 else {
        return;
    };
    let seq = state.beacon.load(Ordering::SeqCst) + 1;
    let at_ms = lease::now_ms() as i64;
    let written = db
        .write(move |tx| {
            tx.execute(
                "UPDATE ha_beacon SET seq = ?1, at_ms = ?2 WHERE id = 1",
                rusqlite::params![seq as i64, at_ms],
            )
            .map_err(db::DbError::from)
        })
        .await;
    match written {
        Ok(_) => state.beacon.store(seq, Ordering::SeqCst),
        Err(error) => tracing::warn!(%error, "Writing the replication beacon failed."),
    }
    let role = if gate.may_act() {
        HaRole::Active
    } else {
        HaRole::Standby
    };
    let (me, name, dir) = (
        settings.member(role, term),
        settings.name.clone(),
        settings.dir.clone(),
    );
    let others = on_shared(move || {
        lease::write_member(&dir, &me)?;
        Ok(lease::members(&dir)
            .into_iter()
            .filter(|m| m.name != name)
            .collect::<Vec<Member>>())
    })
    .await;
    let others = match others {
        Ok(others) => others,
        Err(error) => {
            // The lease renewal says so, every 5 s, as an error.
            tracing::debug!(
                error = format!("{error:#}"),
                "Writing this server's status failed."
            );
            return;
        }
    };
    let mut peers = lock(&state.peers);
    let freshest = others
        .iter()
        .filter(|m| m.role == HaRole::Standby && m.term == term && m.beacon_seq.is_some())
        .max_by_key(|m| m.updated_at_ms);
    peers.lag_ms = freshest.and_then(|m| m.lag_ms);
    let standby = freshest.and_then(|m| Some((m.beacon_seq?, m.updated_at_ms)));
    peers.standby = match (standby, peers.standby) {
        (Some((seq, updated)), Some((_, since, before))) if updated == before => {
            Some((seq, since, updated))
        }
        (Some((seq, updated)), _) => Some((seq, Instant::now(), updated)),
        (None, _) => None,
    };
    peers.others = others;
}

/// `plantwatch-server ha status|promote|demote`.
pub fn command(config: &Config, command: crate::config::HaCommand) -> anyhow::Result<()> {
    use crate::config::HaCommand;
    let Some(settings) = settings(config, None)? else {
        anyhow::bail!("this server is not one of a pair: set ha_dir (docs/ha.md)");
    };
    match command {
        HaCommand::Status { json } => {
            let status = status(&settings.dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status_text(&settings.dir, &status));
            }
            Ok(())
        }
        HaCommand::Promote => switch_over(&settings, true),
        HaCommand::Demote => switch_over(&settings, false),
    }
}

/// The pair as its shared directory tells it.
pub fn status(dir: &std::path::Path) -> anyhow::Result<plantwatch_shared::api::ha::HaStatus> {
    let lease = lease::read(dir)?;
    let now = lease::now_ms();
    Ok(plantwatch_shared::api::ha::HaStatus {
        term: lease.as_ref().map_or(0, |l| l.term),
        holder: lease.as_ref().and_then(|l| l.holder.clone()),
        lease_age_ms: lease
            .as_ref()
            .map_or(0, |l| now.saturating_sub(l.renewed_at_ms)),
        members: lease::members(dir)
            .into_iter()
            .map(|m| plantwatch_shared::api::ha::HaMember {
                seen_ms_ago: now.saturating_sub(m.updated_at_ms),
                replication_lag_ms: m.lag_ms,
                name: m.name,
                url: m.url,
                fingerprint: m.fingerprint,
                role: m.role,
                term: m.term,
            })
            .collect(),
    })
}

fn status_text(dir: &std::path::Path, status: &plantwatch_shared::api::ha::HaStatus) -> String {
    let seconds = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
    let mut out = match &status.holder {
        Some(holder) => format!(
            "Pair in {}: term {}, active {holder} (lease renewed {} ago)\n",
            dir.display(),
            status.term,
            seconds(status.lease_age_ms)
        ),
        None if status.term == 0 => format!(
            "Pair in {}: no server has taken the lease yet\n",
            dir.display()
        ),
        None => format!(
            "Pair in {}: term {}, lease released (a switch-over is under way)\n",
            dir.display(),
            status.term
        ),
    };
    out.push_str(&format!(
        "{:<16} {:<8} {:>5}  {:<32} {:>8} {:>8}\n",
        "NAME", "ROLE", "TERM", "URL", "SEEN", "LAG"
    ));
    for m in &status.members {
        let gone = m.seen_ms_ago > MEMBER_STALE.as_millis() as u64;
        out.push_str(&format!(
            "{:<16} {:<8} {:>5}  {:<32} {:>8} {:>8}\n",
            m.name,
            if gone { "gone" } else { m.role.as_str() },
            m.term,
            m.url,
            seconds(m.seen_ms_ago),
            m.replication_lag_ms.map_or("-".to_owned(), seconds),
        ));
    }
    out
}

/// A planned switch-over: asks the active to hand over (to this server, or to the standby)
/// and waits until another server holds the lease.
fn switch_over(settings: &Settings, to_me: bool) -> anyhow::Result<()> {
    let me = settings.name.clone();
    let Some(current) = lease::read(&settings.dir)? else {
        anyhow::bail!("no server of the pair has taken the lease yet");
    };
    let holder = current.holder.clone().unwrap_or_default();
    if to_me && holder == me {
        println!("{me} is already the active server (term {}).", current.term);
        return Ok(());
    }
    if !to_me && holder != me {
        anyhow::bail!(
            "{me} is not the active server ({}); run demote on the active one, or promote on this one",
            if holder.is_empty() {
                "no server holds the lease".to_owned()
            } else {
                format!("{holder} is")
            }
        );
    }
    let now = lease::now_ms();
    let standby_ready = lease::members(&settings.dir).iter().any(|m| {
        m.name != holder
            && m.role == HaRole::Standby
            && m.term == current.term
            && m.beacon_seq.is_some()
            && now.saturating_sub(m.updated_at_ms) < MEMBER_STALE.as_millis() as u64
            && (!to_me || m.name == me)
    });
    if !standby_ready {
        anyhow::bail!(
            "no standby is following the active's replica in term {} (see `ha status`); a \
             switch-over now would leave the pair without its data",
            current.term
        );
    }
    let target = if to_me { me.clone() } else { "*".to_owned() };
    let term = current.term;
    lease::update(&settings.dir, move |now| match now {
        Some(lease) if lease.term == term && lease.holder.is_some() => {
            let mut asked = lease.clone();
            asked.handover_to = Some(target);
            (Some(asked), ())
        }
        _ => (None, ()),
    })?;
    println!("Asked {holder} to hand over; waiting for the switch-over…");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(250));
        if let Some(lease) = lease::read(&settings.dir)?
            && lease.term > term
            && let Some(active) = &lease.holder
        {
            println!("{active} is the active server now (term {}).", lease.term);
            return Ok(());
        }
    }
    anyhow::bail!(
        "the switch-over did not finish within 60 s; see `ha status` and the servers' logs"
    )
}
