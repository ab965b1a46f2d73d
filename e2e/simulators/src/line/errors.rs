//! Messaging API error answers: `{"message": ..., "details": [...]}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error as LINE reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub status: u16,
    pub message: String,
    /// `(property, message)` pairs.
    pub details: Vec<(String, String)>,
    /// Adds `Retry-After` (LINE itself sends none; for tests of the header).
    pub retry_after: Option<u64>,
}

impl LineError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// 400 with one detail, as LINE answers a request body it rejects.
    pub fn invalid(property: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            details: vec![(property.into(), message.into())],
            ..Self::new(400, "The request body has 1 error(s)")
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "Authentication failed. Confirm that the access token in the authorization header is valid.",
        )
    }

    pub fn not_found() -> Self {
        Self::new(404, "Not found")
    }

    pub fn invalid_reply_token() -> Self {
        Self::new(400, "Invalid reply token")
    }

    pub fn rate_limited() -> Self {
        Self::new(
            429,
            "The API rate limit has been exceeded. Try again later.",
        )
    }

    pub fn monthly_limit() -> Self {
        Self::new(429, "You have reached your monthly limit.")
    }

    pub fn body(&self) -> Value {
        let mut body = json!({"message": self.message});
        if !self.details.is_empty() {
            body["details"] = self
                .details
                .iter()
                .map(|(property, message)| json!({"message": message, "property": property}))
                .collect();
        }
        body
    }
}

impl IntoResponse for LineError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
