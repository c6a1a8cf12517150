//! `/nodes`: the inventory. Everyone reads; operators and admins write. Every write that
//! changes what a collector polls marks that collector's configuration dirty in the same
//! transaction.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use plantwatch_shared::api::{
    AttachRequest, AuditEntry, AuditQuery, BulkNodesAnswer, BulkNodesRequest, CheckSpec,
    ExportFormat, ExportQuery, ImportProblem, ImportQuery, ListResponse, Node, NodeQuery, NodeSpec,
    Role, UpdateNodeRequest,
};
use plantwatch_shared::api::{AuditAction, HostWatch, NodeHost};
use rusqlite::Connection;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, Authed, OperatorRole};
use super::{page_bounds, sort_order};
use crate::db::audit::Actor;
use crate::db::checks::{self, ChecksChange};
use crate::db::{self, audit, config_dirty, credentials, nodes};
use crate::inventory::import::{self, FileError};
use crate::inventory::{Catalog, check, patched};
use crate::state::AppState;
use plantwatch_shared::api::ErrorCode;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/nodes", get(list).post(create))
        .route(
            "/nodes/import",
            post(import_nodes).layer(DefaultBodyLimit::max(import::MAX_BYTES)),
        )
        .route("/nodes/export", get(export))
        .route("/nodes/bulk", post(bulk))
        .route("/nodes/{id}", get(read).patch(update).delete(remove))
        .route("/nodes/{id}/history", get(history))
        .route("/nodes/{id}/host", get(read_host).put(set_host))
        .route(
            "/nodes/{id}/credentials/{credential_id}",
            put(attach).delete(detach),
        )
        .route(
            "/nodes/{id}/parents/{parent_id}",
            put(add_parent).delete(remove_parent),
        )
}

fn node_not_found(id: i64) -> ApiError {
    ApiError::not_found(ErrorCode::NodeNotFound, format!("there is no node {id}"))
}

/// Node `id`, or 404 `node_not_found`.
pub(crate) fn existing(conn: &Connection, id: i64) -> ApiResult<Node> {
    nodes::get(conn, id)?.ok_or_else(|| node_not_found(id))
}

/// 400 naming the first field at fault, with every problem in the details.
fn invalid(problems: Vec<ImportProblem>) -> ApiError {
    let field = problems
        .first()
        .and_then(|p| p.column.clone())
        .unwrap_or_default();
    let message = problems
        .iter()
        .map(|p| match &p.column {
            Some(column) => format!("{column}: {}", p.reason),
            None => p.reason.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::bad_request(ErrorCode::InvalidNode, message)
        .with_details(json!({ "field": field, "problems": problems }))
}

/// The id of the parent named `name`, refusing unknown names and loops.
fn resolve_parent(
    conn: &Connection,
    name: Option<&str>,
    id: Option<i64>,
) -> ApiResult<Option<i64>> {
    let Some(name) = name else { return Ok(None) };
    let parent_problem = |reason: String| {
        invalid(vec![ImportProblem {
            column: Some("parent".to_owned()),
            reason,
        }])
    };
    let parent_id = nodes::id_by_name(conn, name)?
        .ok_or_else(|| parent_problem(format!("there is no node named {name:?}")))?;
    if let Some(id) = id
        && nodes::would_cycle(conn, id, parent_id)?
    {
        return Err(parent_problem(format!(
            "{name:?} is this node or hangs off it; that would make a cycle"
        )));
    }
    Ok(Some(parent_id))
}

async fn list(
    State(state): State<AppState>,
    _auth: Authed,
    ApiQuery(query): ApiQuery<NodeQuery>,
) -> ApiResult<Json<ListResponse<Node>>> {
    let (limit, offset) = page_bounds(query.limit, query.offset)?;
    let (order, descending) = sort_order(query.sort.as_deref(), "name", nodes::SORTS)?;
    let (items, total) = state
        .db
        .call(move |conn| -> ApiResult<_> {
            let collector_id = match &query.collector {
                Some(name) => match Catalog::load(conn)?.collector(name) {
                    Ok(id) => Some(id),
                    // No such collector: nothing matches.
                    Err(_) => return Ok((Vec::new(), 0)),
                },
                None => None,
            };
            Ok(nodes::list(
                conn,
                &query,
                collector_id,
                order,
                descending,
                limit,
                offset,
            )?)
        })
        .await?;
    let items = items.into_iter().map(|n| live(&state, n)).collect();
    Ok(Json(ListResponse { items, total }))
}

/// Adds what the hot window knows: the newest sample's time and the latest ping RTT.
fn live(state: &AppState, mut node: Node) -> Node {
    let hot = &state.metrics.hot;
    node.last_sample_at = hot
        .last_sample_at(node.id)
        .and_then(|ms| time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1_000)).ok());
    node.rtt_ms = hot.latest(node.id, "ping.rtt_avg_ms").map(|(_, v)| v);
    node
}

