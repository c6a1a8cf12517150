//! The routes collectors and agents call: registration with an enrollment token, and, with an
//! API key, `components/me`, the collector's configuration pull and status report, and the
//! agent heartbeat.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use plantwatch_shared::ENROLLMENT_TOKEN_PREFIX;
use plantwatch_shared::api::AuditAction;
use plantwatch_shared::api::{
    CollectorReport, ComponentKind, ComponentSelf, ComponentStatus, Heartbeat, HeartbeatAck,
    MAX_COMPONENT_NAME_LEN, MAX_HOSTNAME_LEN, MAX_INVENTORY_TEXT, MAX_MACHINE_ID_LEN,
    MAX_REPORT_ERROR_LEN, MAX_REPORT_ERRORS, MAX_VERSION_LEN, RegisterRequest, Registration,
    TokenState,
};
use plantwatch_shared::rules::name_problem;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ClientAddr, ComponentAuth};
use crate::auth::api_keys;
use crate::auth::token_hash;
use crate::db::audit::{self, Actor};
use crate::db::components::{self, Enrolled};
use crate::db::{self, to_time, tokens};
use crate::state::AppState;
use plantwatch_shared::api::ErrorCode;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/components/register", post(register))
        .route("/components/me", get(me))
        .route("/remote-collectors/{id}/config", get(config))
        .route("/remote-collectors/{id}/report", post(report))
        .route("/agents/heartbeat/{node_id}", post(heartbeat))
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidRegistration, message)
        .with_details(json!({ "field": field }))
}

/// A short identifier field: present, bounded, printable, without spaces.
fn word_problem(value: &str, max: usize) -> Option<String> {
    if value.is_empty() {
        Some("must not be empty".into())
    } else if value.len() > max {
        Some(format!("must be at most {max} bytes"))
    } else if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("must not contain spaces or control characters".into())
    } else {
        None
    }
}

fn check(request: &RegisterRequest) -> ApiResult<()> {
    if let Some(problem) = name_problem(request.name.trim(), MAX_COMPONENT_NAME_LEN) {
        return Err(invalid("name", format!("name: {problem}")));
    }
    if let Some(problem) = word_problem(&request.machine_id, MAX_MACHINE_ID_LEN) {
        return Err(invalid("machine_id", format!("machine_id {problem}")));
    }
    if let Some(problem) = word_problem(&request.version, MAX_VERSION_LEN) {
        return Err(invalid("version", format!("version {problem}")));
    }
    if let Some(host) = &request.hostname
        && let Some(problem) = word_problem(host, MAX_HOSTNAME_LEN)
    {
        return Err(invalid("hostname", format!("hostname {problem}")));
    }
    Ok(())
}

