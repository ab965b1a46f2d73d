//! What Genesys Cloud answers when it refuses a call, and why one HTTP
//! exchange with it failed; never a credential.

use std::time::Duration;

use serde::Deserialize;

/// Genesys' error envelope (`ErrorBody`); only the fields we report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub status: Option<u16>,
    /// OAuth errors use the OAuth field names instead.
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: String,
    #[serde(default)]
    pub description: String,
}

impl ErrorBody {
    /// Parses an error answer; a body that is not JSON is kept as text,
    /// shortened, because it still tells an administrator something.
    pub fn from_response_text(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_else(|_| ErrorBody {
            message: text.chars().take(200).collect(),
            ..ErrorBody::default()
        })
    }

    /// The most useful human text in the body.
    pub fn summary(&self) -> String {
        [
            &self.message,
            &self.error_description,
            &self.description,
            &self.error,
            &self.code,
        ]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| "no error message".to_owned())
    }
}

/// Why one HTTP exchange with Genesys Cloud failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    #[error("HTTP {status}: {}", body.summary())]
    Status { status: u16, body: ErrorBody },
    /// The delay is not in the text: it lands in status conditions, which
    /// must not change with every answer (each change is a write).
    #[error("rate limited (HTTP 429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("cannot reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("unexpected response body: {0}")]
    Decode(#[source] serde_json::Error),
}
