//! The HTTP API. Each resource module exports `router()`; they are merged here under
//! `/api/v1`, with the request-context middleware, the body limit and JSON fallbacks, so that
//! every answer, even to an unknown route, has the shape of DESIGN §7.

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod checks;
pub mod components;
pub mod credentials;
pub mod directory;
pub mod discovery;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod ingest;
pub mod metrics;
pub mod nodes;
pub mod remote;
pub mod setup;
pub mod telemetry;
pub mod templates;
pub mod topology;
pub mod users;
pub mod vsphere;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use tracing::Instrument as _;

use self::error::{ApiError, REQUEST_ID};
use crate::state::AppState;
use plantwatch_shared::api::ErrorCode;

/// The whole application router.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let api = Router::new()
        .merge(setup::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(directory::router())
        .merge(audit::router())
        .merge(nodes::router())
        .merge(checks::router())
        .merge(events::router())
        .merge(credentials::router())
        .merge(components::router())
        .merge(remote::router())
        .merge(ingest::router())
        .merge(metrics::router())
        .merge(templates::router())
        .merge(alerts::router())
        .merge(discovery::router())
        .merge(topology::router())
        .merge(vsphere::router());
    Router::new()
        .merge(health::router())
        .merge(telemetry::router())
        .nest("/api/v1", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), pair_gate))
        .with_state(state)
}

/// One of an active/standby pair: while it may act, every answer names its term (and role);
/// once it may not (it lost or could not renew its lease), everything but `/healthz` is
/// answered `503 standby`, so no sample is acknowledged that a new active would not have.
async fn pair_gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(term) = state.gate.term() else {
        return next.run(request).await;
    };
    if !state.gate.may_act()
        && request.uri().path() != "/healthz"
        && let Some(health) = state.gate.health()
    {
        return crate::ha::standby_response(health);
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(value) = axum::http::HeaderValue::from_str(&term.to_string()) {
        headers.insert(plantwatch_shared::api::ha::TERM_HEADER, value);
    }
    headers.insert(
        plantwatch_shared::client::ROLE_HEADER,
        axum::http::HeaderValue::from_static("active"),
    );
    response
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(
        ErrorCode::RouteNotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Longest request address (path and query) served; longer ones answer 414 in JSON.
const MAX_URI_BYTES: usize = 8 * 1024;

/// Every error answers `{"error": {...}}`: a rejection axum or a layer answered in plain text
/// ("Failed to buffer the request body", an empty 413) is rewritten with its status's code.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let retry_after = response
        .headers()
        .get(axum::http::header::RETRY_AFTER)
        .cloned();
    let text = match axum::body::to_bytes(response.into_body(), 4_096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::URI_TOO_LONG => ErrorCode::UriTooLong,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase()
    } else {
        text
    };
    let mut rewritten = ApiError::new(status, code, message).into_response();
    if let Some(value) = retry_after {
        rewritten
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, value);
    }
    rewritten
}

/// Gives each request an id (answered in `x-request-id`) and a span with the matched route,
/// and logs its outcome.
async fn request_context(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let request_id = crate::auth::random_token("")[..12].to_owned();
    let matched_path = request.extensions().get::<MatchedPath>();
    let matched = matched_path.is_some();
    let route = matched_path
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().to_owned());
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method = %method,
        route = %route,
    );
    let started = std::time::Instant::now();
    let too_long = request.uri().to_string().len() > MAX_URI_BYTES;
    let mut response = if too_long {
        ApiError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::UriTooLong,
            format!("the request's address is longer than {MAX_URI_BYTES} bytes"),
        )
        .into_response()
    } else {
        let response = REQUEST_ID
            .scope(request_id.clone(), next.run(request))
            .instrument(span.clone())
            .await;
        REQUEST_ID
            .scope(request_id.clone(), json_errors(response))
            .await
    };
    // Unmatched paths count as one route: a scanner must not make a series per path.
    let counted = if matched { route.as_str() } else { "unmatched" };
    state.http.record(
        method.as_str(),
        counted,
        response.status().as_u16(),
        started.elapsed(),
    );
    let _entered = span.enter();
    tracing::debug!(
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "Request handled."
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Default and largest page size of every list: the contract in `shared::api`.
pub use plantwatch_shared::api::{
    DEFAULT_PAGE_LIMIT as DEFAULT_LIMIT, MAX_PAGE_LIMIT as MAX_LIMIT,
};

/// Checks `limit`/`offset` of a list request.
pub fn page_bounds(limit: Option<u32>, offset: Option<u32>) -> error::ApiResult<(u32, u32)> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidLimit,
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    Ok((limit, offset.unwrap_or(0)))
}

/// The SQL order of a list's `sort` parameter (`name` or `-name` for descending), from the
/// resource's table of (query name, SQL); the default when absent.
pub fn sort_order(
    sort: Option<&str>,
    default: &str,
    sorts: &[(&str, &'static str)],
) -> error::ApiResult<(&'static str, bool)> {
    let sort = sort.unwrap_or(default);
    let (descending, name) = match sort.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, sort),
    };
    sorts
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, sql)| (*sql, descending))
        .ok_or_else(|| {
            let keys: Vec<&str> = sorts.iter().map(|(key, _)| *key).collect();
            ApiError::bad_request(
                ErrorCode::InvalidSort,
                format!("cannot sort by {name:?}; use one of {}", keys.join(", ")),
            )
        })
}