async fn create(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiJson(spec): ApiJson<NodeSpec>,
) -> ApiResult<(StatusCode, Json<Node>)> {
    let actor = auth.actor();
    let admin = auth.user.role == Role::Admin;
    let node = state
        .db
        .write(move |tx| -> ApiResult<Node> {
            let catalog = Catalog::load(tx)?;
            let checked = check(&spec, &catalog).map_err(invalid)?;
            let mut fields = checked.fields;
            let scope =
                catalog.credential_scope(&fields.address, &fields.credential_ids, &[], admin);
            if !scope.is_empty() {
                return Err(invalid(scope));
            }
            fields.parent_id = resolve_parent(tx, checked.parent.as_deref(), None)?;
            let now = crate::clock::unix_secs();
            let id = nodes::insert(tx, &fields, now)?;
            let wanted = checked.checks.unwrap_or_default();
            checks::apply_change(tx, id, &ChecksChange::between(&[], &wanted, false), now)?;
            config_dirty::mark(tx, [fields.collector_id], "node created", now)?;
            let mut details = json!({ "name": fields.name, "address": fields.address });
            if !wanted.is_empty() {
                details["checks"] =
                    json!(wanted.iter().map(ToString::to_string).collect::<Vec<_>>());
            }
            audit::record(
                tx,
                &actor,
                AuditAction::NodeCreate,
                Some(&format!("node:{id}")),
                Some(&details),
                now,
            )?;
            let node = existing(tx, id)?;
            Ok(node)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(node)))
}

async fn read(
    State(state): State<AppState>,
    _auth: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Node>> {
    let node = state.db.call(move |conn| existing(conn, id)).await?;
    Ok(Json(live(&state, node)))
}

async fn update(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<UpdateNodeRequest>,
) -> ApiResult<Json<Node>> {
    let actor = auth.actor();
    let admin = auth.user.role == Role::Admin;
    let node = state
        .db
        .write(move |tx| update_in(tx, id, request, &actor, admin, crate::clock::unix_secs()))
        .await?;
    Ok(Json(node))
}

/// Changes node `id` inside `tx` as `request` asks, checked as a single update is, audited.
fn update_in(
    tx: &Connection,
    id: i64,
    request: UpdateNodeRequest,
    actor: &Actor,
    admin: bool,
    now: i64,
) -> ApiResult<Node> {
    if request.is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::NothingToChange,
            "give at least one field to change",
        ));
    }
    let before = existing(tx, id)?;
    let changed: Vec<String> = serde_json::to_value(&request)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
        .unwrap_or_default();
    let spec = patched(&before, request);
    let catalog = Catalog::load(tx)?;
    let checked = check(&spec, &catalog).map_err(invalid)?;
    let mut fields = checked.fields;
    // At an address change every credential is judged again.
    let already: Vec<i64> = if fields.address == before.address {
        before.credentials.iter().map(|c| c.id).collect()
    } else {
        Vec::new()
    };
    let scope = catalog.credential_scope(&fields.address, &fields.credential_ids, &already, admin);
    if !scope.is_empty() {
        return Err(invalid(scope));
    }
    fields.parent_id = resolve_parent(tx, checked.parent.as_deref(), Some(id))?;
    nodes::update(tx, id, &fields, now)?;
    config_dirty::mark(
        tx,
        [before.collector_id, fields.collector_id],
        "node updated",
        now,
    )?;
    let details = json!({ "name": fields.name, "changed": changed });
    audit::record(
        tx,
        actor,
        AuditAction::NodeUpdate,
        Some(&format!("node:{id}")),
        Some(&details),
        now,
    )?;
    existing(tx, id)
}

