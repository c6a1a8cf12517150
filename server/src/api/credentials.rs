//! `/credentials`: the vault. Admins create, change, delete and reveal; operators and viewers
//! see names, kinds and which secrets are set, never the secrets. Secrets are sealed with the
//! vault before they reach the database, and a change to a credential marks the collectors of
//! every node it is attached to dirty.

use plantwatch_shared::api::AuditAction;
use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use plantwatch_shared::Secret;
use plantwatch_shared::api::{
    CreateCredentialRequest, Credential, CredentialKind, CredentialParams, CredentialQuery,
    ListResponse, Role, UpdateCredentialRequest,
};
use plantwatch_shared::rules::{MAX_CREDENTIAL_NAME_LEN, name_problem};
use rusqlite::Connection;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{AdminRole, AnyRole, ApiJson, ApiPath, ApiQuery, Authed};
use super::page_bounds;
use crate::db::audit::{self, Actor};
use crate::db::config_dirty;
use crate::db::credentials::{self, CredentialRow};
use crate::state::AppState;
use crate::vault::{Vault, credential_aad};
use plantwatch_shared::api::ErrorCode;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/credentials", get(list).post(create))
        .route("/credentials/{id}", get(read).patch(update).delete(remove))
}

/// Shortest SNMPv3 pass phrase (RFC 3414 §11.2).
const MIN_V3_PASSWORD_LEN: usize = 8;
/// Longest secret value.
const MAX_SECRET_LEN: usize = 1024;

fn not_found(id: i64) -> ApiError {
    ApiError::not_found(
        ErrorCode::CredentialNotFound,
        format!("there is no credential {id}"),
    )
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidCredential, message)
        .with_details(json!({ "field": field }))
}

fn existing(conn: &Connection, id: i64) -> ApiResult<CredentialRow> {
    credentials::get(conn, id)?.ok_or_else(|| not_found(id))
}

/// The secret fields `params` needs for `kind`.
fn needed_secrets(kind: CredentialKind, params: &CredentialParams) -> Vec<&'static str> {
    match kind {
        CredentialKind::SnmpV3 => {
            let mut needed = Vec::new();
            if params.auth_protocol.is_some() {
                needed.push("auth_password");
            }
            if params.priv_protocol.is_some() {
                needed.push("priv_password");
            }
            needed
        }
        other => other.secret_fields().to_vec(),
    }
}

/// Checks a credential as it would be stored: name, the fields its kind takes, and the
/// secrets it needs (`set` lists the secret fields that will have a value).
fn check(
    name: &str,
    kind: CredentialKind,
    params: &CredentialParams,
    new_secrets: &BTreeMap<String, Secret>,
    set: &[&str],
) -> ApiResult<()> {
    if let Some(problem) = name_problem(name, MAX_CREDENTIAL_NAME_LEN) {
        return Err(invalid("name", problem));
    }
    if name.contains(';') {
        return Err(invalid(
            "name",
            "the name must not contain ';' (it separates names in CSV files)",
        ));
    }
    let takes_user = !matches!(kind, CredentialKind::SnmpV1 | CredentialKind::SnmpV2c);
    let given = [
        ("username", params.username.is_some(), takes_user),
        (
            "auth_protocol",
            params.auth_protocol.is_some(),
            kind == CredentialKind::SnmpV3,
        ),
        (
            "priv_protocol",
            params.priv_protocol.is_some(),
            kind == CredentialKind::SnmpV3,
        ),
        (
            "context",
            params.context.is_some(),
            kind == CredentialKind::SnmpV3,
        ),
        (
            "domain",
            params.domain.is_some(),
            matches!(kind, CredentialKind::Windows | CredentialKind::Ssh),
        ),
        (
            "fingerprint",
            params.fingerprint.is_some(),
            kind == CredentialKind::Vsphere,
        ),
    ];
    if let Some((field, ..)) = given
        .iter()
        .find(|(_, present, allowed)| *present && !allowed)
    {
        return Err(invalid(
            field,
            format!("a {kind} credential has no {field}"),
        ));
    }
    if takes_user {
        let user = params.username.as_deref().unwrap_or("");
        if user.trim().is_empty() || user.chars().count() > 255 {
            return Err(invalid(
                "username",
                format!("a {kind} credential needs a user name (1 to 255 characters)"),
            ));
        }
    }
    let texts = [
        ("username", &params.username),
        ("context", &params.context),
        ("domain", &params.domain),
    ];
    for (field, value) in texts {
        if let Some(value) = value
            && (value.chars().count() > 255 || value.chars().any(char::is_control))
        {
            return Err(invalid(
                field,
                format!("{field} must have at most 255 characters and no control characters"),
            ));
        }
    }
    if let Some(pin) = &params.fingerprint
        && let Err(error) = pin.parse::<plantwatch_shared::Fingerprint>()
    {
        return Err(invalid("fingerprint", error.to_string()));
    }
    if params.priv_protocol.is_some() && params.auth_protocol.is_none() {
        return Err(invalid(
            "priv_protocol",
            "SNMPv3 privacy needs an auth protocol too",
        ));
    }
    let allowed = kind.secret_fields();
    for (field, value) in new_secrets {
        if !allowed.contains(&field.as_str()) {
            return Err(invalid(
                field,
                format!(
                    "a {kind} credential has no secret {field:?}; it takes {}",
                    allowed.join(", ")
                ),
            ));
        }
        let length = value.expose().chars().count();
        if length == 0 || value.expose().len() > MAX_SECRET_LEN {
            return Err(invalid(
                field,
                format!("{field} must have 1 to {MAX_SECRET_LEN} bytes"),
            ));
        }
        if kind == CredentialKind::SnmpV3 && length < MIN_V3_PASSWORD_LEN {
            return Err(invalid(
                field,
                format!("SNMPv3 pass phrases need at least {MIN_V3_PASSWORD_LEN} characters"),
            ));
        }
    }
    if let Some(missing) = needed_secrets(kind, params)
        .into_iter()
        .find(|f| !set.contains(f))
    {
        return Err(invalid(
            missing,
            format!("a {kind} credential needs {missing}"),
        ));
    }
    Ok(())
}

