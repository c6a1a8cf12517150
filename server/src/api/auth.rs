//! Sessions: `POST /auth/login`, `POST /auth/logout`, `GET /auth/me`, `POST /auth/password`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use plantwatch_shared::api::AuditAction;
use plantwatch_shared::api::{
    ChangePasswordRequest, LoginRequest, LoginResponse, Me, SessionInfo, User, UserSource,
};
use plantwatch_shared::{SESSION_COOKIE, SESSION_TOKEN_PREFIX, Secret};
use rusqlite::Connection;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{AnyRole, ApiJson, Authed, ClientAddr};
use crate::auth::directory;
use crate::auth::ldap::{self, Failure, Outcome};
use crate::auth::{
    password_problem, random_token, rate_limit, token_hash, username_problem, verify_password,
};
use crate::db::{audit, sessions, to_time, users};
use crate::state::AppState;
use plantwatch_shared::api::ErrorCode;

/// Longest username echoed into the audit log from a failed login.
const MAX_LOGGED_USERNAME: usize = 64;
const INVALID_CREDENTIALS: &str = "invalid username or password";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
        .route("/auth/password", post(change_password))
}

/// Opens a session for `user` and records it; returns the token and its expiry.
pub(super) fn open_session(
    conn: &Connection,
    state: &AppState,
    user: &User,
    source: Option<&str>,
    user_agent: Option<&str>,
) -> rusqlite::Result<(Secret, SessionInfo)> {
    let now = crate::clock::unix_secs();
    let token = random_token(SESSION_TOKEN_PREFIX);
    let expires_at = now + state.config.session_max_age_secs as i64;
    sessions::insert(
        conn,
        user.id,
        &token_hash(&token),
        now,
        expires_at,
        source,
        user_agent,
    )?;
    users::touch_login(conn, user.id, now)?;
    Ok((
        Secret::from(token),
        SessionInfo {
            expires_at: to_time(expires_at),
            idle_timeout_secs: state.config.session_idle_timeout_secs,
        },
    ))
}

/// The answer to a successful login or setup: the token in the body and as an HTTP-only cookie.
pub(super) fn session_response(
    state: &AppState,
    status: StatusCode,
    body: LoginResponse,
) -> Response {
    let secure = if state.https { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        body.token.expose(),
        state.config.session_max_age_secs
    );
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(200).collect())
}

