//! HTTP calls to the Messaging API. Credentials travel only in headers or
//! form bodies; no URL or error text carries one.

use std::time::Duration;

use serde_json::{Value, json};
use um_config::Secret;

use super::channel::{Channel, Endpoints};
use super::errors;
use super::types::{BotInfo, ErrorBody, IssuedToken, Profile, SendAnswer};
use crate::machinery::store::Store;
use crate::platform::DeliveryError;

/// Store kind of issued (short-lived) channel access tokens.
const TOKEN_KIND: &str = "line-token";
/// Re-issue this long before LINE's `expires_in` runs out.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum LineCallError {
    #[error("LINE {step}: {detail}")]
    Transport { step: &'static str, detail: String },
    #[error("LINE {step} answered HTTP {status}: {}", body.message)]
    Status {
        step: &'static str,
        status: u16,
        retry_after: Option<Duration>,
        body: ErrorBody,
    },
    #[error("LINE {step}: {detail}")]
    Config { step: &'static str, detail: String },
}

impl LineCallError {
    pub fn into_delivery_error(self) -> DeliveryError {
        match self {
            LineCallError::Transport { step, detail } => {
                DeliveryError::retry(format!("LINE {step}: {detail}"))
            }
            LineCallError::Status {
                step,
                status,
                retry_after,
                body,
            } => errors::classify(step, status, retry_after, &body),
            LineCallError::Config { step, detail } => DeliveryError::permanent(
                crate::machinery::envelope::ReasonCode::GeneralError,
                format!("LINE {step}: {detail}"),
            ),
        }
    }
}

fn transport(step: &'static str, error: reqwest::Error) -> LineCallError {
    let error = error.without_url();
    LineCallError::Transport {
        step,
        detail: error.to_string(),
    }
}

async fn status_error(step: &'static str, response: reqwest::Response) -> LineCallError {
    let status = response.status().as_u16();
    let retry_after =
        crate::machinery::http_client::retry_after(response.headers(), chrono::Utc::now());
    let body = response
        .bytes()
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    LineCallError::Status {
        step,
        status,
        retry_after,
        body,
    }
}

/// The channel access token: the long-lived one, or a short-lived one
/// issued with the channel id and secret and cached in Redis.
pub async fn access_token(
    http: &reqwest::Client,
    store: &Store,
    channel: &Channel<'_>,
) -> Result<Secret, LineCallError> {
    if let Some(token) = channel.access_token {
        return Ok(token.clone());
    }
    let Some(channel_id) = channel.channel_id else {
        return Err(LineCallError::Config {
            step: "access token",
            detail: "neither channelAccessToken nor channelId is configured".to_owned(),
        });
    };
    if let Ok(Some(cached)) = store.get(channel.tenant, TOKEN_KIND, channel_id).await {
        return Ok(Secret::new(cached));
    }
    let response = http
        .post(format!("{}/v2/oauth/accessToken", channel.endpoints.api))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", channel_id),
            ("client_secret", channel.channel_secret.expose()),
        ])
        .send()
        .await
        .map_err(|e| transport("issue access token", e))?;
    if !response.status().is_success() {
        return Err(status_error("issue access token", response).await);
    }
    let issued: IssuedToken = response
        .json()
        .await
        .map_err(|e| transport("issue access token", e))?;
    let ttl = Duration::from_secs(issued.expires_in)
        .checked_sub(TOKEN_MARGIN)
        .filter(|ttl| !ttl.is_zero());
    if let Some(ttl) = ttl
        && let Err(error) = store
            .set(
                channel.tenant,
                TOKEN_KIND,
                channel_id,
                &issued.access_token,
                ttl,
            )
            .await
    {
        tracing::warn!(tenant = channel.tenant, error = %error, "LINE access token not cached");
    }
    Ok(Secret::new(issued.access_token))
}

/// Drops a cached token LINE refused, so the next attempt issues a new one.
pub async fn forget_token(store: &Store, channel: &Channel<'_>) {
    if channel.access_token.is_none()
        && let Some(channel_id) = channel.channel_id
        && let Err(error) = store.delete(channel.tenant, TOKEN_KIND, channel_id).await
    {
        tracing::warn!(tenant = channel.tenant, error = %error, "LINE access token not forgotten");
    }
}

