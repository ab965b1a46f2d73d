//! The LINE part of the `um-sim` control API, nested under `/__sim/line`.
//!
//! | method and path | body / query | answer |
//! |---|---|---|
//! | `POST /channels` | `ChannelSpec` | 204 |
//! | `POST /webhook` | `{channel_id, url}` | 204 (as the console would) |
//! | `POST /users` | `Guest` (`user_id`, `display_name`, `language?`) | 204 |
//! | `POST /events` | `{channel_id, user_id, display_name?, text? \| image_base64?+mime \| postback? \| follow? \| unfollow?, wait?}` | `WebhookDelivery` (409 without webhook) |
//! | `POST /faults` | `{endpoint?, status, message?, count?=1, retry_after?}` | 204 |
//! | `POST /settings` | `{reply_token_ttl_ms?, redelivery?:{max_attempts?,interval_ms?,timeout_ms?}}` | 204 |
//! | `GET /records?kind=calls\|sent\|webhooks\|switches` | | JSON array |
//! | `GET /wait?kind=K&count=N&timeout_ms=T` | | 200 / 408 `{reached, count}` |

// Handlers short-circuit with a ready Response; boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ChannelSpec, Guest, LineError, LineOptions, LineRecordKind, LineSimulator, RedeliveryPolicy,
};

/// The `line` section of the `um-sim --config` file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LineConfig {
    #[serde(default)]
    pub channels: Vec<ChannelSpec>,
    pub reply_token_ttl_ms: Option<u64>,
    pub redelivery: Option<RedeliveryConfig>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct RedeliveryConfig {
    pub max_attempts: Option<u32>,
    pub interval_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
}

fn redelivery(config: RedeliveryConfig) -> RedeliveryPolicy {
    let base = RedeliveryPolicy::default();
    RedeliveryPolicy {
        max_attempts: config.max_attempts.unwrap_or(base.max_attempts),
        interval: config
            .interval_ms
            .map_or(base.interval, Duration::from_millis),
        timeout: config
            .timeout_ms
            .map_or(base.timeout, Duration::from_millis),
    }
}

impl LineConfig {
    pub fn options(&self) -> LineOptions {
        let defaults = LineOptions::default();
        LineOptions {
            channels: self.channels.clone(),
            reply_token_ttl: self
                .reply_token_ttl_ms
                .map_or(defaults.reply_token_ttl, Duration::from_millis),
            redelivery: self.redelivery.map_or(defaults.redelivery, redelivery),
            ..defaults
        }
    }
}

type Sim = Arc<LineSimulator>;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

pub fn routes(sim: Sim) -> Router {
    Router::new()
        .route("/channels", post(add_channel))
        .route("/webhook", post(set_webhook))
        .route("/users", post(add_user))
        .route("/events", post(send_event))
        .route("/faults", post(fault))
        .route("/settings", post(settings))
        .route("/records", get(records))
        .route("/wait", get(wait))
        .with_state(sim)
}