/// `GET /nodes/{id}/host`: the agent's inventory and what the node must run.
async fn read_host(
    State(state): State<AppState>,
    _auth: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<NodeHost>> {
    let host = state
        .db
        .call(move |conn| -> ApiResult<NodeHost> {
            existing(conn, id)?;
            Ok(db::host::get(conn, id)?)
        })
        .await?;
    Ok(Json(host))
}

/// `PUT /nodes/{id}/host`: the services the node must have running and the processes it
/// watches (operators).
async fn set_host(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(watch): ApiJson<HostWatch>,
) -> ApiResult<Json<NodeHost>> {
    let watch = watch
        .normalized()
        .map_err(|problem| ApiError::bad_request(ErrorCode::InvalidNode, problem))?;
    let actor = auth.actor();
    let host = state
        .db
        .write(move |tx| -> ApiResult<NodeHost> {
            let node = existing(tx, id)?;
            db::host::set_watch(tx, id, &watch)?;
            let details = json!({
                "name": node.name,
                "changed": ["services", "processes"],
                "services": watch.services,
                "processes": watch.processes,
            });
            audit::record(
                tx,
                &actor,
                AuditAction::NodeUpdate,
                Some(&format!("node:{id}")),
                Some(&details),
                crate::clock::unix_secs(),
            )?;
            Ok(db::host::get(tx, id)?)
        })
        .await?;
    // The node's agent hears of it with its next heartbeat.
    state.host_watch.forget(id);
    Ok(Json(host))
}

async fn remove(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let actor = auth.actor();
    let agents = state
        .db
        .write(move |tx| remove_in(tx, id, &actor, crate::clock::unix_secs()))
        .await?;
    forget_removed(&state, id, agents);
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes node `id` inside `tx`, audited; the agents that reported for it.
fn remove_in(tx: &Connection, id: i64, actor: &Actor, now: i64) -> ApiResult<Vec<i64>> {
    let node = existing(tx, id)?;
    config_dirty::mark(tx, [node.collector_id], "node deleted", now)?;
    let agents = db::components::agents_of_node(tx, id)?;
    nodes::delete(tx, id)?;
    let details = json!({ "name": node.name, "address": node.address });
    audit::record(
        tx,
        actor,
        AuditAction::NodeDelete,
        Some(&format!("node:{id}")),
        Some(&details),
        now,
    )?;
    Ok(agents)
}

/// After a delete: an agent that reported for the node has none now (its cached identity
/// says otherwise), and the node's latest values go.
fn forget_removed(state: &AppState, id: i64, agents: Vec<i64>) {
    for agent in agents {
        state.keys.forget(agent);
    }
    state.metrics.hot.forget(id);
}

/// `POST /nodes/bulk` (operators): many nodes changed or deleted in one transaction — all or
/// none: the first node at fault is named and nothing is changed.
async fn bulk(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiJson(request): ApiJson<BulkNodesRequest>,
) -> ApiResult<Json<BulkNodesAnswer>> {
    let count = request.update.len() + request.delete.len();
    if count == 0 {
        return Err(ApiError::bad_request(
            ErrorCode::NothingToChange,
            "give at least one node to update or delete",
        ));
    }
    if count > MAX_BULK {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidNode,
            format!("at most {MAX_BULK} nodes in one request, not {count}"),
        ));
    }
    let actor = auth.actor();
    let admin = auth.user.role == Role::Admin;
    let (answer, removed) = state
        .db
        .write(move |tx| -> ApiResult<(BulkNodesAnswer, Vec<Removed>)> {
            let now = crate::clock::unix_secs();
            let mut answer = BulkNodesAnswer::default();
            for item in request.update {
                let id = item.id;
                let node = update_in(tx, id, item.changes, &actor, admin, now)
                    .map_err(|e| e.prefixed(&format!("node {id}")))?;
                answer.updated.push(node);
            }
            let mut removed = Vec::new();
            for id in request.delete {
                let name = existing(tx, id)?.name;
                removed.push((id, remove_in(tx, id, &actor, now)?));
                answer.deleted.push(name);
            }
            Ok((answer, removed))
        })
        .await?;
    for (id, agents) in removed {
        forget_removed(&state, id, agents);
    }
    Ok(Json(answer))
}

/// A node deleted and the agents that reported for it.
type Removed = (i64, Vec<i64>);

/// Most nodes one bulk request changes.
const MAX_BULK: usize = 10_000;

