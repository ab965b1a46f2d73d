//! Guest side: posts events to a channel's webhook, signed with the
//! channel secret, and redelivers them (same `webhookEventId`,
//! `deliveryContext.isRedelivery: true`) while the webhook fails.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::state::LineState;
use super::{WebhookAttempt, WebhookDelivery};
use crate::SimError;
use crate::recording::lock;

/// base64(HMAC-SHA256(channel secret, body)).
pub(crate) fn signature(channel_secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(channel_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn target(state: &LineState, channel_id: &str) -> Result<(String, String, String), SimError> {
    let channels = lock(&state.channels);
    let channel = channels
        .get(channel_id)
        .ok_or_else(|| SimError::UnknownBot(channel_id.to_owned()))?;
    let url = channel
        .webhook
        .clone()
        .ok_or_else(|| SimError::NoWebhook(channel_id.to_owned()))?;
    Ok((
        url,
        channel.spec.channel_secret.clone(),
        channel.spec.bot_user_id.clone(),
    ))
}

async fn post(
    state: &LineState,
    url: &str,
    body: Vec<u8>,
    signature: Option<&str>,
    timeout: std::time::Duration,
) -> (Option<u16>, Option<String>) {
    let mut request = state
        .http
        .post(url)
        .timeout(timeout)
        .header("Content-Type", "application/json; charset=utf-8")
        .header("User-Agent", "LineBotWebhook/2.0")
        .body(body);
    if let Some(signature) = signature {
        request = request.header("X-Line-Signature", signature);
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
        Ok(response) => (
            Some(response.status().as_u16()),
            Some(format!("webhook answered {}", response.status())),
        ),
        Err(error) if error.is_timeout() => (None, Some("Request timeout".to_owned())),
        Err(error) if error.is_connect() => (None, Some("Connection failed".to_owned())),
        Err(error) => (None, Some(error.to_string())),
    }
}

pub(crate) async fn send_events(
    state: &LineState,
    channel_id: &str,
    mut events: Vec<Value>,
) -> Result<WebhookDelivery, SimError> {
    let (url, secret, destination) = target(state, channel_id)?;
    let policy = lock(&state.config).redelivery;
    let event_ids: Vec<String> = events
        .iter()
        .filter_map(|event| event["webhookEventId"].as_str().map(str::to_owned))
        .collect();
    let mut attempts = Vec::new();
    let mut body = Value::Null;
    for attempt in 0..policy.max_attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(policy.interval).await;
            for event in &mut events {
                event["deliveryContext"] = json!({"isRedelivery": true});
            }
        }
        body = json!({"destination": destination, "events": events});
        let bytes =
            serde_json::to_vec(&body).map_err(|e| SimError::InvalidUpdate(e.to_string()))?;
        let signature = signature(&secret, &bytes);
        let (status, error) = post(state, &url, bytes, Some(&signature), policy.timeout).await;
        let record = WebhookAttempt {
            channel_id: channel_id.to_owned(),
            url: url.clone(),
            attempt,
            redelivery: attempt > 0,
            event_ids: event_ids.clone(),
            status,
            error,
        };
        state.webhooks.push(record.clone());
        let done = record.succeeded();
        attempts.push(record);
        if done {
            break;
        }
    }
    let delivered = attempts.last().is_some_and(WebhookAttempt::succeeded);
    Ok(WebhookDelivery {
        body,
        delivered,
        attempts,
    })
}

pub(crate) async fn post_raw(
    state: &LineState,
    channel_id: &str,
    body: Vec<u8>,
    signature: Option<&str>,
) -> Result<Option<u16>, SimError> {
    let (url, _, _) = target(state, channel_id)?;
    let timeout = lock(&state.config).redelivery.timeout;
    let (status, _) = post(state, &url, body, signature, timeout).await;
    Ok(status)
}
