//! `GET /api/v1/audit` (admin): who changed what, newest first.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use plantwatch_shared::api::{AuditEntry, AuditQuery, ListResponse};

use super::error::{ApiError, ApiResult};
use super::extract::{AdminRole, ApiQuery, Authed};
use super::page_bounds;
use crate::db;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

async fn list(
    State(state): State<AppState>,
    _auth: Authed<AdminRole>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<ListResponse<AuditEntry>>> {
    let (limit, offset) = page_bounds(query.limit, query.offset)?;
    let (items, total) = state
        .db
        .call(move |conn| db::audit::list(conn, &query, limit, offset).map_err(ApiError::from))
        .await?;
    Ok(Json(ListResponse { items, total }))
}
