//! vSphere: a collector's report of a vCenter node's inventory
//! (`POST /remote-collectors/{id}/vsphere/{node_id}`), answered with the node of each host and
//! VM; and a vCenter node's hosts, VMs and datastores (`GET /nodes/{id}/vsphere`).

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use plantwatch_shared::api::vsphere::{VsphereInventory, VsphereObject, VsphereSync};
use plantwatch_shared::api::{ErrorCode, ListResponse};

use super::error::{ApiError, ApiResult};
use super::extract::{AnyRole, ApiJson, ApiPath, Authed, ComponentAuth};
use crate::db::vsphere;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/nodes/{id}/vsphere", get(objects))
        .route(
            "/remote-collectors/{id}/vsphere/{node_id}",
            post(report).layer(DefaultBodyLimit::max(MAX_INVENTORY_BYTES)),
        )
}

/// Largest inventory document taken: a large estate's (10,000 VMs with addresses and guest OS
/// names is about 3 MB) is far over the API's usual 1 MiB.
pub const MAX_INVENTORY_BYTES: usize = 64 * 1024 * 1024;

/// One vCenter's inventory from the collector that polls it; refused whole if it is not that
/// collector's vCenter node or the inventory is out of bounds.
async fn report(
    State(state): State<AppState>,
    auth: ComponentAuth,
    ApiPath((id, node_id)): ApiPath<(i64, i64)>,
    ApiJson(inventory): ApiJson<VsphereInventory>,
) -> ApiResult<Json<VsphereSync>> {
    super::remote::own_collector(&auth, id)?;
    if let Some(problem) = inventory.problem() {
        return Err(ApiError::bad_request(ErrorCode::InvalidReport, problem));
    }
    let now = crate::clock::unix_secs();
    let sync = state
        .db
        .write(move |tx| -> ApiResult<VsphereSync> {
            let Some(vcenter) = vsphere::vcenter_of_collector(tx, id, node_id)? else {
                return Err(ApiError::forbidden(format!(
                    "node {node_id} is no vcenter or esxi node this collector polls"
                )));
            };
            Ok(vsphere::sync(tx, node_id, &vcenter, id, &inventory, now)?)
        })
        .await?;
    if sync.created + sync.renamed + sync.gone > 0 {
        tracing::info!(
            node_id,
            created = sync.created,
            renamed = sync.renamed,
            gone = sync.gone,
            "vSphere inventory changed."
        );
    }
    Ok(Json(sync))
}

async fn objects(
    State(state): State<AppState>,
    _auth: Authed<AnyRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ListResponse<VsphereObject>>> {
    state
        .db
        .call(move |conn| {
            super::nodes::existing(conn, id)?;
            let items = vsphere::objects(conn, id)?;
            Ok(Json(ListResponse {
                total: items.len() as u64,
                items,
            }))
        })
        .await
}
