//! Enrollment tokens and the collectors and agents they enroll, as admins and the console see
//! them: `/enrollment-tokens` (admin) and `/remote-components` (read by every role; approve,
//! revoke and delete by admins).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use plantwatch_shared::api::AuditAction;
use plantwatch_shared::api::{
    ApproveRequest, Component, ComponentKind, ComponentQuery, ComponentStatus, CreateTokenRequest,
    CreatedToken, EnrollmentToken, JoinCode, ListResponse, NodeType, TokenQuery,
};
use plantwatch_shared::rules::{address_problem, name_problem};
use plantwatch_shared::{ENROLLMENT_TOKEN_PREFIX, Secret};
use rusqlite::{Connection, OptionalExtension as _};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{AdminRole, AnyRole, ApiJson, ApiPath, ApiQuery, Authed};
use super::{page_bounds, sort_order};
use crate::auth::{random_token, token_hash};
use crate::db::components::{self, ComponentRow};
use crate::db::nodes::{self, NodeFields};
use crate::db::{self, audit, tokens};
use crate::state::AppState;
use plantwatch_shared::api::ErrorCode;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/enrollment-tokens", get(list_tokens).post(create_token))
        .route("/enrollment-tokens/{id}", get(read_token))
        .route("/enrollment-tokens/{id}/revoke", post(revoke_token))
        .route("/remote-components", get(list))
        .route("/remote-components/{id}", get(read).delete(remove))
        .route("/remote-components/{id}/approve", post(approve))
        .route("/remote-components/{id}/revoke", post(revoke))
}

/// Longest a token may stay valid: ten years.
const MAX_TOKEN_LIFETIME_S: u64 = 10 * 365 * 24 * 3600;
/// Largest use limit of a token.
const MAX_TOKEN_USES: u32 = 1_000_000;
/// Longest token name.
const MAX_TOKEN_NAME_LEN: usize = 128;

fn token_not_found(id: i64) -> ApiError {
    ApiError::not_found(
        ErrorCode::TokenNotFound,
        format!("there is no enrollment token {id}"),
    )
}

fn not_found(id: i64) -> ApiError {
    ApiError::not_found(
        ErrorCode::ComponentNotFound,
        format!("there is no collector or agent {id}"),
    )
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidTokenRequest, message)
        .with_details(json!({ "field": field }))
}

/// The URL this request reached the server at, for the join code.
fn request_url(state: &AppState, uri: &Uri, headers: &HeaderMap) -> String {
    let scheme = if state.https { "https" } else { "http" };
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| state.config.listen.to_string());
    format!("{scheme}://{host}")
}

async fn create_token(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    uri: Uri,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let name = request.name.trim().to_owned();
    if let Some(problem) = name_problem(&name, MAX_TOKEN_NAME_LEN) {
        return Err(invalid("name", format!("name: {problem}")));
    }
    if let Some(secs) = request.expires_in_s
        && !(1..=MAX_TOKEN_LIFETIME_S).contains(&secs)
    {
        return Err(invalid(
            "expires_in_s",
            format!("expires_in_s must be between 1 and {MAX_TOKEN_LIFETIME_S} (ten years)"),
        ));
    }
    if let Some(uses) = request.max_uses
        && !(1..=MAX_TOKEN_USES).contains(&uses)
    {
        return Err(invalid(
            "max_uses",
            format!("max_uses must be between 1 and {MAX_TOKEN_USES}"),
        ));
    }
    let url = match &request.server_url {
        Some(url) => plantwatch_shared::client::normalize_url(url)
            .map_err(|e| invalid("server_url", e.to_string()))?,
        None => request_url(&state, &uri, &headers),
    };
    let secret = Secret::new(random_token(ENROLLMENT_TOKEN_PREFIX));
    let hash = token_hash(secret.expose());
    let actor = auth.actor();
    let user_id = auth.user.id;
    let token = state
        .db
        .write(move |tx| -> ApiResult<EnrollmentToken> {
            let now = crate::clock::unix_secs();
            let expires_at = request.expires_in_s.map(|secs| now + secs as i64);
            let id = tokens::insert(
                tx,
                &name,
                &hash,
                Some(user_id),
                expires_at,
                request.max_uses,
                now,
            )?;
            let details = json!({
                "name": name,
                "expires_at": expires_at,
                "max_uses": request.max_uses,
            });
            let target = format!("enrollment_token:{id}");
            audit::record(
                tx,
                &actor,
                AuditAction::TokenCreate,
                Some(&target),
                Some(&details),
                now,
            )?;
            tokens::get(tx, id, now)?.ok_or_else(|| token_not_found(id))
        })
        .await?;
    let join_code = JoinCode {
        url,
        token: secret.clone(),
        fingerprint: state.fingerprint,
        alternates: state.gate.alternates(),
    }
    .encode();
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            secret,
            join_code,
        }),
    ))
}