async fn login(
    State(state): State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let username = request.username.trim().to_owned();
    let user_key = format!("user:{}", username.to_lowercase());
    // Locked out per (user, address) and per address; per user only slowed down, so the
    // right password from a clean address still signs in while someone guesses elsewhere.
    let ip = addr
        .ip()
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let keys = vec![
        format!("pair:{}@{ip}", username.to_lowercase()),
        format!("addr:{ip}"),
    ];
    if let Err(wait) = state.limiter.check(&keys) {
        return Err(ApiError::too_many_requests(wait));
    }
    let pause = rate_limit::slowdown(
        state.user_failures.count(&user_key),
        state.config.login_max_failures as usize,
    );
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }

    let source = addr.ip();
    let verdict = if request.password.expose().is_empty() {
        // Refused before any check: to a directory an empty password is an anonymous bind.
        Err(Refusal::invalid(Some(
            json!({ "reason": "empty_password" }),
        )))
    } else {
        verify(&state, &username, request.password).await?
    };
    let signed_in = match verdict {
        Ok(signed_in) => signed_in,
        Err(refusal) => {
            if refusal.counts {
                state.limiter.record_failure(&keys);
                state
                    .user_failures
                    .record_failure(std::slice::from_ref(&user_key));
            }
            let attempted: String = username.chars().take(MAX_LOGGED_USERNAME).collect();
            let details = refusal.details;
            state
                .db
                .call(move |conn| -> ApiResult<()> {
                    let actor = audit::Actor {
                        user_id: None,
                        name: attempted,
                        source,
                    };
                    audit::record(
                        conn,
                        &actor,
                        AuditAction::AuthLoginFailed,
                        None,
                        details.as_ref(),
                        crate::clock::unix_secs(),
                    )?;
                    Ok(())
                })
                .await?;
            return Err(refusal.error);
        }
    };

    state.limiter.reset(&keys[0]);
    state.user_failures.reset(&user_key);
    let agent = user_agent(&headers);
    let session_state = state.clone();
    let (token, session, user) = state
        .db
        .write(move |tx| -> ApiResult<_> {
            let now = crate::clock::unix_secs();
            let (user, details) = match signed_in {
                SignedIn::Local(user) => (user, None),
                SignedIn::Directory(outcome) => {
                    let user = directory::record_user(tx, &username, &outcome, now)?
                        .ok_or_else(invalid_credentials)?;
                    let details = json!({
                        "source": "ldap",
                        "role": user.role,
                        "role_pinned": user.role_pinned,
                        "groups": outcome.groups.len(),
                    });
                    (user, Some(details))
                }
            };
            let (token, session) = open_session(
                tx,
                &session_state,
                &user,
                source.as_deref(),
                agent.as_deref(),
            )?;
            let actor = audit::Actor {
                user_id: Some(user.id),
                name: user.username.clone(),
                source,
            };
            let target = format!("user:{}", user.id);
            audit::record(
                tx,
                &actor,
                AuditAction::AuthLogin,
                Some(&target),
                details.as_ref(),
                now,
            )?;
            let user = users::get(tx, user.id)?.unwrap_or(user);
            Ok((token, session, user))
        })
        .await?;
    tracing::info!(user = %user.username, source = %user.source, "Signed in.");
    Ok(session_response(
        &state,
        StatusCode::OK,
        LoginResponse {
            token,
            user,
            session,
        },
    ))
}

/// Who a sign-in proved to be.
enum SignedIn {
    Local(User),
    Directory(Outcome),
}

/// A refused sign-in: the answer, what the audit row records, and whether it counts against
/// the throttle (a guess does; a directory that cannot be reached does not, so that its outage
/// never locks local admins out of the same address).
struct Refusal {
    error: ApiError,
    details: Option<serde_json::Value>,
    counts: bool,
}

impl Refusal {
    fn invalid(details: Option<serde_json::Value>) -> Self {
        Refusal {
            error: invalid_credentials(),
            details,
            counts: true,
        }
    }
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized(ErrorCode::InvalidCredentials, INVALID_CREDENTIALS)
}

