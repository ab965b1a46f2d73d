//! Slack Web API calls (HTTP I/O). Errors name the method, never the token.

use chrono::Utc;
use serde_json::Value;
use um_config::Secret;

use super::errors::classify;
use super::outbound::FileUpload;
use super::types::ApiAnswer;
use crate::machinery::http_client::{retry_after, transport_error};
use crate::platform::DeliveryError;

/// The Web API of one workspace (its bot token).
pub struct SlackApi<'a> {
    pub http: &'a reqwest::Client,
    /// Slack's host (`https://slack.com`); methods are under `/api/`.
    pub base_url: &'a str,
    pub token: &'a Secret,
}

/// A failed Web API call: Slack's error code, when it gave one, and what
/// it means for the delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{outcome}")]
pub struct MethodError {
    pub code: Option<String>,
    pub outcome: DeliveryError,
}

impl MethodError {
    fn without_code(outcome: DeliveryError) -> Self {
        Self {
            code: None,
            outcome,
        }
    }

    /// Slack refused the call for the install's scopes or token type: the
    /// app may not do this in the workspace, whatever the arguments.
    pub fn is_not_permitted(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("missing_scope" | "not_allowed_token_type")
        )
    }
}

impl From<MethodError> for DeliveryError {
    fn from(error: MethodError) -> Self {
        error.outcome
    }
}

/// Reads a Web API answer: 429 and `ok:false` become delivery errors.
pub async fn read_answer(
    method: &str,
    response: reqwest::Response,
) -> Result<ApiAnswer, MethodError> {
    let status = response.status();
    let after = retry_after(response.headers(), Utc::now());
    let text = response
        .text()
        .await
        .map_err(|error| MethodError::without_code(transport_error(method, &error)))?;
    let answer: Option<ApiAnswer> = serde_json::from_str(&text).ok();
    let failed = |code: Option<String>| MethodError {
        outcome: classify(method, status.as_u16(), code.as_deref(), after),
        code,
    };
    if !status.is_success() {
        return Err(failed(answer.and_then(|a| a.error)));
    }
    match answer {
        Some(answer) if answer.ok => Ok(answer),
        Some(answer) => Err(failed(answer.error)),
        None => Err(MethodError::without_code(DeliveryError::retry(format!(
            "{method}: answer is not Slack JSON (HTTP {status})"
        )))),
    }
}

impl SlackApi<'_> {
    fn url(&self, method: &str) -> String {
        format!("{}/api/{method}", self.base_url)
    }

    /// A method taking a JSON body (`chat.postMessage`).
    pub async fn call_json(&self, method: &str, body: &Value) -> Result<ApiAnswer, MethodError> {
        let response = self
            .http
            .post(self.url(method))
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|error| MethodError::without_code(transport_error(method, &error)))?;
        read_answer(method, response).await
    }

    /// A method taking form arguments (the `files.*` upload methods).
    pub async fn call_form(
        &self,
        method: &str,
        form: &[(&str, String)],
    ) -> Result<ApiAnswer, MethodError> {
        let response = self
            .http
            .post(self.url(method))
            .bearer_auth(self.token.expose())
            .form(form)
            .send()
            .await
            .map_err(|error| MethodError::without_code(transport_error(method, &error)))?;
        read_answer(method, response).await
    }
}

/// The `files.completeUploadExternal` arguments sharing one uploaded file.
pub fn complete_form(upload: &FileUpload, file_id: &str) -> Vec<(&'static str, String)> {
    let title = upload.title.as_deref().unwrap_or(&upload.filename);
    let files = serde_json::json!([{"id": file_id, "title": title}]);
    let mut form = vec![
        ("files", files.to_string()),
        ("channel_id", upload.channel.clone()),
    ];
    if let Some(thread_ts) = &upload.thread_ts {
        form.push(("thread_ts", thread_ts.clone()));
    }
    if let Some(comment) = &upload.initial_comment {
        form.push(("initial_comment", comment.clone()));
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_shares_into_channel_thread_with_comment() {
        let upload = FileUpload {
            channel: "C1".into(),
            thread_ts: Some("1700000001.000100".into()),
            url: "https://cdn.example/a.pdf".into(),
            filename: "a.pdf".into(),
            mime: "application/pdf".into(),
            title: None,
            initial_comment: Some("the terms".into()),
            size_bytes: None,
            fallback: None,
        };
        let form = complete_form(&upload, "F1");
        let get = |key: &str| {
            form.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("channel_id"), Some("C1"));
        assert_eq!(get("thread_ts"), Some("1700000001.000100"));
        assert_eq!(get("initial_comment"), Some("the terms"));
        let files: Value = serde_json::from_str(get("files").unwrap()).unwrap();
        assert_eq!(files, serde_json::json!([{"id": "F1", "title": "a.pdf"}]));
        let top_level = FileUpload {
            thread_ts: None,
            initial_comment: None,
            ..upload
        };
        let form = complete_form(&top_level, "F1");
        assert!(
            form.iter()
                .all(|(k, _)| *k != "thread_ts" && *k != "initial_comment")
        );
    }

    #[test]
    fn scope_refusals_are_told_apart() {
        let error = |code: &str| MethodError {
            code: Some(code.to_owned()),
            outcome: classify("files.getUploadURLExternal", 200, Some(code), None),
        };
        assert!(error("missing_scope").is_not_permitted());
        assert!(error("not_allowed_token_type").is_not_permitted());
        assert!(!error("not_in_channel").is_not_permitted());
        assert!(!MethodError::without_code(DeliveryError::retry("x")).is_not_permitted());
    }
}
