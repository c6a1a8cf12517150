//! `ApiError`: every failure of every route answers `{"error": {code, message, details}}`.
//! 4xx say what the caller did wrong; 5xx are logged with their cause and answered with a
//! generic message and the request id, never the internal text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plantwatch_shared::api::{ErrorBody, ErrorCode, ErrorDetail};
use serde_json::json;

use crate::db::DbError;

tokio::task_local! {
    /// Id of the request being handled, set by the request-context middleware.
    pub static REQUEST_ID: String;
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<serde_json::Value>,
    pub retry_after_secs: Option<u64>,
    /// Cause of a 5xx, logged and never sent.
    pub cause: Option<anyhow::Error>,
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
            cause: None,
        }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 429 with `Retry-After`: `wait` rounded up to whole seconds, so waiting that long works.
    /// Adds a `Retry-After` of `secs`.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn too_many_requests(wait: std::time::Duration) -> Self {
        let retry_after_secs = crate::auth::rate_limit::whole_seconds(wait);
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyAttempts,
            format!("too many failed attempts; try again in {retry_after_secs} s"),
        );
        error.retry_after_secs = Some(retry_after_secs);
        error.details = Some(json!({ "retry_after_secs": retry_after_secs }));
        error
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal server error",
        );
        error.cause = Some(cause.into());
        error
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Names what a 4xx is about, for an answer about many things: `node 7: name: taken`.
    pub fn prefixed(mut self, what: &str) -> Self {
        if self.status.is_client_error() {
            self.message = format!("{what}: {}", self.message);
        }
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = REQUEST_ID.try_with(Clone::clone).ok();
        let (message, details) = if self.status.is_server_error() {
            match &self.cause {
                Some(cause) => tracing::error!(error = format!("{cause:#}"), "Request failed."),
                None => tracing::error!(code = %self.code, "Request failed."),
            }
            let message = match &request_id {
                Some(id) => format!("{} (request id {id})", self.message),
                None => self.message,
            };
            (message, request_id.map(|id| json!({ "request_id": id })))
        } else {
            (self.message, self.details)
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message,
                details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Sqlite(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(error: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(failure, Some(text)) = &error
            && failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        {
            // "UNIQUE constraint failed: users.username" names the field.
            let field = text.rsplit(['.', ' ']).next().unwrap_or("value").to_owned();
            return ApiError::conflict(
                ErrorCode::AlreadyExists,
                format!("that {field} is already taken"),
            )
            .with_details(json!({ "field": field }));
        }
        ApiError::internal(error)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        ApiError::internal(error)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            _ => ErrorCode::InvalidJson,
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(ErrorCode::InvalidPath, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(ErrorCode::InvalidQuery, rejection.body_text())
    }
}

impl ApiError {
    /// The same error with another code.
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = code;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause_and_carry_the_request_id() {
        let response = REQUEST_ID
            .scope("req123".to_owned(), async {
                ApiError::internal(anyhow::anyhow!("no such table: users_secret_internal"))
                    .into_response()
            })
            .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_of(response).await;
        let text = body.to_string();
        assert!(!text.contains("users_secret_internal"), "{text}");
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["details"]["request_id"], "req123");
    }

    #[tokio::test]
    async fn unique_violations_become_409_naming_the_field() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (name TEXT UNIQUE); INSERT INTO t VALUES ('a');")
            .unwrap();
        let error = conn.execute("INSERT INTO t VALUES ('a')", []).unwrap_err();
        let response = ApiError::from(error).into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let body = body_of(response).await;
        assert_eq!(body["error"]["details"]["field"], "name");
    }

    #[tokio::test]
    async fn too_many_requests_sets_retry_after() {
        let response =
            ApiError::too_many_requests(std::time::Duration::from_secs(42)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
    }
}