async fn add_channel(State(sim): State<Sim>, Json(spec): Json<ChannelSpec>) -> StatusCode {
    sim.add_channel(spec);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct WebhookBody {
    channel_id: String,
    url: String,
}

async fn set_webhook(State(sim): State<Sim>, Json(body): Json<WebhookBody>) -> Response {
    match sim.set_webhook_url(&body.channel_id, body.url) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

async fn add_user(State(sim): State<Sim>, Json(guest): Json<Guest>) -> StatusCode {
    sim.add_user(&guest);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct EventBody {
    channel_id: String,
    user_id: String,
    display_name: Option<String>,
    text: Option<String>,
    image_base64: Option<String>,
    mime: Option<String>,
    postback: Option<String>,
    #[serde(default)]
    follow: bool,
    #[serde(default)]
    unfollow: bool,
    wait: Option<bool>,
}

async fn send_event(State(sim): State<Sim>, Json(body): Json<EventBody>) -> Response {
    let guest = Guest {
        user_id: body.user_id.clone(),
        display_name: body
            .display_name
            .clone()
            .unwrap_or_else(|| "Guest".to_owned()),
        language: None,
        picture_url: None,
    };
    let event = if let Some(data) = &body.image_base64 {
        match base64::engine::general_purpose::STANDARD.decode(data) {
            Ok(bytes) => sim.image_event(
                &body.channel_id,
                &guest,
                bytes,
                body.mime.as_deref().unwrap_or("image/jpeg"),
            ),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("base64: {e}")),
        }
    } else if let Some(data) = &body.postback {
        sim.postback_event(&body.channel_id, &guest, data)
    } else if body.follow {
        sim.follow_event(&body.channel_id, &guest)
    } else if body.unfollow {
        sim.unfollow_event(&guest)
    } else if let Some(text) = &body.text {
        sim.text_event(&body.channel_id, &guest, text)
    } else {
        return error(
            StatusCode::BAD_REQUEST,
            "give text, image_base64, postback, follow or unfollow",
        );
    };
    if body.wait == Some(false) {
        let background = sim.clone();
        let channel = body.channel_id.clone();
        tokio::spawn(async move {
            if let Err(e) = background.send_events(&channel, vec![event]).await {
                tracing::warn!(error = %e, "background LINE event failed");
            }
        });
        return StatusCode::ACCEPTED.into_response();
    }
    match sim.send_events(&body.channel_id, vec![event]).await {
        Ok(delivery) => Json(delivery).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

#[derive(Deserialize)]
struct FaultBody {
    endpoint: Option<String>,
    status: u16,
    message: Option<String>,
    #[serde(default = "one")]
    count: u32,
    retry_after: Option<u64>,
}

fn one() -> u32 {
    1
}

async fn fault(State(sim): State<Sim>, Json(body): Json<FaultBody>) -> StatusCode {
    let mut fault = match (body.status, &body.message) {
        (429, None) => LineError::rate_limited(),
        (status, message) => LineError::new(
            status,
            message
                .clone()
                .unwrap_or_else(|| format!("Simulated error {status}")),
        ),
    };
    fault.retry_after = body.retry_after;
    sim.inject_error(body.endpoint.as_deref(), fault, body.count);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct SettingsBody {
    reply_token_ttl_ms: Option<u64>,
    redelivery: Option<RedeliveryConfig>,
}

async fn settings(State(sim): State<Sim>, Json(body): Json<SettingsBody>) -> StatusCode {
    if let Some(ms) = body.reply_token_ttl_ms {
        sim.set_reply_token_ttl(Duration::from_millis(ms));
    }
    if let Some(config) = body.redelivery {
        sim.set_redelivery(redelivery(config));
    }
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct KindQuery {
    kind: String,
    count: Option<usize>,
    timeout_ms: Option<u64>,
}

fn kind(text: &str) -> Result<LineRecordKind, Response> {
    text.parse()
        .map_err(|e: String| error(StatusCode::BAD_REQUEST, e))
}

fn to_json<T: serde::Serialize>(items: Vec<T>) -> Value {
    serde_json::to_value(items).unwrap_or(Value::Null)
}

async fn records(State(sim): State<Sim>, Query(query): Query<KindQuery>) -> Response {
    let values = match kind(&query.kind) {
        Ok(LineRecordKind::Call) => to_json(sim.calls()),
        Ok(LineRecordKind::Sent) => to_json(sim.sent()),
        Ok(LineRecordKind::Webhook) => to_json(sim.webhook_attempts()),
        Ok(LineRecordKind::Switch) => to_json(sim.switches()),
        Err(response) => return response,
    };
    Json(values).into_response()
}

async fn wait(State(sim): State<Sim>, Query(query): Query<KindQuery>) -> Response {
    let kind = match kind(&query.kind) {
        Ok(kind) => kind,
        Err(response) => return response,
    };
    let timeout = Duration::from_millis(query.timeout_ms.unwrap_or(10_000).min(600_000));
    let reached = sim.wait_for(kind, query.count.unwrap_or(1), timeout).await;
    let status = if reached {
        StatusCode::OK
    } else {
        StatusCode::REQUEST_TIMEOUT
    };
    (
        status,
        Json(json!({"reached": reached, "count": sim.count(kind)})),
    )
        .into_response()
}
