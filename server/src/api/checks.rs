//! Service checks of a node (`/nodes/{id}/checks`), the certificates `tls` checks found
//! (`GET /certificates`), and the collectors' reports of them
//! (`POST /remote-collectors/{id}/certificates`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use plantwatch_shared::api::{
    AuditAction, CertificateFinding, CertificateQuery, CertificateReport, Check, CheckSpec,
    ErrorCode, ListResponse, MAX_CHECK_TEXT, MAX_CHECKS_PER_NODE,
};
use rusqlite::Connection;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{AnyRole, ApiJson, ApiPath, Authed, ComponentAuth, OperatorRole};
use crate::db::{audit, checks, config_dirty, nodes};
use crate::state::AppState;

/// Most findings in one report.
pub const MAX_FINDINGS_PER_REPORT: usize = 1_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/nodes/{id}/checks", get(list).post(create))
        .route("/nodes/{id}/checks/{check_id}", put(replace).delete(remove))
        .route("/certificates", get(certificates))
        .route("/remote-collectors/{id}/certificates", post(report))
}

fn node_name(conn: &Connection, id: i64) -> ApiResult<(String, Option<i64>)> {
    let node = super::nodes::existing(conn, id)?;
    Ok((node.name, node.collector_id))
}

fn invalid(problem: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidCheck, problem)
}

fn checked(spec: CheckSpec) -> ApiResult<CheckSpec> {
    match spec.problem() {
        Some(problem) => Err(invalid(problem)),
        None => Ok(spec),
    }
}

fn not_found(node: &str, id: i64) -> ApiError {
    ApiError::not_found(
        ErrorCode::CheckNotFound,
        format!("{node} has no check with id {id}"),
    )
}

async fn list(
    State(state): State<AppState>,
    _auth: Authed<AnyRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ListResponse<Check>>> {
    state
        .db
        .call(move |conn| {
            node_name(conn, id)?;
            let items = checks::of_node(conn, id)?;
            Ok(Json(ListResponse {
                total: items.len() as u64,
                items,
            }))
        })
        .await
}

/// The change's audit row, and its collector told to fetch a new configuration.
fn changed(
    tx: &Connection,
    actor: &audit::Actor,
    action: AuditAction,
    (node_id, node, collector_id): (i64, &str, Option<i64>),
    spec: &CheckSpec,
) -> ApiResult<()> {
    let now = crate::clock::unix_secs();
    nodes::touch(tx, node_id, now)?;
    config_dirty::mark(tx, [collector_id], "check", now)?;
    audit::record(
        tx,
        actor,
        action,
        Some(&format!("node:{node_id}")),
        Some(&json!({ "node": node, "check": spec.to_string() })),
        now,
    )?;
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(spec): ApiJson<CheckSpec>,
) -> ApiResult<(StatusCode, Json<Check>)> {
    let spec = checked(spec)?;
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<Check> {
            let (node, collector) = node_name(tx, id)?;
            let existing = checks::of_node(tx, id)?;
            if existing.len() >= MAX_CHECKS_PER_NODE {
                return Err(invalid(format!(
                    "{node} has {MAX_CHECKS_PER_NODE} checks, the most a node may have"
                )));
            }
            if existing
                .iter()
                .any(|c| c.spec.to_string() == spec.to_string())
            {
                return Err(ApiError::conflict(
                    ErrorCode::AlreadyExists,
                    format!("{node} already has the check {spec}"),
                ));
            }
            let check = checks::insert(tx, id, &spec, crate::clock::unix_secs())?;
            changed(
                tx,
                &actor,
                AuditAction::NodeAddCheck,
                (id, &node, collector),
                &spec,
            )?;
            Ok(check)
        })
        .await
        .map(|check| (StatusCode::CREATED, Json(check)))
}

async fn replace(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath((id, check_id)): ApiPath<(i64, i64)>,
    ApiJson(spec): ApiJson<CheckSpec>,
) -> ApiResult<Json<Check>> {
    let spec = checked(spec)?;
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<Check> {
            let (node, collector) = node_name(tx, id)?;
            if !checks::replace(tx, id, check_id, &spec)? {
                return Err(not_found(&node, check_id));
            }
            changed(
                tx,
                &actor,
                AuditAction::NodeUpdateCheck,
                (id, &node, collector),
                &spec,
            )?;
            checks::get(tx, id, check_id)?.ok_or_else(|| not_found(&node, check_id))
        })
        .await
        .map(Json)
}

async fn remove(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath((id, check_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<()> {
            let (node, collector) = node_name(tx, id)?;
            let check = checks::get(tx, id, check_id)?.ok_or_else(|| not_found(&node, check_id))?;
            checks::delete(tx, id, check_id)?;
            changed(
                tx,
                &actor,
                AuditAction::NodeRemoveCheck,
                (id, &node, collector),
                &check.spec,
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn certificates(
    State(state): State<AppState>,
    _auth: Authed<AnyRole>,
    Query(query): Query<CertificateQuery>,
) -> ApiResult<Json<ListResponse<CertificateFinding>>> {
    if query
        .expiring_days
        .is_some_and(|d| !(0..=36_500).contains(&d))
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "expiring_days must be 0-36500",
        ));
    }
    let before = query
        .expiring_days
        .map(|days| crate::clock::unix_secs() + days * 86_400);
    state
        .db
        .call(move |conn| {
            let items = checks::certificates(conn, before, query.node_id)?;
            Ok(Json(ListResponse {
                total: items.len() as u64,
                items,
            }))
        })
        .await
}

/// A collector's findings: each for a `tls` check of one of its own nodes, else refused whole.
async fn report(
    State(state): State<AppState>,
    auth: ComponentAuth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(report): ApiJson<CertificateReport>,
) -> ApiResult<StatusCode> {
    super::remote::own_collector(&auth, id)?;
    let bad = |problem: String| ApiError::bad_request(ErrorCode::InvalidFindings, problem);
    if report.findings.len() > MAX_FINDINGS_PER_REPORT {
        return Err(bad(format!(
            "a report carries at most {MAX_FINDINGS_PER_REPORT} findings"
        )));
    }
    for finding in &report.findings {
        let texts = [
            &finding.server_name,
            &finding.subject,
            &finding.issuer,
            &finding.signature_algorithm,
            &finding.key,
            &finding.fingerprint,
        ];
        let long = texts.iter().any(|t| t.len() > 4 * MAX_CHECK_TEXT)
            || finding.sans.len() > 500
            || finding.sans.iter().any(|s| s.len() > MAX_CHECK_TEXT)
            || [&finding.error, &finding.trust_problem, &finding.tls_version]
                .into_iter()
                .flatten()
                .any(|t| t.len() > 4 * MAX_CHECK_TEXT);
        if long {
            return Err(bad(format!(
                "check {}: a text of the finding is too long",
                finding.check_id
            )));
        }
    }
    state
        .db
        .write(move |tx| -> ApiResult<()> {
            for mut finding in report.findings {
                let Some((node_id, node, spec)) =
                    checks::tls_check_of_collector(tx, id, finding.check_id)?
                else {
                    return Err(bad(format!(
                        "check {} is no tls check of this collector's nodes",
                        finding.check_id
                    )));
                };
                finding.node_id = node_id;
                finding.node = node;
                finding.port = spec.port();
                checks::record_finding(tx, &finding)?;
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
