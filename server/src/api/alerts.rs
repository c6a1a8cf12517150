//! Alerting resources: `/alerts` (everyone reads; operators acknowledge), `/alert-definitions`
//! (everyone reads; operators create, tune, disable, delete custom rules), `/maintenance-windows`
//! (everyone reads; operators create and end), `/notification-channels` (operators read, admins
//! change and test; secrets never answered), and `/nodes/{id}/health`.

use plantwatch_shared::api::AuditAction;
use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use plantwatch_shared::Secret;
use plantwatch_shared::api::{
    AckRequest, AckSkipped, Alert, AlertDetail, AlertQuery, AlertRule, BulkAckAnswer,
    BulkAckRequest, Channel, ChannelKind, ChannelSpec, ChannelTest, HealthChange, ListResponse,
    MaintenanceSpec, MaintenanceWindow, Notification, Recurrence, RulePreviewRow, RuleSpec,
    Severity,
};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{AdminRole, ApiJson, ApiPath, ApiQuery, Authed, OperatorRole};
use super::page_bounds;
use crate::alerting::evaluate::{Evaluator, Inputs};
use crate::alerting::maintenance::{self, WindowRow};
use crate::alerting::{notify as sender, rules};
use crate::db::{self, alerts as store, audit, notify};
use crate::state::AppState;
use crate::vault::channel_aad;
use plantwatch_shared::api::ErrorCode;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list))
        .route("/alerts/{id}", get(read))
        .route("/alerts/ack", post(ack_many))
        .route("/alerts/{id}/ack", post(ack))
        .route("/alerts/{id}/unack", post(unack))
        .route("/alerts/{id}/ignore", post(ignore))
        .route("/ignored-series", get(list_ignored))
        .route("/ignored-series/{id}", axum::routing::delete(unignore))
        .route("/alert-definitions", get(list_rules).post(create_rule))
        .route("/alert-definitions/preview", post(preview))
        .route(
            "/alert-definitions/{id}",
            get(read_rule).put(update_rule).delete(delete_rule),
        )
        .route(
            "/maintenance-windows",
            get(list_windows).post(create_window),
        )
        .route("/maintenance-windows/{id}", get(read_window))
        .route("/maintenance-windows/{id}/end", post(end_window))
        .route(
            "/notification-channels",
            get(list_channels).post(create_channel),
        )
        .route(
            "/notification-channels/{id}",
            get(read_channel).put(update_channel).delete(delete_channel),
        )
        .route("/notification-channels/{id}/test", post(test_channel))
        .route("/nodes/{id}/health", get(health))
}

const MAX_COMMENT_LEN: usize = 1_000;

async fn list(
    State(state): State<AppState>,
    _auth: Authed,
    ApiQuery(query): ApiQuery<AlertQuery>,
) -> ApiResult<Json<ListResponse<Alert>>> {
    if let Some(s) = query.state.as_deref()
        && !matches!(s, "active" | "pending" | "firing" | "resolved" | "all")
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidState,
            "state must be active, pending, firing, resolved or all",
        ));
    }
    let (limit, offset) = page_bounds(query.limit, query.offset)?;
    let (items, total) = state
        .db
        .call(move |conn| {
            store::list_alerts(conn, &query, limit, offset).map_err(db::DbError::from)
        })
        .await?;
    Ok(Json(ListResponse { items, total }))
}

fn alert_not_found(id: i64) -> ApiError {
    ApiError::not_found(ErrorCode::AlertNotFound, format!("there is no alert {id}"))
}

