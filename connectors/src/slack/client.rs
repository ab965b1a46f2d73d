//! Slack Web API calls (HTTP I/O). Errors name the method, never the token.

use bytes::Bytes;
use chrono::Utc;
use serde_json::Value;
use um_config::Secret;

use super::failure::classify;
use super::types::ApiAnswer;
use crate::http_client::{retry_after, transport_error};
use crate::platform::DeliveryError;

/// The Web API of one workspace (its bot token).
pub struct SlackApi<'a> {
    pub http: &'a reqwest::Client,
    /// Slack's host (`https://slack.com`); methods are under `/api/`.
    pub base_url: &'a str,
    pub token: &'a Secret,
}

/// Reads a Web API answer: 429 and `ok:false` become delivery errors.
pub async fn read_answer(
    method: &str,
    response: reqwest::Response,
) -> Result<ApiAnswer, DeliveryError> {
    let status = response.status();
    let after = retry_after(response.headers(), Utc::now());
    let text = response
        .text()
        .await
        .map_err(|error| transport_error(method, &error))?;
    let answer: Option<ApiAnswer> = serde_json::from_str(&text).ok();
    if !status.is_success() {
        let error = answer.as_ref().and_then(|a| a.error.clone());
        return Err(classify(method, status.as_u16(), error.as_deref(), after));
    }
    match answer {
        Some(answer) if answer.ok => Ok(answer),
        Some(answer) => Err(classify(
            method,
            status.as_u16(),
            answer.error.as_deref(),
            after,
        )),
        None => Err(DeliveryError::retry(format!(
            "{method}: answer is not Slack JSON (HTTP {status})"
        ))),
    }
}

impl SlackApi<'_> {
    fn url(&self, method: &str) -> String {
        format!("{}/api/{method}", self.base_url)
    }

    /// A method taking a JSON body (`chat.postMessage`).
    pub async fn call_json(&self, method: &str, body: &Value) -> Result<ApiAnswer, DeliveryError> {
        let response = self
            .http
            .post(self.url(method))
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|error| transport_error(method, &error))?;
        read_answer(method, response).await
    }

    /// A method taking form arguments (the `files.*` upload methods).
    pub async fn call_form(
        &self,
        method: &str,
        form: &[(&str, String)],
    ) -> Result<ApiAnswer, DeliveryError> {
        let response = self
            .http
            .post(self.url(method))
            .bearer_auth(self.token.expose())
            .form(form)
            .send()
            .await
            .map_err(|error| transport_error(method, &error))?;
        read_answer(method, response).await
    }

    /// Uploads `bytes` into `channel` as one file (the external upload
    /// flow: get an upload URL, post the bytes there, complete).
    pub async fn upload_file(
        &self,
        channel: &str,
        filename: &str,
        title: Option<&str>,
        bytes: Bytes,
    ) -> Result<String, DeliveryError> {
        let step = "files.getUploadURLExternal";
        let answer = self
            .call_form(
                step,
                &[
                    ("filename", filename.to_owned()),
                    ("length", bytes.len().to_string()),
                ],
            )
            .await?;
        let field = |name: &str| {
            answer
                .rest
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| DeliveryError::retry(format!("{step}: answer without {name}")))
        };
        let upload_url = field("upload_url")?;
        let file_id = field("file_id")?;
        let response = self
            .http
            .post(&upload_url)
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .map_err(|error| transport_error("file upload", &error))?;
        crate::http_client::classify_response(
            response.status(),
            response.headers(),
            "file upload",
        )?;
        let files = serde_json::json!([{"id": file_id, "title": title.unwrap_or(filename)}]);
        self.call_form(
            "files.completeUploadExternal",
            &[
                ("files", files.to_string()),
                ("channel_id", channel.to_owned()),
            ],
        )
        .await?;
        Ok(file_id)
    }
}
