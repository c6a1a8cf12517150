//! The standby's listener: `GET /healthz` answers with the pair; everything else `503
//! standby`, naming the active server so clients move to it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use plantwatch_shared::api::ha::{HaHealth, TERM_HEADER};
use plantwatch_shared::api::{ErrorBody, ErrorCode, ErrorDetail, Health};
use plantwatch_shared::client::ROLE_HEADER;
use time::OffsetDateTime;

use crate::config::Config;
use crate::tls::TlsMaterial;

type Shared = Arc<Mutex<HaHealth>>;

pub struct Listener {
    handle: Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Listener {
    pub async fn stop(self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(1)));
        let _ = self.task.await;
    }
}

pub async fn listen(
    config: &Config,
    tls: Option<&TlsMaterial>,
    health: Shared,
) -> anyhow::Result<Listener> {
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(health)
        .into_make_service();
    let handle: Handle<SocketAddr> = Handle::new();
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("listening on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let server = axum_server::from_tcp(listener)?.handle(handle.clone());
    let task = match tls {
        Some(material) => {
            let rustls =
                RustlsConfig::from_pem(material.cert_pem.clone(), material.key_pem.clone())
                    .await
                    .context("loading the TLS certificate and key")?;
            let server = server.acceptor(axum_server::tls_rustls::RustlsAcceptor::new(rustls));
            tokio::spawn(async move { server.serve(app).await })
        }
        None => tokio::spawn(async move { server.serve(app).await }),
    };
    if handle.listening().await.is_none() {
        anyhow::bail!("the standby's listener on {} did not start", config.listen);
    }
    Ok(Listener { handle, task })
}

/// What a standby answers.
pub fn standby_response(health: HaHealth) -> Response {
    let message = match &health.active {
        Some(active) => format!(
            "this server is the standby of its pair; the active server is {}",
            active.url
        ),
        None => "this server is the standby of its pair, and no server is active at the moment"
            .to_owned(),
    };
    let term = health.term;
    let body = ErrorBody {
        error: ErrorDetail {
            code: ErrorCode::Standby,
            message,
            details: serde_json::to_value(&health).ok(),
        },
    };
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(ROLE_HEADER, HeaderValue::from_static("standby"));
    headers.insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from_static("5"),
    );
    if let Ok(value) = HeaderValue::from_str(&term.to_string()) {
        headers.insert(TERM_HEADER, value);
    }
    response
}

async fn answer(State(health): State<Shared>, uri: Uri) -> Response {
    let health = health
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if uri.path() == "/healthz" {
        return Json(Health {
            status: "standby".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            server_time: OffsetDateTime::now_utc(),
            ha: Some(health),
        })
        .into_response();
    }
    standby_response(health)
}
