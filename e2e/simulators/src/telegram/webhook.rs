//! Guest side: turns an `UpdateSpec` into an Update and posts it to the
//! bot's webhook with the secret header, redelivering while it fails.

use std::sync::Arc;

use serde_json::{Value, json};

use super::state::{Chat, TelegramState, unix_now};
use super::updates::{Body, UpdateSpec, assemble};
use super::{DeliveryAttempt, DeliveryResult, UpdateDelivery};
use crate::SimError;
use crate::recording::lock;

pub(crate) async fn send_update(
    state: &Arc<TelegramState>,
    token: &str,
    spec: UpdateSpec,
) -> Result<UpdateDelivery, SimError> {
    let (url, secret, gate, update_id) = {
        let mut bots = lock(&state.bots);
        let bot = bots
            .get_mut(token)
            .ok_or_else(|| SimError::UnknownBot(bot_id(token)))?;
        let hook = bot
            .webhook
            .as_ref()
            .ok_or_else(|| SimError::NoWebhook(bot_id(token)))?;
        let (url, secret, gate) = (
            hook.url.clone(),
            hook.secret_token.clone(),
            hook.gate.clone(),
        );
        let update_id = spec.update_id.unwrap_or(bot.next_update_id);
        bot.next_update_id = bot.next_update_id.max(update_id + 1);
        bot.pending += 1;
        (url, secret, gate, update_id)
    };
    let update = build(state, &spec, update_id);
    state.updates.push(update.clone());
    let body =
        serde_json::to_vec(&update).map_err(|error| SimError::InvalidUpdate(error.to_string()))?;
    let attempts = {
        // Held across retries: with max_connections = 1 later updates wait,
        // which keeps delivery in order like Telegram's.
        let _permit = gate
            .acquire_owned()
            .await
            .map_err(|_| SimError::NoWebhook(bot_id(token)))?;
        deliver(state, token, update_id, &url, secret.as_deref(), body).await
    };
    if let Some(bot) = lock(&state.bots).get_mut(token) {
        bot.pending = bot.pending.saturating_sub(1);
    }
    let delivered = attempts.last().is_some_and(DeliveryResult::succeeded);
    Ok(UpdateDelivery {
        update_id,
        update,
        delivered,
        attempts,
    })
}

fn bot_id(token: &str) -> String {
    token.split(':').next().unwrap_or_default().to_owned()
}

/// Numbers the message in its chat, registers the chat and any callback
/// query id, and assembles the Update.
fn build(state: &TelegramState, spec: &UpdateSpec, update_id: i64) -> Value {
    let chat_id = spec.chat_id();
    let message_id = match (chat_id, spec.message_id) {
        (_, Some(id)) => id,
        (Some(chat_id), None) if matches!(spec.body, Some(Body::Message(_))) => {
            let mut chats = lock(&state.chats);
            let chat_json = spec
                .from
                .as_ref()
                .map(|guest| guest.chat_json())
                .unwrap_or_else(|| json!({"id": chat_id, "type": "private"}));
            let chat = chats.entry(chat_id).or_insert_with(|| Chat::new(chat_json));
            let id = chat.next_message_id;
            chat.next_message_id += 1;
            id
        }
        _ => 0,
    };
    if let Some(chat_id) = chat_id {
        let mut chats = lock(&state.chats);
        let raw_chat = spec
            .raw
            .as_ref()
            .map(|raw| raw["message"]["chat"].clone())
            .filter(Value::is_object);
        let chat_json = spec
            .from
            .as_ref()
            .map(|guest| guest.chat_json())
            .or(raw_chat)
            .unwrap_or_else(|| json!({"id": chat_id, "type": "private"}));
        chats.entry(chat_id).or_insert_with(|| Chat::new(chat_json));
    }
    if let Some(raw) = &spec.raw
        && let Some(id) = raw["callback_query"]["id"].as_str()
    {
        lock(&state.callback_queries).insert(id.to_owned());
    }
    let callback = match &spec.body {
        Some(Body::CallbackQuery { message_id, .. }) => {
            let id = format!(
                "{}",
                uuid::Uuid::new_v4().as_u128() % 10_000_000_000_000_000_000
            );
            lock(&state.callback_queries).insert(id.clone());
            let message = message_id.and_then(|wanted| {
                state
                    .sent
                    .snapshot()
                    .into_iter()
                    .find(|sent| {
                        Some(sent.chat_id) == chat_id
                            && sent.message["message_id"].as_i64() == Some(wanted)
                    })
                    .map(|sent| sent.message)
            });
            Some((id, message))
        }
        _ => None,
    };
    assemble(spec, update_id, message_id, unix_now(), callback)
}

async fn deliver(
    state: &TelegramState,
    token: &str,
    update_id: i64,
    url: &str,
    secret: Option<&str>,
    body: Vec<u8>,
) -> Vec<DeliveryResult> {
    let policy = lock(&state.config).redelivery;
    let body = bytes::Bytes::from(body);
    let mut results = Vec::new();
    for attempt in 0..policy.max_attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(policy.interval).await;
        }
        let mut request = state
            .http
            .post(url)
            .timeout(policy.timeout)
            .header("Content-Type", "application/json")
            .body(body.clone());
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let result = match request.send().await {
            Ok(response) => {
                let status = response.status();
                DeliveryResult {
                    status: Some(status.as_u16()),
                    error: (!status.is_success()).then(|| {
                        format!(
                            "Wrong response from the webhook: {} {}",
                            status.as_u16(),
                            status.canonical_reason().unwrap_or_default()
                        )
                    }),
                }
            }
            Err(error) if error.is_timeout() => DeliveryResult {
                status: None,
                error: Some("Read timeout expired".to_owned()),
            },
            Err(error) if error.is_connect() => DeliveryResult {
                status: None,
                error: Some("Connection refused".to_owned()),
            },
            Err(error) => DeliveryResult {
                status: None,
                error: Some(error.to_string()),
            },
        };
        if let Some(message) = &result.error
            && let Some(bot) = lock(&state.bots).get_mut(token)
        {
            bot.last_error = Some((unix_now(), message.clone()));
        }
        state.deliveries.push(DeliveryAttempt {
            token: token.to_owned(),
            update_id,
            attempt,
            result: result.clone(),
        });
        let done = result.succeeded();
        results.push(result);
        if done {
            break;
        }
    }
    results
}
