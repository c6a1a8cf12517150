//! `/topology` (everyone signed in): the links the LLDP and CDP neighbour tables show, around
//! one node or all of them.

use std::collections::HashMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use plantwatch_shared::api::{
    AuditAction, ErrorCode, ListResponse, MAX_PARENT_CHANGES, NodeStatus, ParentChanges,
    ParentQuery, ParentSuggestion, Topology, TopologyNode, TopologyQuery,
};
use rusqlite::Connection;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, Authed, OperatorRole};
use crate::db::{audit, nodes};
use crate::state::AppState;

/// Links followed from the node asked for, by default and at most.
pub const DEFAULT_DEPTH: u32 = 2;
pub const MAX_DEPTH: u32 = 32;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/topology", get(show))
        .route("/topology/parents", get(suggest).post(apply))
}

fn node_not_found(id: i64) -> ApiError {
    ApiError::not_found(ErrorCode::NodeNotFound, format!("there is no node {id}"))
}

/// Every node and every link.
fn whole_map(conn: &Connection) -> ApiResult<Topology> {
    let nodes: Vec<TopologyNode> = conn
        .prepare_cached("SELECT id, name, address, health, parent_id FROM nodes ORDER BY name")?
        .query_map([], |r| {
            let health: String = r.get(3)?;
            Ok(TopologyNode {
                id: r.get(0)?,
                name: r.get(1)?,
                address: r.get(2)?,
                health: health.parse().unwrap_or(NodeStatus::Discovering),
                parent_id: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let (identities, rows) = crate::db::topology::load(conn)?;
    Ok(crate::topology::resolve(nodes, &identities, &rows))
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
            let map = whole_map(conn)?;
            let roots = match query.root {
                Some(root) if map.nodes.iter().any(|n| n.id == root) => vec![root],
                Some(root) => return Err(node_not_found(root)),
                None => crate::topology::cores(&map),
            };
            let current: HashMap<i64, Option<i64>> = conn
                .prepare_cached("SELECT id, parent_id FROM nodes")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
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
            let map = whole_map(conn)?;
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
