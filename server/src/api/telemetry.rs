//! `GET /metrics`: plantwatch's own figures in the Prometheus text format, for an admin's
//! session or the scrape token (`PLANTWATCH_METRICS_SCRAPE_TOKEN`, sent as
//! `Authorization: Bearer`).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::error::ApiError;
use super::extract::{AdminRole, Authed};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// Whether the request carries the configured scrape token.
fn scrape_token_matches(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(expected) = &state.config.scrape_token else {
        return false;
    };
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    crate::auth::constant_time_eq(given.trim().as_bytes(), expected.expose().as_bytes())
}

async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    admin: Result<Authed<AdminRole>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    if !scrape_token_matches(&state, &headers) {
        admin?;
    }
    let body = crate::telemetry::render(&state).await;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}
