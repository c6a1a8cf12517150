//! Discovery routes: scan jobs and the inbox for the console and scripts (session, operator to
//! change anything), and the two routes a collector works with (API key): claiming a job and
//! streaming its results.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use plantwatch_shared::api::AuditAction;
use plantwatch_shared::api::{
    AddressSet, BatchAck, Claim, ClaimedJob, Device, DeviceImport, DeviceQuery, DeviceSelection,
    Dismissed, Found, Job, JobQuery, JobSpec, ListResponse, MAX_BATCH_DEVICES, MAX_JOB_CREDENTIALS,
    MAX_TARGET_ENTRIES, ResultBatch,
};
use plantwatch_shared::rules::name_problem;
use rusqlite::Connection;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, Authed, ComponentAuth, OperatorRole};
use super::remote::{no_store, own_collector};
use super::{page_bounds, sort_order};
use crate::db::{audit, credentials, discovery};
use crate::inventory::Catalog;
use crate::state::AppState;
use plantwatch_shared::api::ErrorCode;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/discovery/jobs", get(list).post(create))
        .route("/discovery/jobs/{id}", get(read))
        .route("/discovery/jobs/{id}/cancel", post(cancel))
        .route("/discovery/jobs/{id}/devices", get(devices))
        .route("/discovery/jobs/{id}/import", post(import))
        .route("/discovery/jobs/{id}/dismiss", post(dismiss))
        .route("/remote-collectors/{id}/discovery/claim", post(claim))
        .route("/discovery/jobs/{id}/results", post(results))
}

/// Longest job name and longest text field of a result.
const MAX_JOB_NAME_LEN: usize = 255;
const MAX_FIELD_LEN: usize = 1_024;
/// Shortest schedule: a scan every minute at most.
const MIN_EVERY_S: u32 = 60;

fn invalid(code: ErrorCode, field: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message).with_details(json!({ "field": field }))
}

fn job_not_found(id: i64) -> ApiError {
    ApiError::not_found(
        ErrorCode::JobNotFound,
        format!("there is no discovery job {id}"),
    )
}

fn existing(conn: &Connection, id: i64) -> ApiResult<Job> {
    discovery::job(conn, id)?.ok_or_else(|| job_not_found(id))
}

