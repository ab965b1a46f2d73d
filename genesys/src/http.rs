//! Reading a Genesys answer that is not a success.

use std::time::Duration;

use crate::error::{ApiFailure, ErrorBody};

/// `Retry-After` in seconds (the form Genesys sends); an HTTP-date or a
/// missing header gives None and the caller falls back to its back-off.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Turns a non-success response into the failure it describes.
pub async fn read_failure(response: reqwest::Response) -> ApiFailure {
    let status = response.status().as_u16();
    if status == 429 {
        return ApiFailure::RateLimited {
            retry_after: retry_after(&response),
        };
    }
    let text = response.text().await.unwrap_or_default();
    ApiFailure::Status {
        status,
        body: ErrorBody::from_response_text(&text),
    }
}