/// The API view of a row: secrets masked, or opened for an admin who asked.
fn view(vault: &Vault, row: CredentialRow, reveal: bool) -> ApiResult<Credential> {
    let sealed: BTreeMap<String, String> =
        serde_json::from_str(&row.secrets).map_err(ApiError::internal)?;
    let secrets = if reveal {
        vault
            .open_all(&row.secrets, |field| credential_aad(row.id, field))
            .map_err(ApiError::internal)?
            .into_iter()
            .map(|(field, value)| (field, Some(value)))
            .collect()
    } else {
        sealed.into_keys().map(|field| (field, None)).collect()
    };
    Ok(Credential {
        id: row.id,
        name: row.name,
        kind: row.kind,
        params: row.params,
        secrets,
        revealed: reveal,
        nodes: row.nodes,
        networks: row.networks,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Refuses `reveal` to non-admins, and records every credential shown in clear.
fn reveal_check(auth: &Authed<AnyRole>, reveal: bool) -> ApiResult<()> {
    if reveal && auth.user.role != Role::Admin {
        return Err(ApiError::forbidden("only admins can reveal secrets"));
    }
    Ok(())
}

fn record_reveals(
    conn: &Connection,
    actor: &Actor,
    rows: &[CredentialRow],
) -> rusqlite::Result<()> {
    let now = crate::clock::unix_secs();
    for row in rows {
        let details = json!({ "name": row.name });
        audit::record(
            conn,
            actor,
            AuditAction::CredentialReveal,
            Some(&format!("credential:{}", row.id)),
            Some(&details),
            now,
        )?;
    }
    Ok(())
}

async fn list(
    State(state): State<AppState>,
    auth: Authed,
    ApiQuery(query): ApiQuery<CredentialQuery>,
) -> ApiResult<Json<ListResponse<Credential>>> {
    let (limit, offset) = page_bounds(query.limit, query.offset)?;
    reveal_check(&auth, query.reveal)?;
    let actor = auth.actor();
    let vault = state.vault.clone();
    let page = state
        .db
        .call(move |conn| -> ApiResult<_> {
            let text = query.q.as_deref().filter(|q| !q.is_empty());
            let (rows, total) = credentials::list(conn, query.kind, text, limit, offset)?;
            if query.reveal {
                record_reveals(conn, &actor, &rows)?;
            }
            let items = rows
                .into_iter()
                .map(|row| view(&vault, row, query.reveal))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok(ListResponse { items, total })
        })
        .await?;
    Ok(Json(page))
}

async fn read(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<CredentialQuery>,
) -> ApiResult<Json<Credential>> {
    reveal_check(&auth, query.reveal)?;
    let actor = auth.actor();
    let vault = state.vault.clone();
    let credential = state
        .db
        .call(move |conn| -> ApiResult<_> {
            let row = existing(conn, id)?;
            if query.reveal {
                record_reveals(conn, &actor, std::slice::from_ref(&row))?;
            }
            view(&vault, row, query.reveal)
        })
        .await?;
    Ok(Json(credential))
}

async fn create(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiJson(request): ApiJson<CreateCredentialRequest>,
) -> ApiResult<(StatusCode, Json<Credential>)> {
    let name = request.name.trim().to_owned();
    let set: Vec<&str> = request.secrets.keys().map(String::as_str).collect();
    check(&name, request.kind, &request.params, &request.secrets, &set)?;
    let networks = checked_networks(&request.networks)?;
    let actor = auth.actor();
    let vault = state.vault.clone();
    let credential = state
        .db
        .write(move |tx| -> ApiResult<_> {
            let now = crate::clock::unix_secs();
            let id = credentials::insert(tx, &name, request.kind, &request.params, now)?;
            let sealed = vault
                .seal_all(&request.secrets, |field| credential_aad(id, field))
                .map_err(ApiError::internal)?;
            credentials::set_secrets(tx, id, &sealed)?;
            credentials::set_networks(tx, id, &networks)?;
            let details = json!({
                "name": name,
                "kind": request.kind,
                "secrets": set_fields(&request.secrets),
                "networks": networks,
            });
            audit::record(
                tx,
                &actor,
                AuditAction::CredentialCreate,
                Some(&format!("credential:{id}")),
                Some(&details),
                now,
            )?;
            let row = existing(tx, id)?;
            view(&vault, row, false)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(credential)))
}

/// The networks as given, trimmed, when every one is a CIDR or an address.
fn checked_networks(networks: &[String]) -> ApiResult<Vec<String>> {
    let networks: Vec<String> = networks.iter().map(|n| n.trim().to_owned()).collect();
    if let Some(problem) = plantwatch_shared::rules::networks_problem(&networks) {
        return Err(invalid("networks", problem));
    }
    Ok(networks)
}

fn set_fields(secrets: &BTreeMap<String, Secret>) -> Vec<&str> {
    secrets.keys().map(String::as_str).collect()
}

async fn update(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<UpdateCredentialRequest>,
) -> ApiResult<Json<Credential>> {
    if request == UpdateCredentialRequest::default() {
        return Err(ApiError::bad_request(
            ErrorCode::NothingToChange,
            "give a name, params or secrets to change",
        ));
    }
    let networks = request
        .networks
        .as_deref()
        .map(checked_networks)
        .transpose()?;
    let actor = auth.actor();
    let vault = state.vault.clone();
    let credential = state
        .db
        .write(move |tx| -> ApiResult<_> {
            let row = existing(tx, id)?;
            if let Some(networks) = &networks {
                // Nodes already attached must lie inside the new networks.
                let outside: Vec<String> = crate::db::credentials::attached_addresses(tx, id)?
                    .into_iter()
                    .filter(|(_, address)| {
                        !plantwatch_shared::rules::address_in_networks(address, networks)
                    })
                    .map(|(name, address)| format!("{name} ({address})"))
                    .take(5)
                    .collect();
                if !outside.is_empty() {
                    return Err(invalid(
                        "networks",
                        format!(
                            "attached nodes lie outside those networks: {}; detach them first",
                            outside.join(", ")
                        ),
                    ));
                }
                credentials::set_networks(tx, id, networks)?;
            }
            let name = request
                .name
                .as_deref()
                .map(str::trim)
                .unwrap_or(&row.name)
                .to_owned();
            let params = request.params.clone().unwrap_or_else(|| row.params.clone());
            // Sealed values are kept as they are; only the new ones are sealed, and secrets the
            // new params no longer need are dropped.
            let mut sealed: BTreeMap<String, String> =
                serde_json::from_str(&row.secrets).map_err(ApiError::internal)?;
            let needed = needed_secrets(row.kind, &params);
            let mut set: Vec<&str> = sealed.keys().map(String::as_str).collect();
            set.extend(request.secrets.keys().map(String::as_str));
            check(&name, row.kind, &params, &request.secrets, &set)?;
            for (field, value) in &request.secrets {
                sealed.insert(
                    field.clone(),
                    vault
                        .seal(&credential_aad(id, field), value.expose())
                        .map_err(ApiError::internal)?,
                );
            }
            sealed.retain(|field, _| needed.contains(&field.as_str()));
            let now = crate::clock::unix_secs();
            credentials::update(tx, id, &name, &params, now)?;
            credentials::set_secrets(
                tx,
                id,
                &serde_json::to_string(&sealed).map_err(ApiError::internal)?,
            )?;
            config_dirty::mark_for_credential(tx, id, "credential updated", now)?;
            let details = json!({
                "name": name,
                "renamed": name != row.name,
                "params_changed": params != row.params,
                "networks": networks,
                "secrets_changed": set_fields(&request.secrets),
            });
            audit::record(
                tx,
                &actor,
                AuditAction::CredentialUpdate,
                Some(&format!("credential:{id}")),
                Some(&details),
                now,
            )?;
            let row = existing(tx, id)?;
            view(&vault, row, false)
        })
        .await?;
    Ok(Json(credential))
}

async fn remove(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<()> {
            let row = existing(tx, id)?;
            let now = crate::clock::unix_secs();
            config_dirty::mark_for_credential(tx, id, "credential deleted", now)?;
            credentials::delete(tx, id)?;
            let details = json!({ "name": row.name, "kind": row.kind, "detached_from": row.nodes });
            audit::record(
                tx,
                &actor,
                AuditAction::CredentialDelete,
                Some(&format!("credential:{id}")),
                Some(&details),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
