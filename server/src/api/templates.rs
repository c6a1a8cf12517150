//! `/templates`: the device templates. Everyone reads; admins reload them from disk.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use plantwatch_shared::api::AuditAction;
use plantwatch_shared::api::{ListResponse, Template, TemplateReload};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{AdminRole, ApiPath, Authed};
use crate::db::{self, audit};
use crate::state::AppState;
use crate::templates;
use plantwatch_shared::api::ErrorCode;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/templates", get(list))
        .route("/templates/reload", post(reload))
        .route("/templates/{id}", get(read))
}

async fn list(
    State(state): State<AppState>,
    _auth: Authed,
) -> ApiResult<Json<ListResponse<Template>>> {
    let items = state
        .db
        .call(|conn| db::templates::list(conn).map_err(db::DbError::from))
        .await?;
    let total = items.len() as u64;
    Ok(Json(ListResponse { items, total }))
}

async fn read(
    State(state): State<AppState>,
    _auth: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Template>> {
    state
        .db
        .call(move |conn| db::templates::get(conn, id).map_err(db::DbError::from))
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                ErrorCode::TemplateNotFound,
                format!("there is no template {id}"),
            )
        })
}

/// Re-reads the built-in templates and `<data dir>/templates/*.toml`. All or nothing: with any
/// file at fault, nothing changes and the answer names every problem.
async fn reload(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
) -> ApiResult<Json<TemplateReload>> {
    let dir = state.config.templates_dir();
    let (loaded, problems) = tokio::task::spawn_blocking(move || templates::load(&dir))
        .await
        .map_err(ApiError::internal)?;
    if !problems.is_empty() {
        let first = format!("{}: {}", problems[0].source, problems[0].message);
        return Err(ApiError::bad_request(
            ErrorCode::InvalidTemplate,
            format!(
                "{} template file(s) at fault, nothing was changed ({first})",
                problems.len()
            ),
        )
        .with_details(json!({ "problems": problems })));
    }
    let actor = auth.actor();
    let count = loaded.len();
    let (changed, collectors_marked) = state
        .db
        .write(move |tx| -> ApiResult<_> {
            let now = crate::clock::unix_secs();
            let (changed, marked) = templates::store(tx, &loaded, now)?;
            audit::record(
                tx,
                &actor,
                AuditAction::TemplatesReload,
                None,
                Some(&json!({ "loaded": count, "changed": changed })),
                now,
            )?;
            Ok((changed, marked))
        })
        .await?;
    Ok(Json(TemplateReload {
        loaded: count,
        changed,
        collectors_marked,
    }))
}
