//! `GET /healthz`: liveness, no authentication.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use plantwatch_shared::api::Health;
use time::OffsetDateTime;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        server_time: OffsetDateTime::now_utc(),
        ha: state.gate.health(),
    })
}