async fn list_tokens(
    State(state): State<AppState>,
    _auth: Authed<AdminRole>,
    ApiQuery(query): ApiQuery<TokenQuery>,
) -> ApiResult<Json<ListResponse<EnrollmentToken>>> {
    let (limit, offset) = page_bounds(query.limit, query.offset)?;
    let (items, total) = state
        .db
        .call(move |conn| {
            tokens::list(conn, limit, offset, crate::clock::unix_secs()).map_err(db::DbError::from)
        })
        .await?;
    Ok(Json(ListResponse { items, total }))
}

async fn read_token(
    State(state): State<AppState>,
    _auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<EnrollmentToken>> {
    let token = state
        .db
        .call(move |conn| {
            tokens::get(conn, id, crate::clock::unix_secs()).map_err(db::DbError::from)
        })
        .await?
        .ok_or_else(|| token_not_found(id))?;
    Ok(Json(token))
}

async fn revoke_token(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<EnrollmentToken>> {
    let actor = auth.actor();
    let token = state
        .db
        .write(move |tx| -> ApiResult<EnrollmentToken> {
            let now = crate::clock::unix_secs();
            if !tokens::revoke(tx, id, now)? {
                return Err(token_not_found(id));
            }
            let target = format!("enrollment_token:{id}");
            audit::record(
                tx,
                &actor,
                AuditAction::TokenRevoke,
                Some(&target),
                None,
                now,
            )?;
            tokens::get(tx, id, now)?.ok_or_else(|| token_not_found(id))
        })
        .await?;
    Ok(Json(token))
}

/// Sort orders of the component list (the SQL column is unused: components sort in memory).
const SORTS: &[(&str, &str)] = &[
    ("name", "name"),
    ("status", "status"),
    ("kind", "kind"),
    ("last_seen_at", "last_seen_at"),
    ("created_at", "created_at"),
];

async fn list(
    State(state): State<AppState>,
    _auth: Authed<AnyRole>,
    ApiQuery(query): ApiQuery<ComponentQuery>,
) -> ApiResult<Json<ListResponse<Component>>> {
    let (limit, offset) = page_bounds(query.limit, query.offset)?;
    let sort = match query.sort.as_deref() {
        Some(sort) => Some(sort_order(Some(sort), "name", SORTS)?),
        None => None,
    };
    let kind = query.kind;
    let rows = state
        .db
        .call(move |conn| components::all(conn, kind).map_err(db::DbError::from))
        .await?;
    let now = crate::clock::unix_secs();
    let text = query.q.as_deref().map(str::to_lowercase);
    let mut items: Vec<Component> = rows
        .into_iter()
        .map(|row| crate::components::view(&state.presence, row, now))
        .filter(|c| query.status.is_none_or(|status| c.status == status))
        .filter(|c| {
            text.as_deref().is_none_or(|text| {
                [Some(&c.name), c.hostname.as_ref(), Some(&c.machine_id)]
                    .into_iter()
                    .flatten()
                    .any(|field| field.to_lowercase().contains(text))
            })
        })
        .collect();
    match sort {
        // Pending approvals first: they are what an admin has to act on.
        None => items.sort_by_key(|c| {
            (
                c.status != ComponentStatus::Pending,
                c.name.to_lowercase(),
                c.id,
            )
        }),
        Some((column, descending)) => {
            items.sort_by(|a, b| {
                let order = match column {
                    "status" => a.status.cmp(&b.status),
                    "kind" => a.kind.cmp(&b.kind),
                    "last_seen_at" => a.last_seen_at.cmp(&b.last_seen_at),
                    "created_at" => a.created_at.cmp(&b.created_at),
                    _ => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                };
                order.then(a.id.cmp(&b.id))
            });
            if descending {
                items.reverse();
            }
        }
    }
    let total = items.len() as u64;
    let items = items
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    Ok(Json(ListResponse { items, total }))
}

fn existing(conn: &Connection, id: i64) -> ApiResult<ComponentRow> {
    components::get(conn, id)?.ok_or_else(|| not_found(id))
}

async fn read(
    State(state): State<AppState>,
    _auth: Authed<AnyRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Component>> {
    let row = state.db.call(move |conn| existing(conn, id)).await?;
    Ok(Json(crate::components::view(
        &state.presence,
        row,
        crate::clock::unix_secs(),
    )))
}

/// The node of an approved agent: the node chosen (`choice.node`), a new one named like its
/// host (none matches, or `choice.new_node`). When a node is named or addressed like the host
/// and no choice was made, the approval is refused with the candidates: binding the agent to
/// a node a collector polls must be someone's decision.
fn agent_node(
    conn: &Connection,
    row: &ComponentRow,
    choice: &ApproveRequest,
    now: i64,
) -> ApiResult<i64> {
    let host = row.hostname.clone().unwrap_or_else(|| row.name.clone());
    if let Some(wanted) = choice.node.as_deref().map(str::trim) {
        let by_id = wanted.parse::<i64>().ok();
        let found: Option<i64> = conn
            .query_row(
                "SELECT id FROM nodes WHERE lower(name) = lower(?1) OR id = ?2",
                rusqlite::params![wanted, by_id],
                |r| r.get(0),
            )
            .optional()?;
        return found.ok_or_else(|| {
            ApiError::not_found(
                ErrorCode::NodeNotFound,
                format!("there is no node {wanted:?}"),
            )
        });
    }
    let mut candidates = conn.prepare(
        "SELECT id, name, address FROM nodes WHERE lower(name) = lower(?1)
            OR lower(address) = lower(?1) ORDER BY id LIMIT 10",
    )?;
    let candidates: Vec<(i64, String, String)> = candidates
        .query_map([&host], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if !candidates.is_empty() && !choice.new_node {
        let names: Vec<&str> = candidates.iter().map(|c| c.1.as_str()).collect();
        return Err(ApiError::conflict(
            ErrorCode::NodeChoiceNeeded,
            format!(
                "node(s) {} match the agent's host {host:?}: approve with the node it reports \
                 for, or with a new node",
                names.join(", ")
            ),
        )
        .with_details(json!({
            "candidates": candidates
                .iter()
                .map(|(id, name, address)| json!({ "id": id, "name": name, "address": address }))
                .collect::<Vec<_>>(),
        })));
    }
    let taken = |name: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT count(*) FROM nodes WHERE lower(name) = lower(?1)",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    let name = if !taken(&host)? {
        host.clone()
    } else if !taken(&format!("{host}-agent"))? {
        format!("{host}-agent")
    } else {
        return Err(ApiError::conflict(
            ErrorCode::NodeNameTaken,
            format!("nodes {host:?} and \"{host}-agent\" exist: approve with the node to use"),
        ));
    };
    let address = if address_problem(&host).is_none() {
        host.clone()
    } else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidHostname,
            format!(
                "the agent's host name {host:?} is not a usable node address; create its node first, named like the host"
            ),
        ));
    };
    let fields = NodeFields {
        name,
        address,
        node_type: NodeType::Server,
        tags: Vec::new(),
        collector_id: None,
        template_id: None,
        credential_ids: Vec::new(),
        parent_id: None,
        interval_s: None,
        modbus_unit: None,
        notes: Some(format!("Created when agent {} was approved.", row.name)),
    };
    Ok(nodes::insert(conn, &fields, now)?)
}

