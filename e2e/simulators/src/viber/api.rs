//! The `/pa/` methods, media downloads and webhook posting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::callbacks::{CallbackSpec, SIGNATURE_HEADER, sign};
use super::{
    ApiCall, AttemptResult, CallbackDelivery, MediaDownload, MediaFetch, SentMessage, User,
    ViberState,
};
use crate::SimError;
use crate::recording::lock;

const AUTH_HEADER: &str = "x-viber-auth-token";
const MAX_TEXT: usize = 7000;
const MAX_PICTURE_TEXT: usize = 120;
const MAX_TRACKING_DATA: usize = 4096;
const MAX_URL: usize = 2000;
const MAX_SENDER_NAME: usize = 28;

/// A Viber answer: HTTP 200 with `status` and `status_message`.
struct Answer {
    status: i64,
    message: String,
    extra: Value,
}

impl Answer {
    fn ok(extra: Value) -> Self {
        Self {
            status: 0,
            message: "ok".into(),
            extra,
        }
    }

    fn fail(status: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            extra: json!({}),
        }
    }

    fn json(&self) -> Value {
        let mut body = json!({"status": self.status, "status_message": self.message});
        if let (Some(target), Some(extra)) = (body.as_object_mut(), self.extra.as_object()) {
            target.extend(extra.clone());
        }
        body
    }
}

fn status_name(status: i64) -> &'static str {
    match status {
        1 => "invalidUrl",
        2 => "invalidAuthToken",
        3 => "badData",
        4 => "missingData",
        5 => "receiverNotRegistered",
        6 => "receiverNotSubscribed",
        7 => "publicAccountBlocked",
        8 => "publicAccountNotFound",
        9 => "publicAccountSuspended",
        10 => "webhookNotSet",
        11 => "receiverNoSuitableDevice",
        12 => "tooManyRequests",
        13 => "apiVersionNotSupported",
        14 => "incompatibleWithVersion",
        _ => "generalError",
    }
}

