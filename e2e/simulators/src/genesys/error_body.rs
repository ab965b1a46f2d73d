//! Genesys `ErrorBody` answers (and the OAuth endpoint's own error shape).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The `ErrorBody` envelope Genesys returns on 4xx/5xx.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub message: String,
    pub code: String,
    pub status: u16,
    pub context_id: String,
    pub details: Vec<serde_json::Value>,
    pub errors: Vec<serde_json::Value>,
}

impl ErrorBody {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: code.to_owned(),
            status,
            context_id: uuid::Uuid::new_v4().to_string(),
            details: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad.request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not.found", message)
    }

    /// Answer with this body, optionally with `Retry-After` (seconds).
    pub(crate) fn into_response_with_retry(self, retry_after: Option<u64>) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl IntoResponse for ErrorBody {
    fn into_response(self) -> Response {
        self.into_response_with_retry(None)
    }
}

/// A generic error body for an injected fault with the given status.
pub(crate) fn injected(status: u16) -> ErrorBody {
    match status {
        400 => ErrorBody::bad_request(
            "The request could not be understood by the server due to malformed syntax.",
        ),
        401 => ErrorBody::new(401, "bad.credentials", "Invalid login credentials."),
        403 => ErrorBody::new(
            403,
            "missing.permissions",
            "Unable to perform the requested action. You are missing the following permission(s).",
        ),
        404 => ErrorBody::not_found("The requested resource was not found."),
        429 => too_many_requests(),
        503 => ErrorBody::new(503, "service.unavailable", "Service Unavailable"),
        500 => ErrorBody::new(
            500,
            "internal.server.error",
            "The server encountered an unexpected condition which prevented it from fulfilling the request.",
        ),
        other => ErrorBody::new(
            other,
            "simulated.fault",
            format!("Simulated fault with status {other}"),
        ),
    }
}

pub(crate) fn too_many_requests() -> ErrorBody {
    ErrorBody::new(
        429,
        "too.many.requests",
        "Rate limit exceeded the maximum. Please retry after the time given in Retry-After.",
    )
}

/// OAuth endpoint errors use the OAuth2 shape, not ErrorBody.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(serde_json::json!({
            "error": error,
            "description": description,
            "error_description": description,
        })),
    )
        .into_response()
}
