//! `/users` (admin): list, create, read, change role or reset password, delete. No change may
//! leave the server without an admin.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use plantwatch_shared::api::AuditAction;
use plantwatch_shared::api::{
    CreateUserRequest, ListResponse, Role, UpdateUserRequest, User, UserQuery, UserSource,
};
use rusqlite::Connection;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{AdminRole, ApiJson, ApiPath, ApiQuery, Authed};
use super::{page_bounds, sort_order};
use crate::auth::{hash_password, password_problem, username_problem};
use crate::db::{audit, sessions, users};
use crate::state::AppState;
use plantwatch_shared::api::ErrorCode;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", get(read).patch(update).delete(remove))
}

fn user_not_found(id: i64) -> ApiError {
    ApiError::not_found(ErrorCode::UserNotFound, format!("there is no user {id}"))
}

fn last_admin() -> ApiError {
    ApiError::conflict(
        ErrorCode::LastAdmin,
        "this is the last admin; make another user admin first",
    )
}

fn existing(conn: &Connection, id: i64) -> ApiResult<User> {
    users::get(conn, id)?.ok_or_else(|| user_not_found(id))
}

async fn list(
    State(state): State<AppState>,
    _auth: Authed<AdminRole>,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> ApiResult<Json<ListResponse<User>>> {
    let (limit, offset) = page_bounds(query.limit, query.offset)?;
    let (order, descending) = sort_order(query.sort.as_deref(), "username", users::SORTS)?;
    let (role, text) = (query.role, query.q.filter(|q| !q.is_empty()));
    let (items, total) = state
        .db
        .call(move |conn| {
            users::list(
                conn,
                role,
                text.as_deref(),
                order,
                descending,
                limit,
                offset,
            )
            .map_err(ApiError::from)
        })
        .await?;
    Ok(Json(ListResponse { items, total }))
}

async fn create(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let username = request.username.trim().to_owned();
    if let Some(problem) = username_problem(&username) {
        return Err(ApiError::bad_request(ErrorCode::InvalidUsername, problem));
    }
    if let Some(problem) = password_problem(request.password.expose()) {
        return Err(ApiError::bad_request(ErrorCode::InvalidPassword, problem));
    }
    let hash = hash_password(request.password).await?;
    let actor = auth.actor();
    let role = request.role;
    let user = state
        .db
        .write(move |tx| -> ApiResult<User> {
            let now = crate::clock::unix_secs();
            let user = users::insert(tx, &username, &hash, role, now)?;
            let target = format!("user:{}", user.id);
            let details = json!({ "username": user.username, "role": role });
            audit::record(
                tx,
                &actor,
                AuditAction::UserCreate,
                Some(&target),
                Some(&details),
                now,
            )?;
            Ok(user)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn read(
    State(state): State<AppState>,
    _auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<User>> {
    let user = state.db.call(move |conn| existing(conn, id)).await?;
    Ok(Json(user))
}

async fn update(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    if request.role.is_none() && request.password.is_none() && request.role_pinned.is_none() {
        return Err(ApiError::bad_request(
            ErrorCode::NothingToChange,
            "give a role, a password, or both",
        ));
    }
    let new_hash = match request.password {
        Some(password) => {
            if let Some(problem) = password_problem(password.expose()) {
                return Err(ApiError::bad_request(ErrorCode::InvalidPassword, problem));
            }
            Some(hash_password(password).await?)
        }
        None => None,
    };
    let actor = auth.actor();
    let new_role = request.role;
    let pin = request.role_pinned;
    let user = state
        .db
        .write(move |tx| -> ApiResult<User> {
            let user = existing(tx, id)?;
            let now = crate::clock::unix_secs();
            let target = format!("user:{id}");
            let directory_user = user.source == UserSource::Ldap;
            if directory_user && new_hash.is_some() {
                return Err(super::auth::directory_password());
            }
            if !directory_user && pin.is_some() {
                return Err(ApiError::bad_request(
                    ErrorCode::BadRequest,
                    "only a directory user's role is pinned; a local user's role is always theirs",
                ));
            }
            // A directory user's role set here is pinned: their groups no longer change it.
            let pinned = pin.or((directory_user && new_role.is_some()).then_some(true));
            if let Some(pinned) = pinned.filter(|p| *p != user.role_pinned) {
                users::set_role_pinned(tx, id, pinned, now)?;
                let details =
                    json!({ "role_pinned": pinned, "role": new_role.unwrap_or(user.role) });
                audit::record(
                    tx,
                    &actor,
                    AuditAction::UserSetRole,
                    Some(&target),
                    Some(&details),
                    now,
                )?;
            }
            if let Some(role) = new_role.filter(|role| *role != user.role) {
                if user.role == Role::Admin && users::count_admins(tx)? <= 1 {
                    return Err(last_admin());
                }
                users::set_role(tx, id, role, now)?;
                let details = json!({ "from": user.role, "to": role });
                audit::record(
                    tx,
                    &actor,
                    AuditAction::UserSetRole,
                    Some(&target),
                    Some(&details),
                    now,
                )?;
            }
            if let Some(hash) = &new_hash {
                users::set_password_hash(tx, id, hash, now)?;
                // A reset password ends every session the user had.
                let ended = sessions::delete_for_user(tx, id, None)?;
                let details = json!({ "sessions_ended": ended });
                audit::record(
                    tx,
                    &actor,
                    AuditAction::UserResetPassword,
                    Some(&target),
                    Some(&details),
                    now,
                )?;
            }
            let user = existing(tx, id)?;
            Ok(user)
        })
        .await?;
    Ok(Json(user))
}

async fn remove(
    State(state): State<AppState>,
    auth: Authed<AdminRole>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    if id == auth.user.id {
        return Err(ApiError::conflict(
            ErrorCode::CannotDeleteSelf,
            "you cannot delete your own account; ask another admin",
        ));
    }
    let actor = auth.actor();
    state
        .db
        .write(move |tx| -> ApiResult<()> {
            let user = existing(tx, id)?;
            if user.role == Role::Admin && users::count_admins(tx)? <= 1 {
                return Err(last_admin());
            }
            users::delete(tx, id)?;
            let target = format!("user:{id}");
            let details = json!({ "username": user.username, "role": user.role });
            audit::record(
                tx,
                &actor,
                AuditAction::UserDelete,
                Some(&target),
                Some(&details),
                crate::clock::unix_secs(),
            )?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