/// A retry key for part `index` of envelope `envelope_id`: a UUID derived
/// from both, so a redelivered envelope repeats the key and LINE (409)
/// refuses to send it twice.
pub fn retry_key(envelope_id: &str, index: usize) -> String {
    let digest = crate::machinery::verify::hmac_sha256(
        b"um-line-retry-key",
        format!("{envelope_id}#{index}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// How a send went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// LINE accepted it now; ids of the sent messages.
    Accepted(Vec<String>),
    /// The retry key was accepted before (409): it is sent, not again.
    AlreadyAccepted(Vec<String>),
}

impl Sent {
    pub fn last_id(&self) -> Option<String> {
        match self {
            Sent::Accepted(ids) | Sent::AlreadyAccepted(ids) => ids.last().cloned(),
        }
    }
}

pub struct LineApi<'a> {
    pub http: &'a reqwest::Client,
    pub endpoints: &'a Endpoints,
    pub token: &'a Secret,
}

impl LineApi<'_> {
    async fn post(
        &self,
        step: &'static str,
        path: &str,
        body: &Value,
        retry_key: Option<&str>,
    ) -> Result<Sent, LineCallError> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.endpoints.api))
            .bearer_auth(self.token.expose())
            .json(body);
        if let Some(key) = retry_key {
            request = request.header("X-Line-Retry-Key", key);
        }
        let response = request.send().await.map_err(|e| transport(step, e))?;
        let status = response.status().as_u16();
        if retry_key.is_some() && status == 409 {
            let body: ErrorBody = response.json().await.unwrap_or_default();
            return Ok(Sent::AlreadyAccepted(
                body.sent_messages.into_iter().map(|m| m.id).collect(),
            ));
        }
        if !response.status().is_success() {
            return Err(status_error(step, response).await);
        }
        let answer: SendAnswer = response.json().await.unwrap_or_default();
        Ok(Sent::Accepted(
            answer.sent_messages.into_iter().map(|m| m.id).collect(),
        ))
    }

    /// `POST /v2/bot/message/reply` (no retry key: LINE refuses one there).
    pub async fn reply(
        &self,
        reply_token: &str,
        messages: &[Value],
    ) -> Result<Sent, LineCallError> {
        self.post(
            "reply",
            "/v2/bot/message/reply",
            &json!({"replyToken": reply_token, "messages": messages}),
            None,
        )
        .await
    }

    /// `POST /v2/bot/message/push` with `X-Line-Retry-Key`.
    pub async fn push(
        &self,
        to: &str,
        messages: &[Value],
        retry_key: &str,
    ) -> Result<Sent, LineCallError> {
        self.post(
            "push",
            "/v2/bot/message/push",
            &json!({"to": to, "messages": messages}),
            Some(retry_key),
        )
        .await
    }

    /// `GET /v2/bot/profile/{userId}`.
    pub async fn profile(
        &self,
        user_id: &str,
        timeout: Duration,
    ) -> Result<Profile, LineCallError> {
        let response = self
            .http
            .get(format!("{}/v2/bot/profile/{user_id}", self.endpoints.api))
            .bearer_auth(self.token.expose())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| transport("profile", e))?;
        if !response.status().is_success() {
            return Err(status_error("profile", response).await);
        }
        response.json().await.map_err(|e| transport("profile", e))
    }

    /// `GET https://api-data.line.me/v2/bot/message/{messageId}/content`.
    pub async fn content(&self, message_id: &str) -> Result<reqwest::Response, LineCallError> {
        let response = self
            .http
            .get(format!(
                "{}/v2/bot/message/{message_id}/content",
                self.endpoints.data
            ))
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| transport("content", e))?;
        if !response.status().is_success() {
            return Err(status_error("content", response).await);
        }
        Ok(response)
    }

    /// `PUT /v2/bot/channel/webhook/endpoint`: where LINE posts events.
    pub async fn set_webhook_endpoint(&self, endpoint: &str) -> Result<(), LineCallError> {
        let response = self
            .http
            .put(format!(
                "{}/v2/bot/channel/webhook/endpoint",
                self.endpoints.api
            ))
            .bearer_auth(self.token.expose())
            .json(&json!({ "endpoint": endpoint }))
            .send()
            .await
            .map_err(|e| transport("set webhook endpoint", e))?;
        if !response.status().is_success() {
            return Err(status_error("set webhook endpoint", response).await);
        }
        Ok(())
    }

    /// `GET /v2/bot/info`: the bot's basic id, for the add-friend QR code.
    pub async fn bot_info(&self) -> Result<BotInfo, LineCallError> {
        let response = self
            .http
            .get(format!("{}/v2/bot/info", self.endpoints.api))
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| transport("bot info", e))?;
        if !response.status().is_success() {
            return Err(status_error("bot info", response).await);
        }
        response.json().await.map_err(|e| transport("bot info", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_keys_are_stable_uuids_per_part() {
        let key = retry_key("shop.acme:gc:m1", 0);
        let parsed = uuid::Uuid::parse_str(&key).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(key, retry_key("shop.acme:gc:m1", 0));
        assert_ne!(key, retry_key("shop.acme:gc:m1", 1));
        assert_ne!(key, retry_key("shop.acme:gc:m2", 0));
    }
}
