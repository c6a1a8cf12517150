//! Extractors: JSON, path and query wrappers that fail with [`ApiError`], the client address,
//! and [`Authed`], the one place where sessions and roles are checked.

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use plantwatch_shared::api::{Role, SessionInfo, User};
use plantwatch_shared::{API_KEY_HEADER, SESSION_COOKIE, SESSION_TOKEN_PREFIX, Secret};

use super::error::ApiError;
use crate::auth::api_keys::{self, Identity};
use crate::auth::token_hash;
use crate::db::{self, audit::Actor, sessions, to_time};
use crate::state::AppState;
use plantwatch_shared::api::ErrorCode;

/// `axum::Json` whose rejections are [`ApiError`]s.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` whose rejections are [`ApiError`]s.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` whose rejections are [`ApiError`]s.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The peer address of the connection (no proxy headers are trusted).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub Option<SocketAddr>);

impl ClientAddr {
    /// The IP as text, for audit rows and rate-limit keys.
    pub fn ip(&self) -> Option<String> {
        self.0.map(|addr| addr.ip().to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0),
        ))
    }
}

/// The least role a route needs.
pub trait MinRole: Send + Sync + 'static {
    const MIN: Role;
}

/// Any signed-in user.
#[derive(Debug)]
pub struct AnyRole;
/// Operators and admins.
#[derive(Debug)]
pub struct OperatorRole;
/// Admins only.
#[derive(Debug)]
pub struct AdminRole;

impl MinRole for AnyRole {
    const MIN: Role = Role::Viewer;
}
impl MinRole for OperatorRole {
    const MIN: Role = Role::Operator;
}
impl MinRole for AdminRole {
    const MIN: Role = Role::Admin;
}

/// A request with a live session whose user has at least role `R`: `401` without a valid
/// session, `403` with too little privilege.
#[derive(Debug)]
pub struct Authed<R: MinRole = AnyRole> {
    pub user: User,
    pub session_id: i64,
    pub session: SessionInfo,
    pub addr: ClientAddr,
    _role: PhantomData<R>,
}

impl<R: MinRole> Authed<R> {
    /// The audit actor of this request.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.user.id),
            name: self.user.username.clone(),
            source: self.addr.ip(),
        }
    }
}

/// The session token of a request: `Authorization: Bearer`, else the session cookie.
pub fn session_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION)
        && let Ok(text) = value.to_str()
        && let Some(token) = text.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_owned());
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

impl<S, R> FromRequestParts<S> for Authed<R>
where
    S: Send + Sync,
    R: MinRole,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let addr = ClientAddr::from_request_parts(parts, &state)
            .await
            .unwrap_or(ClientAddr(None));
        let token = session_token(parts).ok_or_else(|| {
            ApiError::unauthorized(
                ErrorCode::Unauthenticated,
                "sign in first (no session token)",
            )
        })?;
        if !token.starts_with(SESSION_TOKEN_PREFIX) {
            return Err(ApiError::unauthorized(
                ErrorCode::InvalidToken,
                "that is not a session token",
            ));
        }
        let hash = token_hash(&token);
        let idle = state.config.session_idle_timeout_secs as i64;
        // Refresh last_seen at most this often, so a busy console does not write on every call,
        // but always well within the idle timeout.
        let touch_every = (idle / 10).clamp(0, 60);
        let found = state
            .db
            .call(move |conn| -> Result<_, ApiError> {
                let now = crate::clock::unix_secs();
                let Some(row) = sessions::by_token_hash(conn, &hash)? else {
                    return Ok(None);
                };
                if row.expires_at <= now || row.last_seen_at + idle <= now {
                    sessions::delete(conn, row.id)?;
                    return Ok(Some(Err(row)));
                }
                if now - row.last_seen_at >= touch_every {
                    sessions::touch(conn, row.id, now)?;
                }
                Ok(Some(Ok(row)))
            })
            .await?;
        let row = match found {
            None => {
                return Err(ApiError::unauthorized(
                    ErrorCode::InvalidToken,
                    "the session is unknown or has ended; sign in again",
                ));
            }
            Some(Err(_)) => {
                return Err(ApiError::unauthorized(
                    ErrorCode::SessionExpired,
                    "the session has expired; sign in again",
                ));
            }
            Some(Ok(row)) => row,
        };
        if row.user.role < R::MIN {
            return Err(ApiError::forbidden(format!(
                "this needs the {} role; you are {}",
                R::MIN,
                row.user.role
            )));
        }
        Ok(Authed {
            session: SessionInfo {
                expires_at: to_time(row.expires_at),
                idle_timeout_secs: state.config.session_idle_timeout_secs,
            },
            user: row.user,
            session_id: row.id,
            addr,
            _role: PhantomData,
        })
    }
}

/// A request from an enrolled collector or agent, by its `X-API-Key`: `401` without a valid
/// key (unknown, rotated, revoked), `403` while the component waits for approval. Verified
/// keys are cached (see [`crate::auth::api_keys`]), so only the first request of a key pays
/// for bcrypt.
#[derive(Debug)]
pub struct ComponentAuth {
    pub identity: Identity,
    pub addr: ClientAddr,
}

impl ComponentAuth {
    /// The audit actor of this request.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: None,
            name: format!("{} {}", self.identity.kind, self.identity.name),
            source: self.addr.ip(),
        }
    }
}

fn invalid_key() -> ApiError {
    ApiError::unauthorized(
        ErrorCode::InvalidApiKey,
        "the API key is unknown or was replaced; enroll this component again",
    )
}

impl<S> FromRequestParts<S> for ComponentAuth
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let addr = ClientAddr::from_request_parts(parts, &state)
            .await
            .unwrap_or(ClientAddr(None));
        let key = parts
            .headers
            .get(API_KEY_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    ErrorCode::Unauthenticated,
                    format!("send the component's API key in {API_KEY_HEADER}"),
                )
            })?;
        let id = api_keys::component_of(key).ok_or_else(invalid_key)?;
        let digest = api_keys::digest(key);
        let identity = match state.keys.get(&digest) {
            Some(identity) => identity,
            None => {
                let source = [format!("ip:{}", addr.ip().unwrap_or_default())];
                if let Err(wait) = state.key_failures.check(&source) {
                    return Err(ApiError::too_many_requests(wait));
                }
                let generation = state.keys.generation(id);
                let row = state
                    .db
                    .call(move |conn| db::components::key_row(conn, id).map_err(db::DbError::from))
                    .await?
                    .ok_or_else(invalid_key)?;
                if row.revoked {
                    return Err(ApiError::unauthorized(
                        ErrorCode::ApiKeyRevoked,
                        "this component was revoked; enroll it again and have an admin approve it",
                    ));
                }
                let key = Secret::new(key);
                let hash = row.api_key_hash.clone();
                let valid = crate::auth::verify_password(key, hash).await?;
                if !valid {
                    state.key_failures.record_failure(&source);
                    return Err(invalid_key());
                }
                let identity = Identity {
                    id,
                    kind: row.kind,
                    name: row.name,
                    approved: row.approved,
                    is_local: row.is_local,
                    node_id: row.node_id,
                };
                state.keys.remember(digest, identity.clone(), generation);
                identity
            }
        };
        state.presence.touch(identity.id, crate::clock::unix_secs());
        if !identity.approved {
            return Err(ApiError::forbidden(format!(
                "this {} is waiting for approval: an admin must approve it (plantwatch {}s approve {})",
                identity.kind, identity.kind, identity.id
            ))
            .with_code(ErrorCode::PendingApproval));
        }
        Ok(ComponentAuth { identity, addr })
    }
}