async fn read(
    State(state): State<AppState>,
    _auth: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<AlertDetail>> {
    state
        .db
        .call(move |conn| -> ApiResult<_> {
            let alert = store::get_alert(conn, id)?.ok_or_else(|| alert_not_found(id))?;
            Ok(AlertDetail {
                alert,
                events: store::events(conn, id)?,
                deliveries: notify::deliveries(conn, id)?,
            })
        })
        .await
        .map(Json)
}

async fn ack(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<AckRequest>,
) -> ApiResult<Json<Alert>> {
    set_ack(state, auth, id, true, request.comment).await
}

async fn unack(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Alert>> {
    set_ack(state, auth, id, false, None).await
}

/// A comment trimmed (`None` when empty), refused when too long.
fn checked_comment(comment: Option<String>) -> ApiResult<Option<String>> {
    let comment = comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if comment.as_ref().is_some_and(|c| c.len() > MAX_COMMENT_LEN) {
        return Err(ApiError::bad_request(
            ErrorCode::CommentTooLong,
            format!("a comment is at most {MAX_COMMENT_LEN} characters"),
        ));
    }
    Ok(comment)
}

async fn set_ack(
    state: AppState,
    auth: Authed<OperatorRole>,
    id: i64,
    acknowledge: bool,
    comment: Option<String>,
) -> ApiResult<Json<Alert>> {
    let comment = checked_comment(comment)?;
    let actor = auth.actor();
    state
        .db
        .write(move |tx| {
            let now = crate::clock::unix_secs();
            ack_in(tx, id, acknowledge, comment.as_deref(), &actor, now)
        })
        .await
        .map(Json)
}

/// Acknowledges alert `id` (or takes it back) inside `tx`: its history and the audit log say
/// who and why.
fn ack_in(
    tx: &rusqlite::Connection,
    id: i64,
    acknowledge: bool,
    comment: Option<&str>,
    actor: &crate::db::audit::Actor,
    now: i64,
) -> ApiResult<Alert> {
    let alert = store::get_alert(tx, id)?.ok_or_else(|| alert_not_found(id))?;
    let who = acknowledge.then_some(actor.name.as_str());
    if !store::set_ack(tx, id, who, comment, now)? {
        return Err(ApiError::conflict(
            ErrorCode::AlertResolved,
            format!("alert {id} is resolved ({})", alert.rule),
        ));
    }
    let event = if acknowledge { "acked" } else { "unacked" };
    store::add_event(tx, id, now, event, None, None, Some(&actor.name), comment)?;
    audit::record(
        tx,
        actor,
        if acknowledge {
            AuditAction::AlertAck
        } else {
            AuditAction::AlertUnack
        },
        Some(&format!("alert:{id}")),
        comment.map(|c| json!({ "comment": c })).as_ref(),
        now,
    )?;
    store::get_alert(tx, id)?.ok_or_else(|| alert_not_found(id))
}

/// Most alerts one request acknowledges.
const MAX_BULK_ACK: usize = 10_000;

/// `POST /alerts/ack` (operators): many alerts acknowledged with one comment in one
/// transaction; those resolved or gone meanwhile are skipped and named, not an error.
async fn ack_many(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiJson(request): ApiJson<BulkAckRequest>,
) -> ApiResult<Json<BulkAckAnswer>> {
    if request.ids.is_empty() || request.ids.len() > MAX_BULK_ACK {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidBody,
            format!(
                "give 1 to {MAX_BULK_ACK} alert ids, not {}",
                request.ids.len()
            ),
        ));
    }
    let comment = checked_comment(request.comment)?;
    let actor = auth.actor();
    let answer = state
        .db
        .write(move |tx| -> ApiResult<BulkAckAnswer> {
            let now = crate::clock::unix_secs();
            let mut answer = BulkAckAnswer::default();
            for id in request.ids {
                match ack_in(tx, id, true, comment.as_deref(), &actor, now) {
                    Ok(alert) => answer.acked.push(alert),
                    Err(error) if error.status.is_client_error() => {
                        answer.skipped.push(AckSkipped {
                            id,
                            reason: error.message,
                        })
                    }
                    Err(error) => return Err(error),
                }
            }
            Ok(answer)
        })
        .await?;
    Ok(Json(answer))
}

/// Tells the alert's rule to leave its series alone on its node (an unused port, a scratch
/// mount); the alert resolves at the next evaluation.
async fn ignore(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<AckRequest>,
) -> ApiResult<Json<plantwatch_shared::api::IgnoredSeries>> {
    let comment = checked_comment(request.comment)?;
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<_> {
            let now = crate::clock::unix_secs();
            let alert = store::get_alert(tx, id)?.ok_or_else(|| alert_not_found(id))?;
            let Some(ignored) =
                store::ignore_series_of(tx, id, &actor.name, comment.as_deref(), now)?
            else {
                return Err(ApiError::conflict(
                    ErrorCode::NotASeries,
                    format!(
                        "alert {id} ({}) is about a whole node or collector, not one series: \
                         disable or scope the rule instead",
                        alert.rule
                    ),
                ));
            };
            store::add_event(
                tx,
                id,
                now,
                "ignored",
                None,
                None,
                Some(&actor.name),
                comment.as_deref(),
            )?;
            audit::record(
                tx,
                &actor,
                AuditAction::AlertIgnoreSeries,
                Some(&format!("alert:{id}")),
                Some(&json!({ "rule": alert.rule, "series": alert.series, "comment": comment })),
                now,
            )?;
            store::list_ignored(tx)?
                .into_iter()
                .find(|i| i.id == ignored)
                .ok_or_else(|| alert_not_found(id))
        })
        .await
        .map(Json)
}

