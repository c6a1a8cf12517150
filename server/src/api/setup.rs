//! First start: `GET /setup` tells whether the server waits for its first admin; `POST /setup`
//! with the one-time setup code creates that admin, once, and answers 409 forever after.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use plantwatch_shared::api::AuditAction;
use plantwatch_shared::api::{LoginResponse, Role, SetupRequest, SetupStatus};
use sha2::{Digest as _, Sha256};

use super::auth::{open_session, session_response};
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ClientAddr};
use crate::auth::{hash_password, password_problem, username_problem};
use crate::db::{audit, users};
use crate::state::AppState;
use plantwatch_shared::api::ErrorCode;

pub fn router() -> Router<AppState> {
    Router::new().route("/setup", get(status).post(complete))
}

fn already_done() -> ApiError {
    ApiError::conflict(
        ErrorCode::SetupDone,
        "this server already has an admin; sign in instead",
    )
}

async fn status(State(state): State<AppState>) -> ApiResult<Json<SetupStatus>> {
    let count = state
        .db
        .call(|conn| users::count(conn).map_err(ApiError::from))
        .await?;
    Ok(Json(SetupStatus {
        setup_required: count == 0,
    }))
}

/// Compares digests so that the time taken does not reveal how much of the code matched.
fn code_matches(expected: &str, given: &str) -> bool {
    let normalize = |s: &str| s.trim().to_ascii_uppercase().replace(' ', "");
    Sha256::digest(normalize(expected)) == Sha256::digest(normalize(given))
}

async fn complete(
    State(state): State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SetupRequest>,
) -> ApiResult<Response> {
    let expected = state
        .setup_code
        .lock()
        .map_err(|_| ApiError::internal(anyhow::anyhow!("setup code lock poisoned")))?
        .clone();
    let Some(expected) = expected else {
        return Err(already_done());
    };
    let keys = vec!["setup".to_owned()];
    if let Err(wait) = state.limiter.check(&keys) {
        return Err(ApiError::too_many_requests(wait));
    }
    if !code_matches(&expected, request.code.expose()) {
        state.limiter.record_failure(&keys);
        return Err(ApiError::forbidden(
            "wrong setup code; the server printed it in its log at start",
        )
        .with_code(ErrorCode::InvalidSetupCode));
    }
    let username = request.username.trim().to_owned();
    if let Some(problem) = username_problem(&username) {
        return Err(ApiError::bad_request(ErrorCode::InvalidUsername, problem));
    }
    if let Some(problem) = password_problem(request.password.expose()) {
        return Err(ApiError::bad_request(ErrorCode::InvalidPassword, problem));
    }
    let hash = hash_password(request.password).await?;
    let source = addr.ip();
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let session_state = state.clone();
    let (token, session, user) = state
        .db
        // IMMEDIATE (`Db::write`): two concurrent setups cannot both see an empty users table.
        .write(move |tx| -> ApiResult<_> {
            if users::count(tx)? > 0 {
                return Err(already_done());
            }
            let now = crate::clock::unix_secs();
            let user = users::insert(tx, &username, &hash, Role::Admin, now)?;
            let (token, session) = open_session(
                tx,
                &session_state,
                &user,
                source.as_deref(),
                agent.as_deref(),
            )?;
            let actor = audit::Actor {
                user_id: Some(user.id),
                name: "setup".to_owned(),
                source,
            };
            let target = format!("user:{}", user.id);
            audit::record(
                tx,
                &actor,
                AuditAction::SetupComplete,
                Some(&target),
                None,
                now,
            )?;
            let user = users::get(tx, user.id)?.unwrap_or(user);
            Ok((token, session, user))
        })
        .await?;
    if let Ok(mut code) = state.setup_code.lock() {
        *code = None;
    }
    let _ = std::fs::remove_file(&state.setup_code_file);
    tracing::info!(user = %user.username, "Setup complete: first admin created.");
    Ok(session_response(
        &state,
        StatusCode::CREATED,
        LoginResponse {
            token,
            user,
            session,
        },
    ))
}
