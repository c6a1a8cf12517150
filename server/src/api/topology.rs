//! `/topology` (everyone signed in): the links the LLDP and CDP neighbour tables show, around
//! one node or all of them.

use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use plantwatch_shared::api::{
    AuditAction, AutoParents, ErrorCode, ListResponse, MAX_PARENT_CHANGES, ParentChanges,
    ParentQuery, ParentSuggestion, Topology, TopologyQuery,
};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, Authed, OperatorRole};
use crate::db::{audit, nodes};
use crate::state::AppState;

/// Links followed from the node asked for, by default and at most.
pub const DEFAULT_DEPTH: u32 = 2;
pub const MAX_DEPTH: u32 = 32;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/topology", get(show))
        .route("/topology/parents", get(suggest).post(apply))
        .route("/topology/auto-parents", get(list_auto))
        .route("/topology/auto-parents/{collector_id}", put(set_auto))
}

fn node_not_found(id: i64) -> ApiError {
    ApiError::not_found(ErrorCode::NodeNotFound, format!("there is no node {id}"))
}

/// The parents the links suggest, where they differ from today's.
async fn suggest(
    State(state): State<AppState>,
    _auth: Authed,
    ApiQuery(query): ApiQuery<ParentQuery>,
) -> ApiResult<Json<ListResponse<ParentSuggestion>>> {
    let items = state
        .db
        .call(move |conn| -> ApiResult<_> {
            let map = crate::topology::load(conn)?;
            let roots = match query.root {
                Some(root) if map.nodes.iter().any(|n| n.id == root) => vec![root],
                Some(root) => return Err(node_not_found(root)),
                None => map.roots(),
            };
            let current = crate::topology::current_parents(conn)?;
            Ok(crate::topology::suggest_parents(&map, &roots, &current))
        })
        .await?;
    let total = items.len() as u64;
    Ok(Json(ListResponse { items, total }))
}

/// Sets the parents given, in one transaction: all or none.
async fn apply(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiJson(changes): ApiJson<ParentChanges>,
) -> ApiResult<Json<serde_json::Value>> {
    if changes.parents.is_empty() || changes.parents.len() > MAX_PARENT_CHANGES {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidBody,
            format!("give 1 to {MAX_PARENT_CHANGES} parents"),
        ));
    }
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<_> {
            let invalid = |reason: String| ApiError::bad_request(ErrorCode::InvalidNode, reason);
            for change in &changes.parents {
                let name = |id: i64| -> ApiResult<String> {
                    nodes::name_of(tx, id)?.ok_or_else(|| node_not_found(id))
                };
                let (node, parent) = (name(change.node_id)?, name(change.parent_id)?);
                if change.node_id == change.parent_id {
                    return Err(invalid(format!("{node} cannot be its own parent")));
                }
                if nodes::would_cycle(tx, change.node_id, change.parent_id)? {
                    return Err(invalid(format!(
                        "{parent} hangs off {node}: making it {node}'s parent would close a loop"
                    )));
                }
                nodes::set_parent(tx, change.node_id, Some(change.parent_id))?;
            }
            let now = crate::clock::unix_secs();
            audit::record(
                tx,
                &actor,
                AuditAction::NodeUpdate,
                None,
                Some(&json!({ "parents_from_topology": changes.parents.len() })),
                now,
            )?;
            Ok(Json(json!({ "applied": changes.parents.len() })))
        })
        .await
}

async fn show(
    State(state): State<AppState>,
    _auth: Authed,
    ApiQuery(query): ApiQuery<TopologyQuery>,
) -> ApiResult<Json<Topology>> {
    let depth = query.depth.unwrap_or(DEFAULT_DEPTH);
    if depth > MAX_DEPTH {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("depth must be at most {MAX_DEPTH}"),
        ));
    }
    state
        .db
        .call(move |conn| -> ApiResult<Topology> {
            let map = crate::topology::load(conn)?;
            if let Some(id) = query.node_id
                && !map.nodes.iter().any(|n| n.id == id)
            {
                return Err(node_not_found(id));
            }
            Ok(match query.node_id {
                Some(id) => crate::topology::around(map, id, depth),
                None => map,
            })
        })
        .await
        .map(Json)
}

/// Every collector's automatic parents.
async fn list_auto(
    State(state): State<AppState>,
    _auth: Authed,
) -> ApiResult<Json<ListResponse<AutoParents>>> {
    let items = state
        .db
        .call(|conn| -> ApiResult<_> { Ok(crate::db::topology::auto_parents(conn)?) })
        .await?;
    let total = items.len() as u64;
    Ok(Json(ListResponse { items, total }))
}

/// Turns a collector's automatic parents on from a root (applied at once and after each
/// neighbour walk) or off (`root_id` null; the parents stay as they are).
async fn set_auto(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(collector_id): ApiPath<i64>,
    ApiJson(body): ApiJson<AutoParents>,
) -> ApiResult<Json<AutoParents>> {
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<_> {
            let Some(mut setting) = crate::db::topology::auto_parents(tx)?
                .into_iter()
                .find(|a| a.collector_id == collector_id)
            else {
                return Err(ApiError::not_found(
                    ErrorCode::ComponentNotFound,
                    format!("there is no collector {collector_id}"),
                ));
            };
            if let Some(root) = body.root_id {
                setting.root = Some(nodes::name_of(tx, root)?.ok_or_else(|| node_not_found(root))?);
            } else {
                setting.root = None;
            }
            setting.root_id = body.root_id;
            let now = crate::clock::unix_secs();
            crate::db::topology::set_auto_parents(tx, collector_id, body.root_id)?;
            audit::record(
                tx,
                &actor,
                AuditAction::ComponentSetAutoParents,
                Some(&format!("component:{collector_id}")),
                Some(&json!({ "collector": setting.collector, "root": setting.root })),
                now,
            )?;
            if body.root_id.is_some() {
                setting.applied = crate::topology::apply_auto_parents(tx, Some(collector_id), now)?
                    .into_iter()
                    .flat_map(|a| a.applied)
                    .collect();
            }
            Ok(Json(setting))
        })
        .await
}
