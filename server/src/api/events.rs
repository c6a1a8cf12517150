//! Events the collectors received (`GET /events`), the receivers each collector runs
//! (`GET/PUT /remote-components/{id}/receivers`), and their retention.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use plantwatch_shared::api::{
    AuditAction, ComponentKind, ErrorCode, Event, EventQuery, ListResponse, Receivers,
};
use serde_json::json;
use tokio::sync::watch;

use super::error::{ApiError, ApiResult};
use super::extract::{AdminRole, AnyRole, ApiJson, ApiPath, ApiQuery, Authed};
use crate::db::{self, Db, audit, components, config_dirty, events};
use crate::state::AppState;

/// How often old events are swept.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(list)).route(
        "/remote-components/{id}/receivers",
        get(read_receivers).put(set_receivers),
    )
}

async fn list(
    State(state): State<AppState>,
    _auth: Authed<AnyRole>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> ApiResult<Json<ListResponse<Event>>> {
    if let (Some(from), Some(to)) = (query.from, query.to)
        && to <= from
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRange,
            "to must be after from",
        ));
    }
    let (items, total) = state
        .db
        .call(move |conn| events::list(conn, &query).map_err(db::DbError::from))
        .await?;
    Ok(Json(ListResponse { items, total }))
}

/// The collector `id`, or 404 (an agent is no collector).
fn collector(conn: &rusqlite::Connection, id: i64) -> ApiResult<String> {
    match components::get(conn, id)? {
        Some(row) if row.kind == ComponentKind::Collector => Ok(row.name),
        _ => Err(ApiError::not_found(
            ErrorCode::ComponentNotFound,
            format!("there is no collector with id {id}"),
        )),
    }
}

async fn read_receivers(
    State(state): State<AppState>,
    _auth: Authed<AnyRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Receivers>> {
    let receivers = state
        .db
        .call(move |conn| -> ApiResult<_> {
            collector(conn, id)?;
            Ok(events::receivers(conn, id)?)
        })
        .await?;
    Ok(Json(receivers))
}

/// Turns a collector's receivers on or off (admins: it opens ports on a plant network).
async fn set_receivers(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(receivers): ApiJson<Receivers>,
) -> ApiResult<Json<Receivers>> {
    if let Some(problem) = receivers.problem() {
        return Err(ApiError::bad_request(ErrorCode::InvalidReceivers, problem));
    }
    let actor = auth.actor();
    let stored = receivers.clone();
    state
        .db
        .write(move |tx| -> ApiResult<()> {
            let name = collector(tx, id)?;
            let now = crate::clock::unix_secs();
            events::set_receivers(tx, id, &stored)?;
            config_dirty::mark(tx, [Some(id)], "receivers", now)?;
            let listens = |list: &[plantwatch_shared::api::Listen]| {
                list.iter().map(ToString::to_string).collect::<Vec<_>>()
            };
            audit::record(
                tx,
                &actor,
                AuditAction::ComponentSetReceivers,
                Some(&format!("component:{id}")),
                Some(&json!({
                    "collector": name,
                    "traps": listens(&stored.traps),
                    "syslog": listens(&stored.syslog),
                })),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(Json(receivers))
}

/// Sweeps events older than `days` and beyond `max_rows`, every ten minutes.
pub async fn sweep_every(db: Db, days: u32, max_rows: u64, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {
                let before = crate::clock::unix_ms() - i64::from(days) * 86_400_000;
                let swept = db
                    .write(move |tx| events::sweep(tx, before, max_rows).map_err(db::DbError::from))
                    .await;
                match swept {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "Swept old events."),
                    Err(error) => tracing::warn!(%error, "Sweeping old events failed."),
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