/// What an admin change did, for its audit entry: `None` when there was nothing to do.
type Changed = Option<serde_json::Value>;

/// One admin change of component `id` in one transaction with its audit entry (`action`, the
/// kind and name, and what `apply` adds); its cached keys are dropped after the commit. Answers
/// the row as it is afterwards (`None` once deleted).
async fn change<F>(
    state: &AppState,
    auth: &Authed<AdminRole>,
    id: i64,
    action: AuditAction,
    apply: F,
) -> ApiResult<Option<ComponentRow>>
where
    F: FnOnce(&rusqlite::Transaction<'_>, &ComponentRow, i64) -> ApiResult<Changed>
        + Send
        + 'static,
{
    let actor = auth.actor();
    let row = state
        .db
        .write(move |tx| -> ApiResult<Option<ComponentRow>> {
            let now = crate::clock::unix_secs();
            let row = existing(tx, id)?;
            if let Some(extra) = apply(tx, &row, now)? {
                let mut details = json!({ "kind": row.kind, "name": row.name });
                if let (Some(details), serde_json::Value::Object(extra)) =
                    (details.as_object_mut(), extra)
                {
                    details.extend(extra);
                }
                let target = format!("component:{id}");
                audit::record(tx, &actor, action, Some(&target), Some(&details), now)?;
            }
            Ok(components::get(tx, id)?)
        })
        .await?;
    state.keys.forget(id);
    Ok(row)
}

async fn approve(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Component>> {
    let choice: ApproveRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ApproveRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(ErrorCode::InvalidJson, e.to_string()))?
    };
    if choice.node.is_some() && choice.new_node {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidChoice,
            "give the node to use or ask for a new one, not both",
        ));
    }
    let vault = state.vault.clone();
    let row = change(
        &state,
        &auth,
        id,
        AuditAction::ComponentApprove,
        move |tx, row, now| {
            if row.revoked {
                return Err(ApiError::conflict(
                    ErrorCode::ComponentRevoked,
                    format!(
                        "{} {id} was revoked; it must enroll again before it can be approved",
                        row.kind
                    ),
                ));
            }
            if row.approved {
                return Ok(None);
            }
            let node_id = match row.kind {
                ComponentKind::Agent => Some(agent_node(tx, row, &choice, now)?),
                ComponentKind::Collector => None,
            };
            components::approve(tx, id, node_id, now)?;
            if row.kind == ComponentKind::Collector {
                crate::config_delivery::regenerate(tx, &vault, id, now)?;
            }
            Ok(Some(json!({ "node_id": node_id })))
        },
    )
    .await?
    .ok_or_else(|| not_found(id))?;
    Ok(Json(crate::components::view(
        &state.presence,
        row,
        crate::clock::unix_secs(),
    )))
}

fn refuse_local(row: &ComponentRow, what: &str) -> ApiResult<()> {
    if row.is_local {
        return Err(ApiError::conflict(
            ErrorCode::LocalCollector,
            format!("the server's own collector cannot be {what}"),
        ));
    }
    Ok(())
}

async fn revoke(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Component>> {
    let row = change(
        &state,
        &auth,
        id,
        AuditAction::ComponentRevoke,
        move |tx, row, now| {
            refuse_local(row, "revoked")?;
            components::revoke(tx, id, now)?;
            Ok(Some(json!({})))
        },
    )
    .await?
    .ok_or_else(|| not_found(id))?;
    Ok(Json(crate::components::view(
        &state.presence,
        row,
        crate::clock::unix_secs(),
    )))
}

async fn remove(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    change(
        &state,
        &auth,
        id,
        AuditAction::ComponentDelete,
        move |tx, row, _| {
            refuse_local(row, "deleted")?;
            components::delete(tx, id)?;
            Ok(Some(json!({})))
        },
    )
    .await?;
    state.presence.forget(id);
    Ok(StatusCode::NO_CONTENT)
}
