//! Reading metrics: `GET /nodes/{id}/metrics` (a node's series over a range, in steps, counters
//! as per-second rates), `GET /metrics/series` (search stored series) and `GET /summary` (the
//! dashboard's figures). Every signed-in role may read.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use plantwatch_shared::api::{
    IngestStats, ListResponse, MAX_SERIES_PER_QUERY, MetricQuery, MetricsAnswer, SeriesInfo,
    SeriesQuery, Summary,
};

use super::MAX_LIMIT;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery, Authed};
use crate::db::{self, nodes};
use crate::metrics_store::backend::BackendError;
use crate::metrics_store::query::{self, RangeQuery};
use crate::state::AppState;
use plantwatch_shared::api::ErrorCode;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/nodes/{id}/metrics", get(node_metrics))
        .route("/metrics/series", get(series))
        .route("/summary", get(summary))
}

async fn node_metrics(
    State(state): State<AppState>,
    _auth: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(params): ApiQuery<MetricQuery>,
) -> ApiResult<Json<MetricsAnswer>> {
    let exists = state
        .db
        .call(move |conn| nodes::get(conn, id).map_err(db::DbError::from))
        .await?
        .is_some();
    if !exists {
        return Err(ApiError::not_found(
            ErrorCode::NodeNotFound,
            format!("there is no node {id}"),
        ));
    }
    let to = params.to.unwrap_or_else(crate::clock::unix_secs);
    let from = params.from.unwrap_or(to - 3_600);
    if from >= to {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRange,
            "from must be before to",
        ));
    }
    if params.step.is_some_and(|s| s <= 0) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidStep,
            "step must be positive",
        ));
    }
    let query = RangeQuery::new(
        id,
        params.metric.clone(),
        (from, to),
        params.step,
        params.agg.unwrap_or_default(),
        &state.metrics.retention,
        crate::clock::unix_ms(),
    );
    let (step, agg) = (query.step, query.agg);
    let metric = params.metric.clone();
    let total = state
        .metrics
        .reader
        .call(move |conn| {
            query::count_node_series(conn, id, metric.as_deref()).map_err(db::DbError::from)
        })
        .await?;
    let items = state
        .backend
        .range(query)
        .await
        .map_err(|error| match error {
            BackendError::Store(error) => ApiError::from(error),
            BackendError::Engine(message) => {
                tracing::warn!(%message, "A chart query to the metrics engine failed.");
                ApiError::new(
                    axum::http::StatusCode::BAD_GATEWAY,
                    ErrorCode::MetricsEngineUnavailable,
                    BackendError::Engine(message).to_string(),
                )
            }
        })?;
    let truncated = total > MAX_SERIES_PER_QUERY as u64;
    Ok(Json(MetricsAnswer {
        node_id: id,
        from,
        to,
        step,
        agg,
        items,
        total,
        truncated,
    }))
}

async fn series(
    State(state): State<AppState>,
    _auth: Authed,
    ApiQuery(params): ApiQuery<SeriesQuery>,
) -> ApiResult<Json<ListResponse<SeriesInfo>>> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=i64::from(MAX_LIMIT)).contains(&limit) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidLimit,
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let head = state.metrics.head.clone();
    let mut items = state
        .metrics
        .reader
        .call(move |conn| {
            query::search(conn, &head, params.node_id, params.q.as_deref(), limit)
                .map_err(db::DbError::from)
        })
        .await?;
    // With the remote-write backend metrics.db keeps no samples: the newest one is the hot
    // window's (the last 15 minutes).
    if !state.backend.keeps_samples() {
        for item in items.iter_mut().filter(|i| i.latest.is_none()) {
            item.latest = state
                .metrics
                .hot
                .latest_of_series(item.node_id, item.id)
                .map(|(ts, value)| (ts.div_euclid(1_000), value));
        }
    }
    let total = items.len() as u64;
    Ok(Json(ListResponse { items, total }))
}

/// Active alerts the dashboard shows.
const SUMMARY_ALERTS: u32 = 10;

async fn summary(State(state): State<AppState>, _auth: Authed) -> ApiResult<Json<Summary>> {
    let (nodes_by_health, collectors, (newest_alerts, active_alerts), alerts_by_severity) = state
        .db
        .call(|conn| -> Result<_, db::DbError> {
            let by_health = nodes::count_by_health(conn)?;
            let collectors =
                db::components::all(conn, Some(plantwatch_shared::api::ComponentKind::Collector))?;
            let alerts = db::alerts::list_alerts(
                conn,
                &plantwatch_shared::api::AlertQuery::default(),
                SUMMARY_ALERTS,
                0,
            )?;
            let by_severity = db::alerts::count_active_by_severity(conn)?;
            Ok((by_health, collectors, alerts, by_severity))
        })
        .await?;
    let now = crate::clock::unix_secs();
    let collectors = collectors
        .into_iter()
        .map(|row| crate::components::view(&state.presence, row, now))
        .collect();
    let stats = &state.metrics.stats;
    Ok(Json(Summary {
        nodes_by_health,
        collectors,
        active_alerts,
        alerts_by_severity,
        newest_alerts,
        evaluator_cycle_ms: (state.evaluator.cycles.load(Ordering::Relaxed) > 0)
            .then(|| state.evaluator.last_cycle_us.load(Ordering::Relaxed) as f64 / 1_000.0),
        ingest: IngestStats {
            samples_per_second: stats.samples_per_second(),
            samples_total: stats.samples.load(Ordering::Relaxed),
            series: stats.series.load(Ordering::Relaxed),
            rejected_lines: stats.rejected_lines.load(Ordering::Relaxed),
            duplicate_batches: stats.duplicate_batches.load(Ordering::Relaxed),
        },
        remote_write: state.backend.remote_status(),
    }))
}