async fn history(
    State(state): State<AppState>,
    _auth: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ListResponse<AuditEntry>>> {
    let (items, total) = state
        .db
        .call(move |conn| -> ApiResult<_> {
            let query = AuditQuery {
                target: Some(format!("node:{id}")),
                ..AuditQuery::default()
            };
            Ok(audit::list(conn, &query, super::DEFAULT_LIMIT, 0)?)
        })
        .await?;
    Ok(Json(ListResponse { items, total }))
}

/// Attaches a credential (or moves it to another priority) or detaches it.
async fn change_attachment(
    state: AppState,
    auth: Authed<OperatorRole>,
    node_id: i64,
    credential_id: i64,
    attach: Option<AttachRequest>,
) -> ApiResult<Json<Node>> {
    let actor = auth.actor();
    let admin = auth.user.role == Role::Admin;
    let node = state
        .db
        .write(move |tx| -> ApiResult<Node> {
            let node = existing(tx, node_id)?;
            let credential = credentials::get(tx, credential_id)?.ok_or_else(|| {
                ApiError::not_found(
                    ErrorCode::CredentialNotFound,
                    format!("there is no credential {credential_id}"),
                )
            })?;
            if attach.is_some() {
                let scope = Catalog::load(tx)?.credential_scope(
                    &node.address,
                    &[credential_id],
                    &[],
                    admin,
                );
                if let Some(problem) = scope.into_iter().next() {
                    return Err(
                        ApiError::forbidden(problem.reason).with_code(ErrorCode::CredentialScope)
                    );
                }
            }
            let now = crate::clock::unix_secs();
            let (changed, action) = match &attach {
                Some(request) => (
                    nodes::attach(tx, node_id, credential_id, request.priority)?,
                    AuditAction::NodeAttachCredential,
                ),
                None => {
                    if !nodes::detach(tx, node_id, credential_id)? {
                        return Err(ApiError::not_found(
                            ErrorCode::CredentialNotAttached,
                            format!(
                                "credential {:?} is not attached to node {:?}",
                                credential.name, node.name
                            ),
                        ));
                    }
                    (true, AuditAction::NodeDetachCredential)
                }
            };
            if changed {
                nodes::touch(tx, node_id, now)?;
                config_dirty::mark(tx, [node.collector_id], "credential attachment", now)?;
                let details = json!({ "node": node.name, "credential": credential.name });
                audit::record(
                    tx,
                    &actor,
                    action,
                    Some(&format!("node:{node_id}")),
                    Some(&details),
                    now,
                )?;
            }
            let node = existing(tx, node_id)?;
            Ok(node)
        })
        .await?;
    Ok(Json(node))
}

/// Adds a further parent (a redundant uplink) to a node.
async fn add_parent(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath((id, parent_id)): ApiPath<(i64, i64)>,
) -> ApiResult<Json<Node>> {
    change_parent(state, auth, id, parent_id, true).await
}

async fn remove_parent(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath((id, parent_id)): ApiPath<(i64, i64)>,
) -> ApiResult<Json<Node>> {
    change_parent(state, auth, id, parent_id, false).await
}

async fn change_parent(
    state: AppState,
    auth: Authed<OperatorRole>,
    node_id: i64,
    parent_id: i64,
    add: bool,
) -> ApiResult<Json<Node>> {
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<Node> {
            let node = existing(tx, node_id)?;
            let parent = existing(tx, parent_id)?;
            let invalid = |reason: String| ApiError::bad_request(ErrorCode::InvalidNode, reason);
            if add {
                if node_id == parent_id {
                    return Err(invalid(format!("{} cannot be its own parent", node.name)));
                }
                if node.parent_id == Some(parent_id) {
                    return Err(invalid(format!(
                        "{} is already the parent of {}",
                        parent.name, node.name
                    )));
                }
                if nodes::would_cycle(tx, node_id, parent_id)? {
                    return Err(invalid(format!(
                        "{} hangs off {}: making it a parent would close a loop",
                        parent.name, node.name
                    )));
                }
            }
            let changed = if add {
                nodes::add_parent(tx, node_id, parent_id)?
            } else if nodes::remove_parent(tx, node_id, parent_id)? {
                true
            } else {
                return Err(ApiError::not_found(
                    ErrorCode::ParentNotFound,
                    format!("{} is not a further parent of {}", parent.name, node.name),
                ));
            };
            if changed {
                let now = crate::clock::unix_secs();
                nodes::touch(tx, node_id, now)?;
                audit::record(
                    tx,
                    &actor,
                    if add {
                        AuditAction::NodeAddParent
                    } else {
                        AuditAction::NodeRemoveParent
                    },
                    Some(&format!("node:{node_id}")),
                    Some(&json!({ "node": node.name, "parent": parent.name })),
                    now,
                )?;
            }
            existing(tx, node_id)
        })
        .await
        .map(Json)
}

async fn attach(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath((id, credential_id)): ApiPath<(i64, i64)>,
    body: Bytes,
) -> ApiResult<Json<Node>> {
    // The body is optional: no body attaches after the others.
    let request: AttachRequest = if body.iter().all(u8::is_ascii_whitespace) {
        AttachRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(ErrorCode::InvalidJson, e.to_string()))?
    };
    change_attachment(state, auth, id, credential_id, Some(request)).await
}

