//! The server's own collector (DESIGN §1): the same `plantwatch_collector` code a plant network
//! runs, in-process, talking to this server over loopback HTTPS with its own API key. It is
//! created approved at first start, named `local`, and is the default collector of new nodes.
//! Its key is replaced at every start and never leaves memory, and it keeps its configuration
//! (credentials in clear) in memory only: the server's disk holds them encrypted, in the vault.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context as _;
use plantwatch_shared::api::ComponentKind;
use plantwatch_shared::daemon::Enrollment;
use plantwatch_shared::{Fingerprint, Secret};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::auth::api_keys;
use crate::db::{Db, components};

/// The local collector's id and this run's key.
#[derive(Debug)]
pub struct Local {
    pub id: i64,
    key: Secret,
}

/// Creates the local collector on first start and gives it a new key.
pub async fn prepare(db: &Db) -> anyhow::Result<Local> {
    let version = env!("CARGO_PKG_VERSION");
    // The id is part of the key, so the row comes first, with a key that matches nothing.
    let id = db
        .write(move |tx| -> anyhow::Result<i64> {
            Ok(components::ensure_local(
                tx,
                "",
                version,
                crate::clock::unix_secs(),
            )?)
        })
        .await
        .context("creating the local collector")?;
    let key = api_keys::new_key(id);
    let hash = api_keys::hash_key(key.clone()).await?;
    db.write(move |tx| -> anyhow::Result<()> { Ok(components::set_key_hash(tx, id, &hash)?) })
        .await
        .context("storing the local collector's key")?;
    Ok(Local { id, key })
}

/// The address the server reaches itself at: the bound one, or loopback for a wildcard.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// Runs the local collector until `shutdown` turns true.
pub async fn run(
    local: Local,
    addr: SocketAddr,
    fingerprint: Option<Fingerprint>,
    state_dir: PathBuf,
    push_every: std::time::Duration,
    polling: bool,
    discovery: bool,
    discovery_wake: std::sync::Arc<tokio::sync::Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let scheme = if fingerprint.is_some() {
        "https"
    } else {
        "http"
    };
    let enrollment = Enrollment {
        component_id: local.id,
        kind: ComponentKind::Collector,
        name: components::LOCAL_NAME.to_owned(),
        machine_id: components::LOCAL_NAME.to_owned(),
        server_url: format!("{scheme}://{}", loopback(addr)),
        fingerprint,
        api_key: local.key,
        enrolled_at: OffsetDateTime::now_utc(),
        alternates: Vec::new(),
    };
    let mut options = plantwatch_collector::Options {
        keep_config: false,
        follow_pair: false,
        ..plantwatch_collector::Options::new(state_dir)
    };
    options.push.flush_every = push_every;
    options.poll.enabled = polling;
    options.discovery.enabled = discovery;
    options.discovery.wake = Some(discovery_wake);
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(error) = plantwatch_collector::run(enrollment, options, stop).await {
        tracing::error!(error = format!("{error:#}"), "The local collector stopped.");
    }
}
