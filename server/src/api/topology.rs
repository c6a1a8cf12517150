//! `/topology` (everyone signed in): the links the LLDP and CDP neighbour tables show, around
//! one node or all of them.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use plantwatch_shared::api::{ErrorCode, NodeStatus, Topology, TopologyNode, TopologyQuery};

use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, Authed};
use crate::state::AppState;

/// Links followed from the node asked for, by default and at most.
pub const DEFAULT_DEPTH: u32 = 2;
pub const MAX_DEPTH: u32 = 32;

pub fn router() -> Router<AppState> {
    Router::new().route("/topology", get(show))
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
            let nodes: Vec<TopologyNode> = conn
                .prepare_cached("SELECT id, name, address, health FROM nodes ORDER BY name")?
                .query_map([], |r| {
                    let health: String = r.get(3)?;
                    Ok(TopologyNode {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        address: r.get(2)?,
                        health: health.parse().unwrap_or(NodeStatus::Discovering),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            if let Some(id) = query.node_id
                && !nodes.iter().any(|n| n.id == id)
            {
                return Err(ApiError::not_found(
                    ErrorCode::NodeNotFound,
                    format!("there is no node {id}"),
                ));
            }
            let (identities, rows) = crate::db::topology::load(conn)?;
            let map = crate::topology::resolve(nodes, &identities, &rows);
            Ok(match query.node_id {
                Some(id) => crate::topology::around(map, id, depth),
                None => map,
            })
        })
        .await
        .map(Json)
}