async fn register(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Registration>)> {
    let token = request.token.expose().trim().to_owned();
    if !token.starts_with(ENROLLMENT_TOKEN_PREFIX) {
        return Err(ApiError::unauthorized(
            ErrorCode::InvalidToken,
            "that is not an enrollment token (pwe_…)",
        ));
    }
    check(&request)?;
    let hash = token_hash(&token);
    let source = addr.ip();
    let request_for_tx = request.clone();
    // First the component row, with no working key; then its key, hashed outside the
    // transaction (bcrypt takes tens of milliseconds and must not hold the write lock).
    let (id, re_enrolled) = state
        .db
        .write(move |tx| -> ApiResult<(i64, bool)> {
            let request = request_for_tx;
            let now = crate::clock::unix_secs();
            let token = tokens::by_hash(tx, &hash)?.ok_or_else(|| {
                ApiError::unauthorized(ErrorCode::InvalidToken, "the enrollment token is unknown")
            })?;
            match token.state(now) {
                TokenState::Active => {}
                TokenState::Expired => {
                    return Err(ApiError::unauthorized(
                        ErrorCode::TokenExpired,
                        "the enrollment token has expired; ask an admin for a new join code",
                    ));
                }
                TokenState::Revoked => {
                    return Err(ApiError::unauthorized(
                        ErrorCode::TokenRevoked,
                        "the enrollment token was revoked; ask an admin for a new join code",
                    ));
                }
                TokenState::Exhausted => {
                    return Err(ApiError::unauthorized(
                        ErrorCode::TokenExhausted,
                        "the enrollment token has enrolled as many components as it may; ask an admin for a new join code",
                    ));
                }
            }
            let name = request.name.trim();
            let existing = components::by_machine(tx, request.kind, &request.machine_id)?;
            if let Some((_, true)) = existing {
                return Err(ApiError::conflict(
                    ErrorCode::MachineIdReserved,
                    "that machine id belongs to the server's own collector",
                ));
            }
            if components::name_taken(tx, request.kind, name, existing.map(|(id, _)| id))? {
                return Err(ApiError::conflict(
                    ErrorCode::NameTaken,
                    format!("another {} is already called {name:?}; enroll with --name", request.kind),
                )
                .with_details(json!({ "field": "name" })));
            }
            let enrolled = Enrolled {
                kind: request.kind,
                name,
                machine_id: &request.machine_id,
                hostname: request.hostname.as_deref(),
                version: &request.version,
                key_hash: "",
                token_id: token.id,
            };
            let (id, re_enrolled) = match existing {
                Some((id, _)) => {
                    components::re_enroll(tx, id, &enrolled)?;
                    (id, true)
                }
                None => (components::insert(tx, &enrolled, now)?, false),
            };
            tokens::count_use(tx, token.id)?;
            let actor = Actor {
                user_id: None,
                name: format!("enrollment token {}", token.name),
                source,
            };
            let action = if re_enrolled {
                AuditAction::ComponentReEnroll
            } else {
                AuditAction::ComponentRegister
            };
            let details = json!({
                "kind": request.kind,
                "name": name,
                "machine_id": request.machine_id,
                "hostname": request.hostname,
                "version": request.version,
                "token": token.name,
            });
            audit::record(tx, &actor, action, Some(&format!("component:{id}")), Some(&details), now)?;
            Ok((id, re_enrolled))
        })
        .await?;
    // The old key stops working now, not when the new one is stored.
    state.keys.forget(id);
    let key = api_keys::new_key(id);
    let key_hash = api_keys::hash_key(key.clone()).await?;
    state
        .db
        .write(move |tx| -> ApiResult<()> { Ok(components::set_key_hash(tx, id, &key_hash)?) })
        .await?;
    state.keys.forget(id);
    state.presence.touch(id, crate::clock::unix_secs());
    tracing::info!(component_id = id, kind = %request.kind, re_enrolled, "Component enrolled, waiting for approval.");
    Ok((
        if re_enrolled {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        Json(Registration {
            component_id: id,
            kind: request.kind,
            api_key: key,
            re_enrolled,
            status: ComponentStatus::Pending,
        }),
    ))
}

async fn me(auth: ComponentAuth) -> Json<ComponentSelf> {
    Json(ComponentSelf {
        id: auth.identity.id,
        kind: auth.identity.kind,
        name: auth.identity.name,
        node_id: auth.identity.node_id,
    })
}

/// Refuses a component asking for another collector's resources.
pub(crate) fn own_collector(auth: &ComponentAuth, id: i64) -> ApiResult<()> {
    if auth.identity.kind != ComponentKind::Collector {
        return Err(ApiError::forbidden("only collectors have a configuration"));
    }
    if auth.identity.id != id {
        return Err(ApiError::forbidden(
            "a collector can read and report only for itself",
        ));
    }
    Ok(())
}

/// Whether an `If-None-Match` header names `etag` (or is `*`).
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// The document holds secrets in clear: nothing between may keep it.
pub(crate) fn no_store() -> (header::HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

fn not_modified(sha256: &str) -> ApiResult<Response> {
    let etag = HeaderValue::from_str(&format!("\"{sha256}\"")).map_err(ApiError::internal)?;
    Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag), no_store()]).into_response())
}

async fn config(
    State(state): State<AppState>,
    auth: ComponentAuth,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    own_collector(&auth, id)?;
    // Reads: pulls every 10 s from every collector must not queue for the write lock, and an
    // unchanged one (304) needs only the hash. Only a collector approved a moment ago without a
    // stored configuration yet writes one.
    let held = state
        .db
        .call(move |conn| {
            crate::config_delivery::stored_sha256(conn, id).map_err(db::DbError::from)
        })
        .await?;
    if let Some(sha256) = &held
        && matches(&headers, &format!("\"{sha256}\""))
    {
        return not_modified(sha256);
    }
    let vault = state.vault.clone();
    let stored = match held {
        Some(_) => {
            state
                .db
                .call(move |conn| -> ApiResult<_> {
                    Ok(crate::config_delivery::stored(conn, &vault, id)?)
                })
                .await?
        }
        None => {
            state
                .db
                .write(move |tx| -> ApiResult<_> {
                    crate::config_delivery::regenerate(tx, &vault, id, crate::clock::unix_secs())?;
                    Ok(crate::config_delivery::stored(tx, &vault, id)?)
                })
                .await?
        }
    };
    let (document, sha256) =
        stored.ok_or_else(|| ApiError::internal(anyhow::anyhow!("configuration vanished")))?;
    let etag = HeaderValue::from_str(&format!("\"{sha256}\"")).map_err(ApiError::internal)?;
    Ok((
        StatusCode::OK,
        [
            (header::ETAG, etag),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            no_store(),
        ],
        document,
    )
        .into_response())
}

