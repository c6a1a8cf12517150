//! Directory settings (admins): `GET/PUT /settings/ldap`, `POST /settings/ldap/test`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use plantwatch_shared::api::{
    AuditAction, ErrorCode, LdapSettings, LdapSettingsUpdate, LdapTestReport, LdapTestRequest,
};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{AdminRole, ApiJson, Authed};
use crate::auth::ldap;
use crate::db::{audit, settings};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/ldap", get(read).put(update))
        .route("/settings/ldap/test", post(test))
}

async fn stored(state: &AppState) -> ApiResult<(LdapSettings, Option<String>)> {
    state
        .db
        .call(|conn| settings::ldap(conn).map_err(ApiError::from))
        .await
}

async fn read(
    State(state): State<AppState>,
    _auth: Authed<AdminRole>,
) -> ApiResult<Json<LdapSettings>> {
    Ok(Json(stored(&state).await?.0))
}

/// Text settings trimmed; blank optional ones absent.
fn settings_of(update: &LdapSettingsUpdate, password_set: bool) -> LdapSettings {
    let blank_none = |text: &Option<String>| {
        text.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    LdapSettings {
        enabled: update.enabled,
        urls: update
            .urls
            .iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect(),
        starttls: update.starttls,
        ca_pem: blank_none(&update.ca_pem),
        fingerprint: blank_none(&update.fingerprint),
        bind_dn: update.bind_dn.trim().to_owned(),
        bind_password_set: password_set,
        user_base_dn: update.user_base_dn.trim().to_owned(),
        user_filter: update.user_filter.trim().to_owned(),
        group_lookup: update.group_lookup,
        group_base_dn: update.group_base_dn.trim().to_owned(),
        group_filter: update.group_filter.trim().to_owned(),
        nested: update.nested,
        group_roles: update.group_roles.clone(),
        default_role: update.default_role,
        timeout_secs: update.timeout_secs,
    }
}

async fn update(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiJson(request): ApiJson<LdapSettingsUpdate>,
) -> ApiResult<Json<LdapSettings>> {
    let (_, sealed_before) = stored(&state).await?;
    let new_password = request
        .bind_password
        .as_ref()
        .filter(|p| !p.expose().is_empty());
    let password_set = new_password.is_some() || sealed_before.is_some();
    let settings = settings_of(&request, password_set);
    if let Some(problem) = ldap::settings_problem(&settings, password_set) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidLdapSettings,
            problem,
        ));
    }
    let sealed = match new_password {
        Some(password) => Some(
            state
                .vault
                .seal(settings::LDAP_BIND_PASSWORD_AAD, password.expose())
                .map_err(|e| anyhow::anyhow!("sealing the bind password: {e}"))?,
        ),
        None => None,
    };
    let actor = auth.actor();
    let saved = settings.clone();
    state
        .db
        .write(move |tx| -> ApiResult<()> {
            let now = crate::clock::unix_secs();
            settings::set_ldap(tx, &saved, sealed.as_deref(), now)?;
            // What changed is named, never the password itself.
            let details = json!({
                "enabled": saved.enabled,
                "urls": saved.urls,
                "group_lookup": saved.group_lookup,
                "group_roles": saved.group_roles.len(),
                "bind_password_changed": sealed.is_some(),
            });
            audit::record(
                tx,
                &actor,
                AuditAction::SettingsLdapUpdate,
                Some("settings:ldap"),
                Some(&details),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(Json(settings))
}

async fn test(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiJson(request): ApiJson<LdapTestRequest>,
) -> ApiResult<Json<LdapTestReport>> {
    let username = request.username.trim().to_owned();
    if let Some(problem) = crate::auth::username_problem(&username) {
        return Err(ApiError::bad_request(ErrorCode::InvalidUsername, problem));
    }
    // A test runs whether or not sign-in through the directory is switched on yet.
    let config = crate::auth::directory::load_any(&state).await?;
    if config.settings.urls.is_empty() {
        return Err(ApiError::conflict(
            ErrorCode::NoDirectory,
            "no directory is set up yet: `plantwatch ldap set --url ldaps://…` first",
        ));
    }
    let (report, _) = ldap::run(&config, &username, request.password.as_ref()).await;
    let actor = auth.actor();
    let details = json!({ "username": username, "ok": report.ok, "role": report.role });
    state
        .db
        .write(move |tx| -> ApiResult<()> {
            audit::record(
                tx,
                &actor,
                AuditAction::SettingsLdapTest,
                Some("settings:ldap"),
                Some(&details),
                crate::clock::unix_secs(),
            )?;
            Ok(())
        })
        .await?;
    Ok(Json(report))
}