async fn list_ignored(
    State(state): State<AppState>,
    _auth: Authed,
) -> ApiResult<Json<ListResponse<plantwatch_shared::api::IgnoredSeries>>> {
    let items = state
        .db
        .call(|conn| store::list_ignored(conn).map_err(db::DbError::from))
        .await?;
    let total = items.len() as u64;
    Ok(Json(ListResponse { items, total }))
}

async fn unignore(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<()> {
            if !store::unignore(tx, id)? {
                return Err(ApiError::not_found(
                    ErrorCode::IgnoredSeriesNotFound,
                    format!("there is no ignored series {id}"),
                ));
            }
            let target = format!("ignored_series:{id}");
            audit::record(
                tx,
                &actor,
                AuditAction::AlertUnignoreSeries,
                Some(&target),
                None,
                crate::clock::unix_secs(),
            )?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn rule_not_found(id: i64) -> ApiError {
    ApiError::not_found(
        ErrorCode::RuleNotFound,
        format!("there is no alert rule {id}"),
    )
}

async fn list_rules(
    State(state): State<AppState>,
    _auth: Authed,
) -> ApiResult<Json<ListResponse<AlertRule>>> {
    let items = state
        .db
        .call(|conn| store::list_rules(conn).map_err(db::DbError::from))
        .await?;
    let total = items.len() as u64;
    Ok(Json(ListResponse { items, total }))
}

async fn read_rule(
    State(state): State<AppState>,
    _auth: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<AlertRule>> {
    state
        .db
        .call(move |conn| store::get_rule(conn, id).map_err(db::DbError::from))
        .await?
        .map(Json)
        .ok_or_else(|| rule_not_found(id))
}

/// Checks `spec`: trap names may be the built-in ones or the templates' (read from `conn`).
fn check_rule(
    conn: &rusqlite::Connection,
    spec: &RuleSpec,
    builtin: Option<plantwatch_shared::api::BuiltinRule>,
) -> ApiResult<()> {
    let trap_names = if spec.event.is_some() {
        crate::templates::trap_names(conn)?
            .into_values()
            .map(|(name, _)| name.to_lowercase())
            .collect()
    } else {
        std::collections::HashSet::new()
    };
    match rules::problem(spec, builtin, &trap_names) {
        Some(problem) => Err(ApiError::bad_request(ErrorCode::InvalidRule, problem)),
        None => Ok(()),
    }
}

async fn create_rule(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> ApiResult<(StatusCode, Json<AlertRule>)> {
    let actor = auth.actor();
    let rule = state
        .db
        .write(move |tx| -> ApiResult<_> {
            check_rule(tx, &spec, None)?;
            let now = crate::clock::unix_secs();
            let id = store::insert_rule(tx, &spec, None, now)?;
            audit::record(
                tx,
                &actor,
                AuditAction::AlertRuleCreate,
                Some(&format!("alert_rule:{id}")),
                Some(&json!(spec)),
                now,
            )?;
            store::get_rule(tx, id)?.ok_or_else(|| rule_not_found(id))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

async fn update_rule(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> ApiResult<Json<AlertRule>> {
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<_> {
            let existing = store::get_rule(tx, id)?.ok_or_else(|| rule_not_found(id))?;
            let same_events = |a: &RuleSpec, b: &RuleSpec| match (&a.event, &b.event) {
                (Some(a), Some(b)) => a.on == b.on && a.clear == b.clear && a.key == b.key,
                (a, b) => a.is_none() && b.is_none(),
            };
            if existing.builtin.is_some()
                && (spec.name != existing.spec.name
                    || spec.metric != existing.spec.metric
                    || !same_events(&spec, &existing.spec))
            {
                return Err(ApiError::bad_request(
                    ErrorCode::BuiltinRule,
                    format!(
                        "{} is built in: its name, metric and events stay; tune its \
                         thresholds, window, severity, expiry, scope or disable it",
                        existing.spec.name
                    ),
                ));
            }
            check_rule(tx, &spec, existing.builtin)?;
            let now = crate::clock::unix_secs();
            store::update_rule(tx, id, &spec, now)?;
            audit::record(
                tx,
                &actor,
                AuditAction::AlertRuleUpdate,
                Some(&format!("alert_rule:{id}")),
                Some(&json!(spec)),
                now,
            )?;
            store::get_rule(tx, id)?.ok_or_else(|| rule_not_found(id))
        })
        .await
        .map(Json)
}

async fn delete_rule(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<_> {
            let existing = store::get_rule(tx, id)?.ok_or_else(|| rule_not_found(id))?;
            if existing.builtin.is_some() {
                return Err(ApiError::bad_request(
                    ErrorCode::BuiltinRule,
                    format!(
                        "{} is built in and cannot be deleted; disable it instead",
                        existing.spec.name
                    ),
                ));
            }
            store::delete_rule(tx, id)?;
            audit::record(
                tx,
                &actor,
                AuditAction::AlertRuleDelete,
                Some(&format!("alert_rule:{id}")),
                Some(&json!({ "name": existing.spec.name })),
                crate::clock::unix_secs(),
            )?;
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}

/// Which nodes a rule (saved or not) matches now, with their current values: what the rule
/// editor shows before saving.
async fn preview(
    State(state): State<AppState>,
    _auth: Authed,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> ApiResult<Json<ListResponse<RulePreviewRow>>> {
    let (spec, nodes) = state
        .db
        .call(move |conn| -> ApiResult<_> {
            check_rule(conn, &spec, None)?;
            Ok((spec, store::node_facts(conn)?))
        })
        .await?;
    let names: HashMap<i64, String> = nodes.iter().map(|n| (n.id, n.name.clone())).collect();
    let now = crate::clock::unix_secs();
    let inputs = Inputs {
        now,
        rules: vec![AlertRule {
            id: 0,
            spec: RuleSpec { for_s: 0, ..spec },
            builtin: None,
            created_at: db::to_time(now),
            updated_at: db::to_time(now),
        }],
        nodes,
        preview: true,
        ..Inputs::default()
    };
    let judgement = Evaluator::default().judge(&inputs, &state.metrics.hot);
    let mut items: Vec<RulePreviewRow> = judgement
        .verdicts
        .into_iter()
        .filter_map(|(key, verdict)| {
            let node_id = key.node_id?;
            Some(RulePreviewRow {
                node_id,
                node: names.get(&node_id).cloned().unwrap_or_default(),
                series: key.series,
                value: verdict.value,
                severity: verdict.severity,
            })
        })
        .collect();
    items.sort_by(|a, b| (b.severity, &a.node, &a.series).cmp(&(a.severity, &b.node, &b.series)));
    items.truncate(1_000);
    let total = items.len() as u64;
    Ok(Json(ListResponse { items, total }))
}

fn window_view(row: WindowRow, now: i64, tz: &jiff::tz::TimeZone) -> MaintenanceWindow {
    let next = maintenance::occurrence(&row, now, tz);
    MaintenanceWindow {
        id: row.id,
        name: row.name,
        scope: row.scope,
        target: row.target,
        starts_at: db::to_time(row.starts_at),
        ends_at: db::to_time(row.ends_at),
        recurrence: row.recurrence,
        active: next.is_some_and(|(start, _)| start <= now),
        next_start: next.map(|(s, _)| db::to_time(s)),
        next_end: next.map(|(_, e)| db::to_time(e)),
        ended_at: row.ended_at.map(db::to_time),
        created_by: row.created_by,
    }
}

fn server_tz(state: &AppState) -> jiff::tz::TimeZone {
    maintenance::time_zone(&state.config.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
}

async fn list_windows(
    State(state): State<AppState>,
    _auth: Authed,
) -> ApiResult<Json<ListResponse<MaintenanceWindow>>> {
    let rows = state
        .db
        .call(|conn| notify::windows(conn).map_err(db::DbError::from))
        .await?;
    let (now, tz) = (crate::clock::unix_secs(), server_tz(&state));
    let mut items: Vec<_> = rows.into_iter().map(|r| window_view(r, now, &tz)).collect();
    // Under way first, then upcoming, then over.
    items.sort_by_key(|w| (!w.active, w.next_start.is_none()));
    let total = items.len() as u64;
    Ok(Json(ListResponse { items, total }))
}

fn window_not_found(id: i64) -> ApiError {
    ApiError::not_found(
        ErrorCode::MaintenanceWindowNotFound,
        format!("there is no maintenance window {id}"),
    )
}

async fn read_window(
    State(state): State<AppState>,
    _auth: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<MaintenanceWindow>> {
    let row = state
        .db
        .call(move |conn| notify::get_window(conn, id).map_err(db::DbError::from))
        .await?
        .ok_or_else(|| window_not_found(id))?;
    Ok(Json(window_view(
        row,
        crate::clock::unix_secs(),
        &server_tz(&state),
    )))
}

fn saturate(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

/// Longest maintenance occurrence: 31 days.
const MAX_WINDOW_S: i64 = 31 * 86_400;

async fn create_window(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiJson(spec): ApiJson<MaintenanceSpec>,
) -> ApiResult<(StatusCode, Json<MaintenanceWindow>)> {
    let bad = |message: String| ApiError::bad_request(ErrorCode::InvalidMaintenanceWindow, message);
    let name = spec.name.trim().to_owned();
    if name.is_empty() || name.len() > 128 {
        return Err(bad("name must be 1 to 128 characters".into()));
    }
    let now = crate::clock::unix_secs();
    let (starts_at, ends_at) = match (spec.duration_s, spec.starts_at, spec.ends_at) {
        (Some(duration), None, None) => (now, now.saturating_add(saturate(duration))),
        (Some(duration), Some(start), None) => {
            let start = start.unix_timestamp();
            (start, start.saturating_add(saturate(duration)))
        }
        (None, Some(start), Some(end)) => (start.unix_timestamp(), end.unix_timestamp()),
        _ => {
            return Err(bad(
                "give duration_s (from now, or from starts_at), or starts_at and ends_at".into(),
            ));
        }
    };
    if ends_at <= starts_at || ends_at - starts_at > MAX_WINDOW_S {
        return Err(bad("a window lasts between 1 second and 31 days".into()));
    }
    if spec.recurrence == Recurrence::None && ends_at <= now {
        return Err(bad("that window is already over".into()));
    }
    if spec.recurrence == Recurrence::Weekly && ends_at - starts_at >= 7 * 86_400 {
        return Err(bad("a weekly window must be shorter than a week".into()));
    }
    let target = spec.target.trim().to_owned();
    let actor = auth.actor();
    let tz = server_tz(&state);
    let row = state
        .db
        .write(move |tx| -> ApiResult<_> {
            // The target must exist now (a tag only needs to be non-empty).
            let known = match spec.scope {
                plantwatch_shared::api::MaintenanceScope::Node => {
                    db::nodes::id_by_name(tx, &target)?.is_some()
                }
                plantwatch_shared::api::MaintenanceScope::Tag => !target.is_empty(),
                plantwatch_shared::api::MaintenanceScope::Collector => db::components::name_taken(
                    tx,
                    plantwatch_shared::api::ComponentKind::Collector,
                    &target,
                    None,
                )?,
            };
            if !known {
                return Err(ApiError::bad_request(
                    ErrorCode::UnknownTarget,
                    format!("there is no {} '{target}'", spec.scope),
                ));
            }
            let mut row = WindowRow {
                id: 0,
                name,
                scope: spec.scope,
                target,
                starts_at,
                ends_at,
                recurrence: spec.recurrence,
                ended_at: None,
                created_by: Some(actor.name.clone()),
            };
            row.id = notify::insert_window(tx, &row, now)?;
            audit::record(
                tx,
                &actor,
                AuditAction::MaintenanceCreate,
                Some(&format!("maintenance_window:{}", row.id)),
                Some(&json!({
                    "name": row.name, "scope": row.scope, "target": row.target,
                    "starts_at": starts_at, "ends_at": ends_at, "recurrence": row.recurrence,
                })),
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(window_view(row, now, &tz))))
}

async fn end_window(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<MaintenanceWindow>> {
    let actor = auth.actor();
    let now = crate::clock::unix_secs();
    let row = state
        .db
        .write(move |tx| -> ApiResult<_> {
            notify::get_window(tx, id)?.ok_or_else(|| window_not_found(id))?;
            if notify::end_window(tx, id, now)? == 0 {
                return Err(ApiError::conflict(
                    ErrorCode::MaintenanceWindowEnded,
                    format!("maintenance window {id} was already ended"),
                ));
            }
            audit::record(
                tx,
                &actor,
                AuditAction::MaintenanceEnd,
                Some(&format!("maintenance_window:{id}")),
                None,
                now,
            )?;
            notify::get_window(tx, id)?.ok_or_else(|| window_not_found(id))
        })
        .await?;
    Ok(Json(window_view(row, now, &server_tz(&state))))
}

fn channel_not_found(id: i64) -> ApiError {
    ApiError::not_found(
        ErrorCode::ChannelNotFound,
        format!("there is no notification channel {id}"),
    )
}

async fn list_channels(
    State(state): State<AppState>,
    _auth: Authed<OperatorRole>,
) -> ApiResult<Json<ListResponse<Channel>>> {
    let items: Vec<Channel> = state
        .db
        .call(|conn| notify::list_channels(conn).map_err(db::DbError::from))
        .await?
        .into_iter()
        .map(|row| row.channel)
        .collect();
    let total = items.len() as u64;
    Ok(Json(ListResponse { items, total }))
}

async fn read_channel(
    State(state): State<AppState>,
    _auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Channel>> {
    state
        .db
        .call(move |conn| notify::get_channel(conn, id).map_err(db::DbError::from))
        .await?
        .map(|row| Json(row.channel))
        .ok_or_else(|| channel_not_found(id))
}

fn check_channel(spec: &ChannelSpec) -> ApiResult<()> {
    let bad = |m: String| Err(ApiError::bad_request(ErrorCode::InvalidChannel, m));
    let name = spec.name.trim();
    if name.is_empty() || name.len() > 64 {
        return bad("name must be 1 to 64 characters".into());
    }
    if let Some(problem) = sender::settings_problem(spec.kind, &spec.settings) {
        return bad(problem);
    }
    let allowed: &[&str] = match spec.kind {
        ChannelKind::Webhook => &["hmac_key"],
        ChannelKind::Email => &["password"],
        ChannelKind::Syslog => &[],
    };
    if let Some(field) = spec.secrets.keys().find(|k| !allowed.contains(&k.as_str())) {
        return bad(format!(
            "a channel of kind {} has no secret '{field}' (it takes: {})",
            spec.kind,
            if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            }
        ));
    }
    if spec.tags.len() > 64 || spec.collectors.len() > 64 || spec.settings.to.len() > 64 {
        return bad("at most 64 tags, collectors and recipients".into());
    }
    Ok(())
}

fn channel_fields(spec: &ChannelSpec) -> notify::ChannelFields<'_> {
    notify::ChannelFields {
        name: spec.name.trim(),
        kind: spec.kind,
        settings: &spec.settings,
        min_severity: spec.min_severity,
        tags: &spec.tags,
        collectors: &spec.collectors,
        repeat_s: spec.repeat_s,
        send_resolved: spec.send_resolved,
        enabled: spec.enabled,
    }
}

fn secret_names(secrets: &BTreeMap<String, Secret>) -> Vec<&str> {
    secrets.keys().map(String::as_str).collect()
}

async fn create_channel(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiJson(spec): ApiJson<ChannelSpec>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    check_channel(&spec)?;
    let actor = auth.actor();
    let vault = state.vault.clone();
    let channel = state
        .db
        .write(move |tx| -> ApiResult<_> {
            let now = crate::clock::unix_secs();
            let id = notify::insert_channel(tx, &channel_fields(&spec), now)?;
            let sealed = vault
                .seal_all(&spec.secrets, |field| channel_aad(id, field))
                .map_err(ApiError::internal)?;
            notify::set_channel_secrets(tx, id, &sealed)?;
            audit::record(
                tx,
                &actor,
                AuditAction::ChannelCreate,
                Some(&format!("channel:{id}")),
                Some(&json!({ "name": spec.name, "kind": spec.kind, "secrets": secret_names(&spec.secrets) })),
                now,
            )?;
            notify::get_channel(tx, id)?
                .map(|row| row.channel)
                .ok_or_else(|| channel_not_found(id))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(channel)))
}

async fn update_channel(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(spec): ApiJson<ChannelSpec>,
) -> ApiResult<Json<Channel>> {
    check_channel(&spec)?;
    let actor = auth.actor();
    let vault = state.vault.clone();
    state
        .db
        .write(move |tx| -> ApiResult<_> {
            let row = notify::get_channel(tx, id)?.ok_or_else(|| channel_not_found(id))?;
            let now = crate::clock::unix_secs();
            notify::update_channel(tx, id, &channel_fields(&spec), now)?;
            if !spec.secrets.is_empty() {
                let mut secrets = vault
                    .open_all(&row.sealed_secrets, |field| channel_aad(id, field))
                    .map_err(ApiError::internal)?;
                secrets.extend(spec.secrets.clone());
                let sealed = vault
                    .seal_all(&secrets, |field| channel_aad(id, field))
                    .map_err(ApiError::internal)?;
                notify::set_channel_secrets(tx, id, &sealed)?;
            }
            audit::record(
                tx,
                &actor,
                AuditAction::ChannelUpdate,
                Some(&format!("channel:{id}")),
                Some(&json!({ "name": spec.name, "kind": spec.kind, "secrets": secret_names(&spec.secrets) })),
                now,
            )?;
            notify::get_channel(tx, id)?
                .map(|row| row.channel)
                .ok_or_else(|| channel_not_found(id))
        })
        .await
        .map(Json)
}

async fn delete_channel(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<_> {
            let row = notify::get_channel(tx, id)?.ok_or_else(|| channel_not_found(id))?;
            notify::delete_channel(tx, id)?;
            audit::record(
                tx,
                &actor,
                AuditAction::ChannelDelete,
                Some(&format!("channel:{id}")),
                Some(&json!({ "name": row.channel.name })),
                crate::clock::unix_secs(),
            )?;
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}

/// Sends a test notification through the channel now and says whether it was delivered.
async fn test_channel(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ChannelTest>> {
    let row = state
        .db
        .call(move |conn| notify::get_channel(conn, id).map_err(db::DbError::from))
        .await?
        .ok_or_else(|| channel_not_found(id))?;
    let (channel, secrets) = sender::open_channel(&state.vault, &row)
        .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
    let notification = Notification {
        event: "test".into(),
        alert_id: None,
        rule: "test".into(),
        severity: Severity::Warning,
        node: None,
        address: None,
        collector: None,
        series: String::new(),
        value: None,
        message: format!(
            "Test notification from plantwatch, sent by {} to channel {}.",
            auth.user.username, channel.name
        ),
        affected_nodes: None,
        at: db::to_time(crate::clock::unix_secs()),
        also: Vec::new(),
    };
    let outcome = sender::deliver(&channel, &secrets, &notification).await;
    let actor = auth.actor();
    let delivered = outcome.is_ok();
    state
        .db
        .write(move |tx| -> ApiResult<_> {
            audit::record(
                tx,
                &actor,
                AuditAction::ChannelTest,
                Some(&format!("channel:{id}")),
                Some(&json!({ "delivered": delivered })),
                crate::clock::unix_secs(),
            )?;
            Ok(())
        })
        .await?;
    Ok(Json(ChannelTest {
        delivered,
        error: outcome.err(),
    }))
}

async fn health(
    State(state): State<AppState>,
    _auth: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ListResponse<HealthChange>>> {
    let items = state
        .db
        .call(move |conn| -> ApiResult<_> {
            db::nodes::get(conn, id)?.ok_or_else(|| {
                ApiError::not_found(ErrorCode::NodeNotFound, format!("there is no node {id}"))
            })?;
            Ok(store::health_changes(conn, id)?)
        })
        .await?;
    let total = items.len() as u64;
    Ok(Json(ListResponse { items, total }))
}
