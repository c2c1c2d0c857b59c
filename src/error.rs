//! The API's error: an HTTP status, a stable machine-readable code and a sentence for people.
//! Rendered as `{"error": {"code": "...", "message": "..."}}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::livekit::client::LivekitError;
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429 answers.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// Same status, a more specific code.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound("user") => ApiError::not_found("user_not_found", "no such user"),
            StoreError::NotFound("room") => ApiError::not_found("room_not_found", "no such room"),
            StoreError::NotFound(what) => ApiError::not_found("not_found", format!("{what} not found")),
            StoreError::Conflict(m) => ApiError::conflict("conflict", m),
            StoreError::Invalid(m) => ApiError::bad_request("invalid_request", m),
            StoreError::WriteFailed { disk_full: true, .. } => {
                let mut e = ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage", "the server's disk is full; nothing was changed. Reading still works");
                e.retry_after = Some(30);
                e
            }
            StoreError::WriteFailed { message, .. } => {
                let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_read_only", format!("the database cannot write ({message}); nothing was changed. Reading still works"));
                e.retry_after = Some(10);
                e
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the database could not complete the request")
            }
        }
    }
}

impl From<LivekitError> for ApiError {
    fn from(e: LivekitError) -> Self {
        match e {
            LivekitError::Unavailable { .. } => {
                tracing::warn!(error = %e, "LiveKit call failed");
                ApiError::new(StatusCode::BAD_GATEWAY, "livekit_unavailable", e.to_string())
            }
            LivekitError::Twirp { ref code, .. } if code == "not_found" => {
                ApiError::not_found("participant_not_found", e.to_string())
            }
            LivekitError::Twirp { ref code, .. } if code == "invalid_argument" || code == "malformed" => {
                ApiError::bad_request("livekit_invalid_argument", e.to_string())
            }
            LivekitError::Twirp { ref code, .. } if code == "unauthenticated" || code == "permission_denied" => {
                ApiError::new(StatusCode::BAD_GATEWAY, "livekit_auth_failed", format!("{e} (do livekit.apiKey/apiSecret match the server's keys?)"))
            }
            other => ApiError::new(StatusCode::BAD_GATEWAY, "livekit_error", other.to_string()),
        }
    }
}

/// The body of every error answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable; each operation in the API document lists the codes it answers.
    pub code: String,
    /// A sentence for people: what went wrong and what to do.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message } };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}