/// Checks a job document and resolves its names; returns the row to insert.
fn checked(
    conn: &Connection,
    spec: &JobSpec,
    user_id: i64,
    local_discovery: bool,
    admin: bool,
) -> ApiResult<discovery::NewJob> {
    if spec.targets.is_empty() {
        return Err(invalid(
            ErrorCode::InvalidTargets,
            "targets",
            "give at least one target",
        ));
    }
    if spec.targets.len() + spec.exclusions.len() > MAX_TARGET_ENTRIES {
        return Err(invalid(
            ErrorCode::InvalidTargets,
            "targets",
            format!("at most {MAX_TARGET_ENTRIES} target and exclusion entries"),
        ));
    }
    let set = AddressSet::parse(&spec.targets, &spec.exclusions).map_err(|e| {
        ApiError::bad_request(ErrorCode::InvalidTargets, format!("target {e}"))
            .with_details(json!({ "field": "targets", "entry": e.entry }))
    })?;
    if let Some(problem) = set.size_problem(spec.force) {
        return Err(ApiError::bad_request(ErrorCode::TooManyAddresses, problem)
            .with_details(json!({ "field": "targets", "addresses": set.len() })));
    }
    if let Some(problem) = spec.options.problem() {
        return Err(invalid(ErrorCode::InvalidOptions, "options", problem));
    }
    let name = match spec.name.as_deref().map(str::trim) {
        Some(name) => name.to_owned(),
        None => spec.targets[0]
            .trim()
            .chars()
            .take(MAX_JOB_NAME_LEN)
            .collect(),
    };
    if let Some(problem) = name_problem(&name, MAX_JOB_NAME_LEN) {
        return Err(invalid(ErrorCode::InvalidName, "name", problem));
    }
    if let Some(every) = spec.every_s
        && every < MIN_EVERY_S
    {
        return Err(invalid(
            ErrorCode::InvalidSchedule,
            "every_s",
            format!("a scan repeats every {MIN_EVERY_S} s at the most often"),
        ));
    }
    let catalog = Catalog::load(conn)?;
    let collector_id = match spec.collector.as_deref() {
        Some(name) => catalog
            .collector(name)
            .map_err(|message| invalid(ErrorCode::UnknownCollector, "collector", message))?,
        None => catalog.local().ok_or_else(|| {
            invalid(
                ErrorCode::UnknownCollector,
                "collector",
                "the server has no local collector yet; name one",
            )
        })?,
    };
    if !local_discovery && catalog.local() == Some(collector_id) {
        return Err(invalid(
            ErrorCode::LocalDiscoveryOff,
            "collector",
            "this server does not scan networks itself (local_discovery = false); name a remote collector",
        ));
    }
    if spec.credentials.len() > MAX_JOB_CREDENTIALS {
        return Err(invalid(
            ErrorCode::InvalidCredentials,
            "credentials",
            format!("at most {MAX_JOB_CREDENTIALS} credentials per job"),
        ));
    }
    let mut credential_ids = Vec::with_capacity(spec.credentials.len());
    for name in &spec.credentials {
        let id = catalog
            .credential(name)
            .map_err(|message| invalid(ErrorCode::UnknownCredential, "credentials", message))?;
        let row = credentials::get(conn, id)?.ok_or_else(|| {
            invalid(
                ErrorCode::UnknownCredential,
                "credentials",
                format!("no credential {name:?}"),
            )
        })?;
        if !row.kind.is_snmp() {
            return Err(invalid(
                ErrorCode::InvalidCredentials,
                "credentials",
                format!(
                    "{name:?} is a {} credential; discovery tries SNMP credentials",
                    row.kind
                ),
            ));
        }
        // The same rule as attaching: a credential without networks is an admin's to use;
        // one with networks is only ever tried inside them (the collector checks each address).
        if row.networks.is_empty() && !admin {
            return Err(ApiError::forbidden(format!(
                "credential {name:?} has no networks: only an admin may scan with it (or an \
                 admin gives it networks)"
            ))
            .with_code(ErrorCode::CredentialScope));
        }
        if !credential_ids.contains(&id) {
            credential_ids.push(id);
        }
    }
    Ok(discovery::NewJob {
        name,
        collector_id,
        targets: spec.targets.iter().map(|t| t.trim().to_owned()).collect(),
        exclusions: spec
            .exclusions
            .iter()
            .map(|t| t.trim().to_owned())
            .collect(),
        credential_ids,
        options: spec.options.clone(),
        every_secs: spec.every_s,
        total: set.len(),
        created_by: Some(user_id),
    })
}

async fn create(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let actor = auth.actor();
    let user_id = auth.user.id;
    let admin = auth.user.role == plantwatch_shared::api::Role::Admin;
    let local_discovery = state.config.local_discovery;
    let job = state
        .db
        .write(move |tx| -> ApiResult<Job> {
            let new = checked(tx, &spec, user_id, local_discovery, admin)?;
            let now = crate::clock::unix_secs();
            let id = discovery::insert_job(tx, &new, None, now)?;
            let details = json!({
                "name": new.name,
                "targets": new.targets,
                "exclusions": new.exclusions,
                "addresses": new.total,
                "collector_id": new.collector_id,
                "every_s": new.every_secs,
            });
            audit::record(
                tx,
                &actor,
                AuditAction::DiscoveryCreate,
                Some(&format!("discovery_job:{id}")),
                Some(&details),
                now,
            )?;
            existing(tx, id)
        })
        .await?;
    // The local collector picks its work up at once; remote ones at their next claim.
    state.discovery_wake.notify_one();
    Ok((StatusCode::CREATED, Json(job)))
}