/// Checks a password: a local user's against their hash; any other name, when the directory is
/// on, against the directory. Local users are always tried first and never sent to the
/// directory, so they stay the way in while it is down.
async fn verify(
    state: &AppState,
    username: &str,
    password: Secret,
) -> ApiResult<Result<SignedIn, Refusal>> {
    let lookup = username.to_owned();
    let found = state
        .db
        .call(move |conn| users::by_username(conn, &lookup).map_err(ApiError::from))
        .await?;
    if let Some(found) = found
        .as_ref()
        .filter(|f| f.user.source == UserSource::Local)
    {
        return Ok(
            if verify_password(password, found.password_hash.clone()).await? {
                Ok(SignedIn::Local(found.user.clone()))
            } else {
                Err(Refusal::invalid(None))
            },
        );
    }
    // A directory user whose role an admin pinned keeps it without any mapped group.
    let pinned = found.filter(|f| f.user.role_pinned).map(|f| f.user.role);
    let config = directory::load(state).await.unwrap_or_else(|error| {
        tracing::error!(%error, "The directory settings cannot be read.");
        None
    });
    let Some(config) = config.filter(|_| username_problem(username).is_none()) else {
        // Unknown here: as slow as a wrong password.
        verify_password(password, state.decoy_hash.clone()).await?;
        return Ok(Err(Refusal::invalid(None)));
    };
    let (report, verdict) = ldap::run(&config, username, Some(&password)).await;
    // A local user's check costs a bcrypt verify; a directory's answer comes in milliseconds. A
    // dummy verify after every answer the directory gave keeps the two alike, so that timing
    // never tells whether a name is a local account. (None when the directory did not answer:
    // that is told anyway, and an outage must not cost a bcrypt per attempt.)
    if !matches!(
        verdict,
        Err(Failure::Unavailable(_) | Failure::Misconfigured(_))
    ) {
        verify_password(password, state.decoy_hash.clone()).await?;
    }
    let failure = match (verdict, pinned, report.dn) {
        (Ok(outcome), _, _) => return Ok(Ok(SignedIn::Directory(outcome))),
        // The group step comes after the user's own bind: the password was accepted.
        (Err(Failure::NoGroup), Some(role), Some(dn)) => {
            return Ok(Ok(SignedIn::Directory(ldap::Outcome {
                dn,
                groups: report.groups,
                role,
            })));
        }
        (Err(failure), _, _) => failure,
    };
    let details = Some(json!({ "source": "ldap", "reason": failure.reason() }));
    let refusal = match failure {
        Failure::UnknownUser | Failure::WrongPassword => Refusal::invalid(details),
        Failure::NoGroup => Refusal {
            error: ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::NoRole,
                "your directory account is in no group that plantwatch gives a role; ask an admin",
            ),
            details,
            counts: true,
        },
        Failure::Unavailable(problem) | Failure::Misconfigured(problem) => {
            tracing::warn!(user = %username, %problem, "A directory sign-in could not be checked.");
            Refusal {
                error: ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::DirectoryUnavailable,
                    "the directory cannot be asked right now; local accounts can still sign in \
                     (an admin can run `plantwatch ldap test`)",
                ),
                details,
                counts: false,
            }
        }
    };
    Ok(Err(refusal))
}

async fn logout(State(state): State<AppState>, auth: Authed<AnyRole>) -> ApiResult<Response> {
    let actor = auth.actor();
    let session_id = auth.session_id;
    state
        .db
        .write(move |tx| -> ApiResult<()> {
            sessions::delete(tx, session_id)?;
            let target = format!("session:{session_id}");
            audit::record(
                tx,
                &actor,
                AuditAction::AuthLogout,
                Some(&target),
                None,
                crate::clock::unix_secs(),
            )?;
            Ok(())
        })
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

async fn me(auth: Authed<AnyRole>) -> Json<Me> {
    Json(Me {
        user: auth.user,
        session: auth.session,
    })
}

async fn change_password(
    State(state): State<AppState>,
    auth: Authed<AnyRole>,
    ApiJson(request): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    if auth.user.source == UserSource::Ldap {
        return Err(directory_password());
    }
    if let Some(problem) = password_problem(request.new_password.expose()) {
        return Err(ApiError::bad_request(ErrorCode::InvalidPassword, problem));
    }
    let user_id = auth.user.id;
    let current_hash = state
        .db
        .call(move |conn| users::password_hash(conn, user_id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized(ErrorCode::InvalidToken, "the user no longer exists")
        })?;
    if !verify_password(request.current_password, current_hash).await? {
        return Err(ApiError::bad_request(
            ErrorCode::WrongPassword,
            "the current password is wrong",
        ));
    }
    let new_hash = crate::auth::hash_password(request.new_password).await?;
    let actor = auth.actor();
    let keep = auth.session_id;
    state
        .db
        .write(move |tx| -> ApiResult<()> {
            let now = crate::clock::unix_secs();
            users::set_password_hash(tx, user_id, &new_hash, now)?;
            let ended = sessions::delete_for_user(tx, user_id, Some(keep))?;
            let target = format!("user:{user_id}");
            let details = json!({ "other_sessions_ended": ended });
            audit::record(
                tx,
                &actor,
                AuditAction::AuthPasswordChange,
                Some(&target),
                Some(&details),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The refusal to set a directory user's password here.
pub(super) fn directory_password() -> ApiError {
    ApiError::conflict(
        ErrorCode::DirectoryUser,
        "a directory user's password is the directory's; change it there",
    )
}