async fn report(
    State(state): State<AppState>,
    auth: ComponentAuth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(report): ApiJson<CollectorReport>,
) -> ApiResult<StatusCode> {
    own_collector(&auth, id)?;
    if word_problem(&report.version, MAX_VERSION_LEN).is_some() {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidReport,
            format!("version must be 1 to {MAX_VERSION_LEN} printable characters"),
        ));
    }
    if report.errors.len() > MAX_REPORT_ERRORS
        || report.errors.iter().any(|e| e.len() > MAX_REPORT_ERROR_LEN)
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidReport,
            format!(
                "a report carries at most {MAX_REPORT_ERRORS} errors of at most {MAX_REPORT_ERROR_LEN} bytes"
            ),
        ));
    }
    if report
        .config_sha256
        .as_ref()
        .is_some_and(|sha| sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidReport,
            "config_sha256 must be 64 hex digits",
        ));
    }
    state
        .db
        .write(move |tx| -> ApiResult<()> {
            Ok(components::record_report(
                tx,
                id,
                &report,
                crate::clock::unix_secs(),
            )?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn heartbeat(
    State(state): State<AppState>,
    auth: ComponentAuth,
    ApiPath(node_id): ApiPath<i64>,
    ApiJson(heartbeat): ApiJson<Heartbeat>,
) -> ApiResult<Json<HeartbeatAck>> {
    if auth.identity.kind != ComponentKind::Agent {
        return Err(ApiError::forbidden("only agents send heartbeats"));
    }
    if auth.identity.node_id != Some(node_id) {
        return Err(ApiError::forbidden(
            "an agent sends heartbeats only for its own node",
        ));
    }
    if let Some(problem) = word_problem(&heartbeat.version, MAX_VERSION_LEN) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidHeartbeat,
            format!("version {problem}"),
        ));
    }
    if let Some(inventory) = &heartbeat.inventory
        && let Some((field, _)) = inventory
            .texts()
            .into_iter()
            .find(|(_, text)| text.is_some_and(|t| t.len() > MAX_INVENTORY_TEXT))
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidHeartbeat,
            format!("inventory {field} must be at most {MAX_INVENTORY_TEXT} bytes"),
        ));
    }
    // An upgraded agent shows its new version without enrolling again; a heartbeat writes
    // only when the version changed (once per agent after a server start), or when it
    // carries the machine's inventory (its first, and when that changed).
    if let Some(inventory) = heartbeat.inventory {
        state
            .db
            .write(move |tx| -> ApiResult<()> {
                Ok(crate::db::host::set_inventory(
                    tx,
                    node_id,
                    &inventory,
                    crate::clock::unix_secs(),
                )?)
            })
            .await?;
    }
    let id = auth.identity.id;
    if state.presence.version_changed(id, &heartbeat.version) {
        let version = heartbeat.version.clone();
        state
            .db
            .write(move |tx| -> ApiResult<()> { Ok(components::set_version(tx, id, &version)?) })
            .await?;
    }
    let now = std::time::Instant::now();
    let processes = match state.host_watch.get(node_id, now) {
        Some(names) => names,
        None => {
            let names: std::sync::Arc<[String]> = state
                .db
                .call(move |conn| -> ApiResult<Vec<String>> {
                    Ok(crate::db::host::watched_processes(conn, node_id)?)
                })
                .await?
                .into();
            state.host_watch.put(node_id, names.clone(), now);
            names
        }
    };
    Ok(Json(HeartbeatAck {
        node_id,
        server_time: to_time(crate::clock::unix_secs()),
        processes: processes.to_vec(),
    }))
}