async fn list(
    State(state): State<AppState>,
    _auth: Authed,
    ApiQuery(query): ApiQuery<JobQuery>,
) -> ApiResult<Json<ListResponse<Job>>> {
    let (limit, offset) = page_bounds(query.limit, query.offset)?;
    let answer = state
        .db
        .call(move |conn| -> ApiResult<ListResponse<Job>> {
            let collector = match &query.collector {
                Some(name) => Some(Catalog::load(conn)?.collector(name).map_err(|message| {
                    invalid(ErrorCode::UnknownCollector, "collector", message)
                })?),
                None => None,
            };
            let (items, total) = discovery::list_jobs(conn, query.state, collector, limit, offset)?;
            Ok(ListResponse { items, total })
        })
        .await?;
    Ok(Json(answer))
}

async fn read(
    State(state): State<AppState>,
    _auth: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.db.call(move |conn| existing(conn, id)).await?))
}

async fn cancel(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Job>> {
    let actor = auth.actor();
    let job = state
        .db
        .write(move |tx| -> ApiResult<Job> {
            let before = existing(tx, id)?;
            let now = crate::clock::unix_secs();
            if !discovery::cancel(tx, id, now)? {
                return Err(ApiError::conflict(
                    ErrorCode::JobFinished,
                    format!(
                        "discovery job {id} is {} and has no schedule; there is nothing to cancel",
                        before.state
                    ),
                ));
            }
            audit::record(
                tx,
                &actor,
                AuditAction::DiscoveryCancel,
                Some(&format!("discovery_job:{id}")),
                Some(&json!({ "state": before.state, "done": before.done })),
                now,
            )?;
            existing(tx, id)
        })
        .await?;
    Ok(Json(job))
}

async fn devices(
    State(state): State<AppState>,
    _auth: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DeviceQuery>,
) -> ApiResult<Json<ListResponse<Device>>> {
    let (limit, offset) = page_bounds(query.limit, query.offset)?;
    let order = sort_order(query.sort.as_deref(), "address", discovery::DEVICE_SORTS)?;
    let answer = state
        .db
        .call(move |conn| -> ApiResult<ListResponse<Device>> {
            existing(conn, id)?;
            let (items, total) = discovery::devices(conn, id, &query, order, limit, offset)?;
            Ok(ListResponse { items, total })
        })
        .await?;
    Ok(Json(answer))
}

fn check_selection(selection: &DeviceSelection) -> ApiResult<()> {
    if !selection.all && selection.devices.is_empty() {
        return Err(invalid(
            ErrorCode::NothingSelected,
            "devices",
            "select devices by id, or all",
        ));
    }
    if selection.devices.len() > MAX_BATCH_DEVICES {
        return Err(invalid(
            ErrorCode::TooManyDevices,
            "devices",
            format!("at most {MAX_BATCH_DEVICES} devices at once"),
        ));
    }
    Ok(())
}

async fn import(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(selection): ApiJson<DeviceSelection>,
) -> ApiResult<Json<DeviceImport>> {
    check_selection(&selection)?;
    for tag in &selection.tags {
        if let Some(problem) = plantwatch_shared::rules::tag_problem(tag) {
            return Err(invalid(ErrorCode::InvalidTags, "tags", problem));
        }
    }
    let actor = auth.actor();
    let outcome = state
        .db
        .write(move |tx| -> ApiResult<DeviceImport> {
            let job = existing(tx, id)?;
            let now = crate::clock::unix_secs();
            let outcome = crate::discovery::import(tx, &job, &selection, now)?;
            if !outcome.created.is_empty() {
                let details = json!({
                    "created": outcome.created.iter().map(|n| &n.name).collect::<Vec<_>>(),
                    "skipped": outcome.skipped.len(),
                });
                audit::record(
                    tx,
                    &actor,
                    AuditAction::DiscoveryImport,
                    Some(&format!("discovery_job:{id}")),
                    Some(&details),
                    now,
                )?;
            }
            Ok(outcome)
        })
        .await?;
    Ok(Json(outcome))
}

async fn dismiss(
    State(state): State<AppState>,
    auth: Authed<OperatorRole>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(selection): ApiJson<DeviceSelection>,
) -> ApiResult<Json<Dismissed>> {
    check_selection(&selection)?;
    let actor = auth.actor();
    let user_id = auth.user.id;
    let dismissed = state
        .db
        .write(move |tx| -> ApiResult<u64> {
            existing(tx, id)?;
            let now = crate::clock::unix_secs();
            let count = discovery::dismiss(
                tx,
                id,
                &selection.devices,
                selection.all,
                Some(user_id),
                now,
            )?;
            audit::record(
                tx,
                &actor,
                AuditAction::DiscoveryDismiss,
                Some(&format!("discovery_job:{id}")),
                Some(&json!({ "dismissed": count })),
                now,
            )?;
            Ok(count)
        })
        .await?;
    Ok(Json(Dismissed { dismissed }))
}

async fn claim(
    State(state): State<AppState>,
    auth: ComponentAuth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(
    [(axum::http::HeaderName, axum::http::HeaderValue); 1],
    Json<Claim>,
)> {
    own_collector(&auth, id)?;
    let vault = state.vault.clone();
    let job = state
        .db
        .write(move |tx| -> ApiResult<Option<ClaimedJob>> {
            let Some(work) = discovery::claim(tx, id, crate::clock::unix_secs())? else {
                return Ok(None);
            };
            let mut credentials = Vec::with_capacity(work.credential_ids.len());
            for credential_id in &work.credential_ids {
                // A credential deleted since the job was made is skipped.
                if let Some(row) = credentials::get(tx, *credential_id)? {
                    credentials.push(crate::config_delivery::open_credential(
                        &vault,
                        row.id,
                        row.name,
                        row.kind,
                        row.params,
                        &row.secrets,
                        row.networks,
                    )?);
                }
            }
            Ok(Some(ClaimedJob {
                id: work.id,
                targets: work.targets,
                exclusions: work.exclusions,
                options: work.options,
                credentials,
                templates: crate::templates::fingerprints(tx)?,
                resume_at: work.resume_at,
            }))
        })
        .await?;
    if let Some(job) = &job {
        tracing::info!(job_id = job.id, collector_id = id, "Discovery job claimed.");
    }
    // The answer holds credentials in clear: nothing between may keep it.
    Ok(([no_store()], Json(Claim { job })))
}

/// Text fields of a result, bounded.
fn bounded(found: &mut Found) {
    for field in [
        &mut found.dns_name,
        &mut found.sys_name,
        &mut found.sys_descr,
        &mut found.sys_object_id,
        &mut found.sys_location,
        &mut found.sys_contact,
        &mut found.vendor,
        &mut found.template,
    ] {
        if let Some(text) = field {
            if text.len() > MAX_FIELD_LEN {
                let mut end = MAX_FIELD_LEN;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            if text.trim().is_empty() {
                *field = None;
            }
        }
    }
    found.open_ports.truncate(64);
}

async fn results(
    State(state): State<AppState>,
    auth: ComponentAuth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(mut batch): ApiJson<ResultBatch>,
) -> ApiResult<Json<BatchAck>> {
    if batch.devices.len() > MAX_BATCH_DEVICES {
        return Err(invalid(
            ErrorCode::TooManyDevices,
            "devices",
            format!("at most {MAX_BATCH_DEVICES} devices per batch"),
        ));
    }
    if batch
        .devices
        .iter()
        .any(|d| d.address.parse::<std::net::IpAddr>().is_err())
    {
        return Err(invalid(
            ErrorCode::InvalidResult,
            "devices",
            "every device needs its IP address",
        ));
    }
    batch.devices.iter_mut().for_each(bounded);
    if let Some(error) = &mut batch.error {
        error.truncate(MAX_FIELD_LEN);
    }
    let collector = auth.identity.id;
    let go_on = state
        .db
        .write(move |tx| -> ApiResult<bool> {
            let (owner, _) = discovery::job_owner(tx, id)?.ok_or_else(|| job_not_found(id))?;
            if owner != collector {
                return Err(ApiError::forbidden("the job belongs to another collector"));
            }
            Ok(discovery::record(
                tx,
                id,
                collector,
                &batch,
                crate::clock::unix_secs(),
            )?)
        })
        .await?;
    Ok(Json(BatchAck { stop: !go_on }))
}
