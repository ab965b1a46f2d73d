//! Calls to the Bot API (`POST <base>/bot<token>/<method>`). The token is
//! part of every URL, so no URL ever reaches an error or a log line.

use serde_json::Value;
use um_config::Secret;

use super::errors::classify;
use super::types::{ErrorAnswer, File};
use crate::platform::DeliveryError;

#[derive(Debug, thiserror::Error)]
pub enum BotApiError {
    #[error("Telegram {method}: {detail}")]
    Transport { method: String, detail: String },
    #[error("Telegram {method} answered HTTP {status}: {}", answer.as_ref().map_or("", |a| a.description.as_str()))]
    Rejected {
        method: String,
        status: u16,
        answer: Option<ErrorAnswer>,
    },
}

impl BotApiError {
    pub fn into_delivery_error(self) -> DeliveryError {
        match self {
            BotApiError::Transport { method, detail } => {
                DeliveryError::retry(format!("Telegram {method}: {detail}"))
            }
            BotApiError::Rejected {
                method,
                status,
                answer,
            } => match classify(status, answer.as_ref()) {
                DeliveryError::Permanent { reason, detail } => DeliveryError::Permanent {
                    reason,
                    detail: format!("Telegram {method}: {detail}"),
                },
                retry => retry,
            },
        }
    }
}

/// One bot of one tenant.
pub struct BotApi<'a> {
    pub http: &'a reqwest::Client,
    pub base_url: &'a str,
    pub token: &'a Secret,
}

fn transport(method: &str, error: reqwest::Error) -> BotApiError {
    let error = error.without_url();
    BotApiError::Transport {
        method: method.to_owned(),
        detail: error.to_string(),
    }
}

impl BotApi<'_> {
    fn method_url(&self, method: &str) -> String {
        format!(
            "{}/bot{}/{method}",
            self.base_url.trim_end_matches('/'),
            self.token.expose()
        )
    }

    /// The `result` of a successful call.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, BotApiError> {
        let response = self
            .http
            .post(self.method_url(method))
            .json(body)
            .send()
            .await
            .map_err(|e| transport(method, e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| transport(method, e))?;
        if status.is_success() {
            let answer: Value =
                serde_json::from_slice(&bytes).map_err(|e| BotApiError::Transport {
                    method: method.to_owned(),
                    detail: format!("answer is not JSON: {e}"),
                })?;
            if answer.get("ok").and_then(Value::as_bool) == Some(true) {
                return Ok(answer.get("result").cloned().unwrap_or(Value::Null));
            }
        }
        Err(BotApiError::Rejected {
            method: method.to_owned(),
            status: status.as_u16(),
            answer: serde_json::from_slice(&bytes).ok(),
        })
    }

    pub async fn get_file(&self, file_id: &str) -> Result<File, BotApiError> {
        let result = self
            .call("getFile", &serde_json::json!({ "file_id": file_id }))
            .await?;
        serde_json::from_value(result).map_err(|e| BotApiError::Transport {
            method: "getFile".to_owned(),
            detail: format!("unexpected result: {e}"),
        })
    }

    /// Starts the download of a file `getFile` located.
    pub async fn download(&self, file_path: &str) -> Result<reqwest::Response, BotApiError> {
        let url = format!(
            "{}/file/bot{}/{}",
            self.base_url.trim_end_matches('/'),
            self.token.expose(),
            file_path.trim_start_matches('/')
        );
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| transport("file download", e))?;
        if !response.status().is_success() {
            return Err(BotApiError::Rejected {
                method: "file download".to_owned(),
                status: response.status().as_u16(),
                answer: None,
            });
        }
        Ok(response)
    }
}