pub(crate) async fn method(
    State(state): State<Arc<ViberState>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers
        .get(AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let record = |status: i64, http_status: u16| ApiCall {
        method: method.clone(),
        token: token.clone(),
        body: parsed.clone(),
        status,
        http_status,
    };
    if let Some(fault) = state.take_fault(&method) {
        if let Some(http) = fault.http {
            state.calls.push(record(-1, http));
            let status = StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return status.into_response();
        }
        state.calls.push(record(fault.status, 200));
        return Json(Answer::fail(fault.status, status_name(fault.status)).json()).into_response();
    }
    let answer = if !lock(&state.bots).contains_key(&token) {
        Answer::fail(2, "invalidAuthToken")
    } else if !parsed.is_object() {
        Answer::fail(3, "badData: the body is not a JSON object")
    } else {
        match method.as_str() {
            "set_webhook" => set_webhook(&state, &token, &parsed).await,
            "send_message" => send_message(&state, &token, &parsed).await,
            "get_user_details" => user_details(&state, &token, &parsed),
            "get_account_info" => Answer::ok(json!({
                "id": "pa:simulated", "name": "UM Simulator", "uri": "umsim",
                "webhook": lock(&state.bots).get(&token).and_then(|b| b.webhook.clone()),
                "subscribers_count": lock(&state.bots).get(&token).map_or(0, |b| b.users.len()),
            })),
            _ => Answer::fail(3, format!("badData: unknown method {method}")),
        }
    };
    state.calls.push(record(answer.status, 200));
    Json(answer.json()).into_response()
}

async fn set_webhook(state: &Arc<ViberState>, token: &str, body: &Value) -> Answer {
    let Some(url) = body.get("url").and_then(Value::as_str) else {
        return Answer::fail(4, "missingData: url");
    };
    if url.is_empty() {
        if let Some(bot) = lock(&state.bots).get_mut(token) {
            bot.webhook = None;
        }
        return Answer::ok(json!({}));
    }
    let event_types: Vec<String> = body
        .get("event_types")
        .and_then(Value::as_array)
        .map(|types| {
            types
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // Viber checks the URL with a signed `webhook` callback first.
    let check = json!({
        "event": "webhook",
        "timestamp": unix_ms(),
        "chat_hostname": "SN-SIM_",
        "message_token": state.token(),
    });
    let timeout = lock(&state.options).redelivery.timeout;
    let result = post_signed(state, url, token, &check, timeout).await;
    if !result.succeeded() {
        return Answer::fail(
            1,
            format!(
                "Result[HttpResponse[{}]]",
                result.status.map_or_else(
                    || result.error.clone().unwrap_or_default(),
                    |s| s.to_string()
                )
            ),
        );
    }
    if let Some(bot) = lock(&state.bots).get_mut(token) {
        bot.webhook = Some(url.to_owned());
        bot.event_types.clone_from(&event_types);
    }
    Answer::ok(json!({ "event_types": event_types }))
}

fn user_details(state: &ViberState, token: &str, body: &Value) -> Answer {
    let Some(id) = body.get("id").and_then(Value::as_str) else {
        return Answer::fail(4, "missingData: id");
    };
    let quota = lock(&state.options).user_details_quota;
    let mut bots = lock(&state.bots);
    let Some(user) = bots.get_mut(token).and_then(|bot| bot.users.get_mut(id)) else {
        return Answer::fail(5, "receiverNotRegistered");
    };
    if user.details_calls >= quota {
        return Answer::fail(12, "tooManyRequests");
    }
    user.details_calls += 1;
    Answer::ok(json!({"message_token": state.token(), "user": user.user.details_json()}))
}

fn str_field<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Viber's checks of a message body; `Err` is the failing answer.
fn validate(message: &Value) -> Result<(), Answer> {
    let Some(name) = message.pointer("/sender/name").and_then(Value::as_str) else {
        return Err(Answer::fail(4, "missingData: sender.name"));
    };
    if name.is_empty() || name.chars().count() > MAX_SENDER_NAME {
        return Err(Answer::fail(
            3,
            "badData: sender.name must have 1-28 characters",
        ));
    }
    if message
        .get("tracking_data")
        .and_then(Value::as_str)
        .is_some_and(|t| t.len() > MAX_TRACKING_DATA)
    {
        return Err(Answer::fail(
            3,
            "badData: tracking_data over 4096 characters",
        ));
    }
    let min_api = message
        .get("min_api_version")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let media_ok = |message: &Value| {
        str_field(message, "media").is_some_and(|m| {
            m.len() <= MAX_URL && (m.starts_with("http://") || m.starts_with("https://"))
        })
    };
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "text" => {
            let text =
                str_field(message, "text").ok_or_else(|| Answer::fail(4, "missingData: text"))?;
            if text.chars().count() > MAX_TEXT {
                return Err(Answer::fail(3, "badData: text over 7000 characters"));
            }
        }
        "picture" => {
            if !media_ok(message) {
                return Err(Answer::fail(3, "badData: media"));
            }
            if str_field(message, "text").is_some_and(|t| t.chars().count() > MAX_PICTURE_TEXT) {
                return Err(Answer::fail(3, "badData: picture text over 120 characters"));
            }
        }
        "video" | "file" => {
            if !media_ok(message) || message.get("size").and_then(Value::as_u64).is_none() {
                return Err(Answer::fail(4, "missingData: media and size"));
            }
            if kind == "file" && str_field(message, "file_name").is_none() {
                return Err(Answer::fail(4, "missingData: file_name"));
            }
        }
        "url" => {
            if !media_ok(message) {
                return Err(Answer::fail(3, "badData: media"));
            }
        }
        "location" => {
            let location = message.get("location");
            let coordinate =
                |name: &str| location.and_then(|l| l.get(name)).and_then(Value::as_f64);
            if coordinate("lat").is_none() || coordinate("lon").is_none() {
                return Err(Answer::fail(4, "missingData: location"));
            }
        }
        "contact" => {
            let contact = message.get("contact").cloned().unwrap_or(Value::Null);
            if str_field(&contact, "name").is_none()
                || str_field(&contact, "phone_number").is_none()
            {
                return Err(Answer::fail(4, "missingData: contact"));
            }
        }
        "sticker" => {
            if message.get("sticker_id").and_then(Value::as_i64).is_none() {
                return Err(Answer::fail(4, "missingData: sticker_id"));
            }
        }
        "rich_media" => {
            if min_api < 2 {
                return Err(Answer::fail(
                    14,
                    "incompatibleWithVersion: rich_media needs min_api_version 2",
                ));
            }
            let rich = message.get("rich_media").cloned().unwrap_or(Value::Null);
            let group_rows = rich
                .get("ButtonsGroupRows")
                .and_then(Value::as_u64)
                .unwrap_or(7);
            let group_columns = rich
                .get("ButtonsGroupColumns")
                .and_then(Value::as_u64)
                .unwrap_or(6);
            if !(1..=7).contains(&group_rows) || !(1..=6).contains(&group_columns) {
                return Err(Answer::fail(3, "badData: ButtonsGroupRows/Columns"));
            }
            let buttons = rich
                .get("Buttons")
                .and_then(Value::as_array)
                .filter(|b| !b.is_empty());
            let Some(buttons) = buttons else {
                return Err(Answer::fail(4, "missingData: rich_media.Buttons"));
            };
            if buttons.len() as u64 > 6 * group_rows * group_columns {
                return Err(Answer::fail(3, "badData: too many rich_media buttons"));
            }
            for button in buttons {
                validate_button(button, group_rows, group_columns)?;
            }
        }
        _ => return Err(Answer::fail(3, format!("badData: message type {kind:?}"))),
    }
    if let Some(keyboard) = message.get("keyboard") {
        if keyboard.get("Type").and_then(Value::as_str) != Some("keyboard") {
            return Err(Answer::fail(
                3,
                "badData: keyboard.Type must be \"keyboard\"",
            ));
        }
        let buttons = keyboard
            .get("Buttons")
            .and_then(Value::as_array)
            .filter(|b| !b.is_empty());
        let Some(buttons) = buttons else {
            return Err(Answer::fail(4, "missingData: keyboard.Buttons"));
        };
        for button in buttons {
            validate_button(button, 2, 6)?;
        }
    }
    Ok(())
}

fn validate_button(button: &Value, max_rows: u64, max_columns: u64) -> Result<(), Answer> {
    let columns = button.get("Columns").and_then(Value::as_u64).unwrap_or(6);
    let rows = button.get("Rows").and_then(Value::as_u64).unwrap_or(1);
    if !(1..=max_columns).contains(&columns) || !(1..=max_rows).contains(&rows) {
        return Err(Answer::fail(3, "badData: button Columns/Rows out of range"));
    }
    let action = button
        .get("ActionType")
        .and_then(Value::as_str)
        .unwrap_or("reply");
    if !matches!(
        action,
        "reply" | "open-url" | "location-picker" | "share-phone" | "none"
    ) {
        return Err(Answer::fail(3, format!("badData: ActionType {action:?}")));
    }
    if matches!(action, "reply" | "open-url") && str_field(button, "ActionBody").is_none() {
        return Err(Answer::fail(4, "missingData: ActionBody"));
    }
    Ok(())
}

async fn send_message(state: &Arc<ViberState>, token: &str, message: &Value) -> Answer {
    let Some(receiver) = str_field(message, "receiver").map(str::to_owned) else {
        return Answer::fail(4, "missingData: receiver");
    };
    {
        let bots = lock(&state.bots);
        let Some(bot) = bots.get(token) else {
            return Answer::fail(2, "invalidAuthToken");
        };
        if bot.webhook.is_none() {
            return Answer::fail(10, "webhookNotSet");
        }
        match bot.users.get(&receiver) {
            None => return Answer::fail(5, "receiverNotRegistered"),
            Some(user) if !user.subscribed => return Answer::fail(6, "receiverNotSubscribed"),
            Some(_) => {}
        }
    }
    if let Err(answer) = validate(message) {
        return answer;
    }
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let media = match (kind, str_field(message, "media")) {
        ("picture" | "video" | "file", Some(url)) => Some(fetch(state, url).await),
        _ => None,
    };
    let message_token = state.token();
    if let Some(user) = lock(&state.bots)
        .get_mut(token)
        .and_then(|bot| bot.users.get_mut(&receiver))
    {
        // Viber echoes the tracking data of the last message in the reply.
        user.tracking_data = message
            .get("tracking_data")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    state.sent.push(SentMessage {
        token: token.to_owned(),
        receiver,
        message_token,
        message: message.clone(),
        media,
    });
    Answer::ok(json!({ "message_token": message_token }))
}

async fn fetch(state: &ViberState, url: &str) -> MediaFetch {
    let response = state
        .http
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match response {
        Ok(response) => {
            let http_status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let bytes = response.bytes().await.map(|b| b.len() as u64).unwrap_or(0);
            MediaFetch {
                url: url.to_owned(),
                http_status,
                bytes_len: bytes,
                content_type,
            }
        }
        Err(_) => MediaFetch {
            url: url.to_owned(),
            http_status: 0,
            bytes_len: 0,
            content_type: String::new(),
        },
    }
}

pub(crate) async fn media(
    State(state): State<Arc<ViberState>>,
    Path(id): Path<String>,
) -> Response {
    let found = lock(&state.media)
        .get(&id)
        .filter(|m| m.expires > Instant::now())
        .map(|m| (m.mime.clone(), m.bytes.clone()));
    let status = if found.is_some() { 200 } else { 404 };
    state.downloads.push(MediaDownload {
        id,
        http_status: status,
    });
    match found {
        Some((mime, bytes)) => ([("content-type", mime)], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub(crate) fn unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn post_signed(
    state: &ViberState,
    url: &str,
    token: &str,
    callback: &Value,
    timeout: Duration,
) -> AttemptResult {
    let body = callback.to_string();
    let response = state
        .http
        .post(url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, sign(token, body.as_bytes()))
        .timeout(timeout)
        .body(body)
        .send()
        .await;
    match response {
        Ok(response) => AttemptResult {
            status: Some(response.status().as_u16()),
            error: None,
        },
        Err(error) => AttemptResult {
            status: None,
            error: Some(error.to_string()),
        },
    }
}

pub(crate) async fn send_callback(
    state: &Arc<ViberState>,
    token: &str,
    spec: CallbackSpec,
) -> Result<CallbackDelivery, SimError> {
    let (url, tracking) = {
        let mut bots = lock(&state.bots);
        let bot = bots
            .get_mut(token)
            .ok_or_else(|| SimError::UnknownBot("viber".to_owned()))?;
        let url = bot
            .webhook
            .clone()
            .ok_or_else(|| SimError::NoWebhook("viber".to_owned()))?;
        let user = bot
            .users
            .entry(spec.user.id.clone())
            .or_insert_with(|| User {
                user: spec.user.clone(),
                subscribed: false,
                details_calls: 0,
                tracking_data: None,
            });
        match spec.event.as_str() {
            // Writing to a bot opens the chat, like subscribing does.
            "message" | "subscribed" => user.subscribed = true,
            "unsubscribed" => user.subscribed = false,
            _ => {}
        }
        let tracking = user.tracking_data.clone();
        (url, tracking)
    };
    let message_token = spec.message_token.unwrap_or_else(|| state.token());
    let callback = spec.assemble(message_token, unix_ms(), tracking.as_deref());
    let policy = lock(&state.options).redelivery;
    let mut attempts = Vec::new();
    for attempt in 1..=policy.max_attempts.max(1) {
        let result = post_signed(state, &url, token, &callback, policy.timeout).await;
        let done = result.succeeded();
        attempts.push(result);
        if done || attempt == policy.max_attempts.max(1) {
            break;
        }
        tokio::time::sleep(policy.interval).await;
    }
    let delivery = CallbackDelivery {
        message_token,
        callback,
        attempts,
    };
    state.callbacks.push(delivery.clone());
    Ok(delivery)
}
