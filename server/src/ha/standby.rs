//! The standby's listener: `GET /healthz` answers with the pair; everything else `503
//! standby`, naming the active server so clients move to it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};
use axum_server::Handle;
use plantwatch_shared::api::ha::{HaHealth, TERM_HEADER};
use plantwatch_shared::api::{ErrorBody, ErrorCode, ErrorDetail, Health};
use plantwatch_shared::client::ROLE_HEADER;
use time::OffsetDateTime;

use crate::config::Config;
use crate::tls::TlsMaterial;

type Shared = Arc<Mutex<HaHealth>>;

pub struct Listener {
    handle: Handle<SocketAddr>,
    task: crate::server::Serving,
}

impl Listener {
    pub async fn stop(self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(1)));
        let _ = self.task.await;
    }
}

/// Serves the standby's answers on the server's address, as the server listens.
pub async fn listen(
    config: &Config,
    tls: Option<&TlsMaterial>,
    health: Shared,
) -> anyhow::Result<Listener> {
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(health)
        .into_make_service_with_connect_info::<SocketAddr>();
    let (_, handle, task) = crate::server::listen(config, tls, app).await?;
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
