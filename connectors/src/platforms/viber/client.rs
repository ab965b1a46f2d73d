//! Calls to the Viber REST Bot API: `POST <base>/pa/<method>` with
//! `X-Viber-Auth-Token`. The token travels in a header only, and no error
//! carries it.

use std::time::Duration;

use http::HeaderMap;
use serde_json::Value;
use um_config::Secret;

use super::errors::classify_status;
use super::types::Answer;
use crate::machinery::http_client::classify_response;
use crate::platform::DeliveryError;

pub const AUTH_HEADER: &str = "X-Viber-Auth-Token";
pub const DEFAULT_API_BASE: &str = "https://chatapi.viber.com";

#[derive(Debug, thiserror::Error)]
pub enum ViberApiError {
    #[error("Viber {method}: {detail}")]
    Transport { method: String, detail: String },
    #[error("Viber {method}: {delivery}")]
    Http {
        method: String,
        status: u16,
        delivery: DeliveryError,
    },
    #[error("Viber {method} answered status {status}: {message}")]
    Status {
        method: String,
        status: i64,
        message: String,
    },
}

impl ViberApiError {
    pub fn into_delivery_error(self) -> DeliveryError {
        match self {
            ViberApiError::Transport { method, detail } => {
                DeliveryError::retry(format!("Viber {method}: {detail}"))
            }
            ViberApiError::Http { delivery, .. } => delivery,
            ViberApiError::Status {
                method,
                status,
                message,
            } => classify_status(&method, status, &message),
        }
    }
}

/// One bot (public account) of one tenant.
pub struct ViberApi<'a> {
    pub http: &'a reqwest::Client,
    pub base_url: &'a str,
    pub token: &'a Secret,
}

fn transport(method: &str, error: &reqwest::Error) -> ViberApiError {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    ViberApiError::Transport {
        method: method.to_owned(),
        detail: kind.to_owned(),
    }
}

impl ViberApi<'_> {
    /// The answer of a call Viber accepted (`status` 0).
    pub async fn call(
        &self,
        method: &str,
        body: &Value,
        timeout: Option<Duration>,
    ) -> Result<Answer, ViberApiError> {
        let mut request = self
            .http
            .post(format!(
                "{}/pa/{method}",
                self.base_url.trim_end_matches('/')
            ))
            .header(AUTH_HEADER, self.token.expose())
            .json(body);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.map_err(|e| transport(method, &e))?;
        let status = response.status();
        let headers: HeaderMap = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| transport(method, &e))?;
        if let Err(delivery) = classify_response(status, &headers, &format!("Viber {method}")) {
            return Err(ViberApiError::Http {
                method: method.to_owned(),
                status: status.as_u16(),
                delivery,
            });
        }
        let answer: Answer =
            serde_json::from_slice(&bytes).map_err(|e| ViberApiError::Transport {
                method: method.to_owned(),
                detail: format!("answer is not a Viber answer: {e}"),
            })?;
        if answer.status != 0 {
            return Err(ViberApiError::Status {
                method: method.to_owned(),
                status: answer.status,
                message: answer.status_message,
            });
        }
        Ok(answer)
    }
}
