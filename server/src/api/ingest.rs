//! `POST /ingest/influx`: line protocol from collectors, agents and Telegraf, with an API key.
//! Answers 204 once every sample is committed to disk, or 400 naming the refused lines (the
//! others are stored). A batch id (`X-Batch-Id`) already committed is acknowledged and not
//! stored again. `…/influx/write` is the same route for Telegraf's `influxdb` output, which
//! appends `/write` to the URL it is given.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use plantwatch_shared::api::{BATCH_ID_HEADER, ComponentKind, IngestRejection, MAX_BATCH_ID_LEN};
use plantwatch_shared::lineproto::Precision;
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::ComponentAuth;
use crate::db::{self, nodes};
use crate::ingest::{self, Scope};
use crate::metrics_store::backend::WriteError;
use crate::metrics_store::{Batch, Committed};
use crate::state::AppState;
use plantwatch_shared::api::ErrorCode;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ingest/influx", post(ingest_influx))
        .route("/ingest/influx/write", post(ingest_influx))
        .layer(DefaultBodyLimit::max(ingest::MAX_BODY_BYTES))
}

#[derive(Debug, Deserialize)]
struct WriteParams {
    precision: Option<String>,
}

fn batch_id(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(BATCH_ID_HEADER) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(id)
            if !id.is_empty()
                && id.len() <= MAX_BATCH_ID_LEN
                && id.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(id.to_owned()))
        }
        _ => Err(ApiError::bad_request(
            ErrorCode::InvalidBatchId,
            format!("{BATCH_ID_HEADER} must be 1 to {MAX_BATCH_ID_LEN} printable ASCII characters"),
        )),
    }
}

async fn ingest_influx(
    State(state): State<AppState>,
    auth: ComponentAuth,
    Query(params): Query<WriteParams>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let precision = match params.precision.as_deref() {
        None => Precision::Nanoseconds,
        Some(text) => Precision::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidPrecision,
                format!("precision {text:?} is not one of ns, us, ms, s"),
            )
        })?,
    };
    let batch_id = batch_id(&headers)?;
    let gzip = match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str()) {
        None => false,
        Some(Ok(enc)) if enc.eq_ignore_ascii_case("gzip") => true,
        Some(Ok(enc)) if enc.eq_ignore_ascii_case("identity") => false,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedEncoding,
                "the body must be plain or gzip",
            ));
        }
    };
    let identity = &auth.identity;
    let scope = match identity.kind {
        ComponentKind::Agent => {
            let node_id = identity.node_id.ok_or_else(|| {
                ApiError::forbidden("this agent has no node yet; it cannot send metrics")
            })?;
            let collector_metrics = state
                .db
                .call(move |conn| {
                    crate::config_delivery::collector_metrics(conn, node_id)
                        .map_err(db::DbError::from)
                })
                .await?;
            Scope::Agent {
                node_id,
                collector_metrics,
            }
        }
        ComponentKind::Collector => {
            let id = identity.id;
            let targets = state
                .db
                .call(move |conn| nodes::ids_of_collector(conn, id).map_err(db::DbError::from))
                .await?;
            Scope::Collector {
                targets: targets.into_iter().collect(),
            }
        }
    };
    let now_ms = crate::clock::unix_ms();
    let mut prepared = tokio::task::spawn_blocking(move || {
        if gzip {
            // The decompressed text is held against the process-wide budget until parsed.
            let (text, _held) = ingest::gunzip_within(&body, ingest::decompress_budget())?;
            ingest::prepare(&text, precision, &scope, now_ms)
        } else {
            ingest::prepare(&body, precision, &scope, now_ms)
        }
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|error| match error {
        ingest::BodyError::Busy => {
            state
                .metrics
                .stats
                .busy_bodies
                .fetch_add(1, Ordering::Relaxed);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::IngestBusy,
                error.to_string(),
            )
            .with_retry_after(1)
        }
        ingest::BodyError::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidBody,
            error.to_string(),
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidBody,
            error.to_string(),
        ),
    })?;
    let stats = &state.metrics.stats;
    if prepared.rejected > 0 {
        stats
            .rejected_lines
            .fetch_add(prepared.rejected as u64, Ordering::Relaxed);
        tracing::warn!(
            component = %identity.name,
            rejected = prepared.rejected,
            first = prepared.errors.first().map(|e| e.message.as_str()).unwrap_or_default(),
            "Refused lines of a metric push."
        );
    }
    if !prepared.events.is_empty() {
        // Stored before the batch is acknowledged; an event sent again is skipped by its uid.
        let events = std::mem::take(&mut prepared.events);
        let collector_id = identity.id;
        state
            .db
            .write(move |tx| {
                crate::db::events::insert(tx, collector_id, &events).map_err(db::DbError::from)
            })
            .await?;
    }
    if !prepared.neighbours.is_empty() {
        let reports = std::mem::take(&mut prepared.neighbours);
        state
            .db
            .write(move |tx| {
                let now = crate::clock::unix_secs();
                for report in &reports {
                    crate::db::topology::store_report(tx, report, now)?;
                }
                Ok::<_, db::DbError>(())
            })
            .await?;
    }
    if !prepared.samples.is_empty() || batch_id.is_some() {
        let committed = state
            .backend
            .write(Batch {
                component_id: identity.id,
                batch_id,
                lines: prepared.accepted,
                samples: prepared.samples,
            })
            .await
            .map_err(|error| match error {
                WriteError::Full(reason) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::RemoteWriteBacklogFull,
                    reason,
                ),
                WriteError::Busy(reason) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::IngestBusy,
                    reason,
                )
                .with_retry_after(5),
                WriteError::Store(error) => error.into(),
            })?;
        if let Committed::Limited(hit) = committed {
            stats
                .series_limited_samples
                .fetch_add(hit.samples as u64, Ordering::Relaxed);
            tracing::warn!(
                component = %identity.name,
                samples = hit.samples,
                limit = %hit.message,
                "Refused samples of new series past a limit."
            );
            return Err(ApiError::bad_request(
                ErrorCode::SeriesLimit,
                format!(
                    "{} samples of new series refused: {}; the other samples were stored",
                    hit.samples, hit.message
                ),
            )
            .with_details(json!({ "refused_samples": hit.samples })));
        }
    }
    if prepared.rejected > 0 {
        let details = IngestRejection {
            accepted: prepared.accepted,
            rejected: prepared.rejected,
            errors: prepared.errors,
        };
        let first = details
            .errors
            .first()
            .map(|e| format!("line {}: {}", e.line, e.message))
            .unwrap_or_default();
        return Err(ApiError::bad_request(
            ErrorCode::InvalidLines,
            format!(
                "{} of {} lines refused ({first}); the other {} were stored",
                details.rejected,
                details.accepted + details.rejected,
                details.accepted
            ),
        )
        .with_details(json!(details)));
    }
    Ok(StatusCode::NO_CONTENT)
}