async fn detach(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath((id, credential_id)): ApiPath<(i64, i64)>,
) -> ApiResult<Json<Node>> {
    change_attachment(state, auth, id, credential_id, None).await
}

async fn import_nodes(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let admin = auth.user.role == Role::Admin;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::ImportTooLarge,
                format!(
                    "the import file is larger than {} MB; split it into several imports",
                    import::MAX_BYTES / (1024 * 1024)
                ),
            )
        } else {
            ApiError::bad_request(ErrorCode::UnreadableBody, rejection.body_text())
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if !(media.is_empty()
        || media.ends_with("csv")
        || media.ends_with("json")
        || media == "text/plain")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            format!(
                "an import is CSV (text/csv) or JSON (application/json), not {:?}",
                import::echo(media)
            ),
        ));
    }
    let json = content_type.contains("json")
        || (content_type.is_empty()
            && body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'['));
    let parsed = tokio::task::spawn_blocking(move || {
        if json {
            import::parse_json(&body)
        } else {
            import::parse_csv(&body)
        }
    })
    .await
    .map_err(|e| ApiError::internal(anyhow::anyhow!("parsing task failed: {e}")))?
    .map_err(|error| {
        let code = match error {
            FileError::TooManyRows => ErrorCode::TooManyRows,
            _ => ErrorCode::InvalidImportFile,
        };
        ApiError::bad_request(code, error.to_string())
    })?;
    let actor = auth.actor();
    let report = state
        .db
        .write(move |tx| -> ApiResult<_> {
            let plan = import::plan(tx, parsed, query.upsert, admin)?;
            let rejected = plan.has_errors();
            if query.dry_run || (rejected && !query.partial) {
                // Nothing was written: the transaction commits empty.
                return Ok(plan.report(&query, false));
            }
            let now = crate::clock::unix_secs();
            import::apply(tx, &plan, &actor, now)?;
            let report = plan.report(&query, true);
            audit::record(
                tx,
                &actor,
                AuditAction::NodeImport,
                None,
                Some(&json!(report.summary)),
                now,
            )?;
            Ok(report)
        })
        .await?;
    if !report.applied && !report.dry_run {
        let message = format!(
            "{} of {} rows are rejected; nothing was applied",
            report.summary.error,
            report.rows.len()
        );
        let details = serde_json::to_value(&report).map_err(ApiError::internal)?;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ImportRejected,
            message,
        )
        .with_details(details));
    }
    Ok(Json(report).into_response())
}

async fn export(
    State(state): State<AppState>,
    _auth: Authed,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let specs: Vec<NodeSpec> = state
        .db
        .call(|conn| -> ApiResult<_> {
            let mut checks_of: HashMap<i64, Vec<CheckSpec>> = HashMap::new();
            for check in checks::all(conn)? {
                checks_of.entry(check.node_id).or_default().push(check.spec);
            }
            Ok(nodes::all(conn)?
                .iter()
                .map(|node| NodeSpec {
                    checks: checks_of.remove(&node.id),
                    ..NodeSpec::of(node)
                })
                .collect())
        })
        .await?;
    match query.format {
        ExportFormat::Json => Ok(Json(specs).into_response()),
        ExportFormat::Csv => {
            let text = export_csv(&specs).map_err(ApiError::internal)?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"nodes.csv\"",
                    ),
                ],
                text,
            )
                .into_response())
        }
    }
}

/// Nodes as CSV in the columns an import takes.
fn export_csv(specs: &[NodeSpec]) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(NodeSpec::COLUMNS)?;
    for spec in specs {
        let interval = spec.interval_s.map(|s| s.to_string()).unwrap_or_default();
        let unit = spec.modbus_unit.map(|u| u.to_string()).unwrap_or_default();
        let (tags, credentials) = (spec.tags.join(";"), spec.credentials.join(";"));
        let checks = spec
            .checks
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(";");
        let cells = [
            spec.name.as_str(),
            spec.address.as_str(),
            spec.node_type.map(|t| t.as_str()).unwrap_or_default(),
            tags.as_str(),
            spec.collector.as_deref().unwrap_or_default(),
            spec.template.as_deref().unwrap_or_default(),
            credentials.as_str(),
            spec.parent.as_deref().unwrap_or_default(),
            interval.as_str(),
            spec.notes.as_deref().unwrap_or_default(),
            checks.as_str(),
            unit.as_str(),
        ]
        .map(crate::inventory::escape_cell);
        writer.write_record(cells.iter().map(|c| c.as_bytes()))?;
    }
    Ok(writer.into_inner()?)
}
