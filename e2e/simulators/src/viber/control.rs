//! The Viber part of the `um-sim` control API, nested under `/__sim/viber`.
//!
//! | method and path | body / query | answer |
//! |---|---|---|
//! | `POST /tokens` | `{token}` | 204 |
//! | `POST /users` | `{token, id, name, country?, language?, primary_device_os?, device_type?}` | 204 |
//! | `POST /unsubscribe` | `{token, user_id}` | 204 |
//! | `POST /media` | `{bytes_base64, mime}` | `{url}` (public, expiring) |
//! | `POST /callbacks` | `{token, user_id, name?, event?="message", text? \| picture_url? \| sticker_id?+media_url?, message_token?}` | `CallbackDelivery` (409 without webhook) |
//! | `POST /faults` | `{method?, status?, http_status?, count?=1}` | 204 |
//! | `GET /records?kind=calls\|sent\|callbacks\|media_downloads` | | JSON array |
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

use super::{CallbackSpec, ViberOptions, ViberRecordKind, ViberSimulator, ViberUser};

/// The `viber` section of the `um-sim --config` file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ViberConfig {
    #[serde(default)]
    pub auth_tokens: Vec<String>,
    pub media_ttl_secs: Option<u64>,
    pub user_details_quota: Option<u32>,
    pub redelivery_max_attempts: Option<u32>,
}

impl ViberConfig {
    pub fn options(&self) -> ViberOptions {
        let defaults = ViberOptions::default();
        let mut redelivery = defaults.redelivery;
        if let Some(attempts) = self.redelivery_max_attempts {
            redelivery.max_attempts = attempts;
        }
        ViberOptions {
            auth_tokens: self.auth_tokens.clone(),
            media_ttl: self
                .media_ttl_secs
                .map_or(defaults.media_ttl, Duration::from_secs),
            user_details_quota: self
                .user_details_quota
                .unwrap_or(defaults.user_details_quota),
            redelivery,
            ..defaults
        }
    }
}

type Sim = Arc<ViberSimulator>;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

pub fn routes(sim: Sim) -> Router {
    Router::new()
        .route("/tokens", post(add_token))
        .route("/users", post(add_user))
        .route("/unsubscribe", post(unsubscribe))
        .route("/media", post(upload_media))
        .route("/callbacks", post(send_callback))
        .route("/faults", post(fault))
        .route("/records", get(records))
        .route("/wait", get(wait))
        .with_state(sim)
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

async fn add_token(State(sim): State<Sim>, Json(body): Json<TokenBody>) -> StatusCode {
    sim.add_token(body.token);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct UserBody {
    token: String,
    id: String,
    name: Option<String>,
    country: Option<String>,
    language: Option<String>,
    primary_device_os: Option<String>,
    device_type: Option<String>,
}

fn user(body: &UserBody) -> ViberUser {
    let mut user = ViberUser::new(&body.id, body.name.as_deref().unwrap_or("Guest"));
    if let Some(country) = &body.country {
        user = user.with_country(country);
    }
    if let Some(language) = &body.language {
        user = user.with_language(language);
    }
    if let (Some(os), Some(device)) = (&body.primary_device_os, &body.device_type) {
        user = user.with_device(os, device);
    }
    user
}

async fn add_user(State(sim): State<Sim>, Json(body): Json<UserBody>) -> StatusCode {
    sim.add_user(&body.token, &user(&body));
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct UnsubscribeBody {
    token: String,
    user_id: String,
}

async fn unsubscribe(State(sim): State<Sim>, Json(body): Json<UnsubscribeBody>) -> StatusCode {
    sim.unsubscribe_user(&body.token, &body.user_id);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct MediaBody {
    bytes_base64: String,
    mime: String,
}

async fn upload_media(State(sim): State<Sim>, Json(body): Json<MediaBody>) -> Response {
    match base64::engine::general_purpose::STANDARD.decode(&body.bytes_base64) {
        Ok(bytes) => Json(json!({"url": sim.upload_media(bytes, &body.mime)})).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, format!("bytes_base64: {e}")),
    }
}

#[derive(Deserialize)]
struct CallbackBody {
    token: String,
    user_id: String,
    name: Option<String>,
    event: Option<String>,
    text: Option<String>,
    picture_url: Option<String>,
    sticker_id: Option<i64>,
    media_url: Option<String>,
    message_token: Option<u64>,
}

async fn send_callback(State(sim): State<Sim>, Json(body): Json<CallbackBody>) -> Response {
    let guest = ViberUser::new(&body.user_id, body.name.as_deref().unwrap_or("Guest"));
    let mut spec = match (
        body.event.as_deref().unwrap_or("message"),
        &body.text,
        &body.picture_url,
        body.sticker_id,
    ) {
        ("subscribed", ..) => CallbackSpec::subscribed(&guest),
        ("unsubscribed", ..) => CallbackSpec::unsubscribed(&guest),
        ("conversation_started", ..) => CallbackSpec::conversation_started(&guest),
        ("message", _, Some(url), _) => CallbackSpec::picture(&guest, url, body.text.as_deref(), 0),
        ("message", _, None, Some(id)) => {
            CallbackSpec::sticker(&guest, id, body.media_url.as_deref().unwrap_or_default())
        }
        ("message", Some(text), None, None) => CallbackSpec::text(&guest, text),
        (event, ..) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot build a {event} callback from this body"),
            );
        }
    };
    if let Some(token) = body.message_token {
        spec = spec.with_token(token);
    }
    match sim.send_callback(&body.token, spec).await {
        Ok(delivery) => Json(delivery).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

#[derive(Deserialize)]
struct FaultBody {
    method: Option<String>,
    status: Option<i64>,
    http_status: Option<u16>,
    count: Option<u32>,
}

async fn fault(State(sim): State<Sim>, Json(body): Json<FaultBody>) -> Response {
    let count = body.count.unwrap_or(1);
    match (body.status, body.http_status) {
        (Some(status), None) => sim.inject_status(body.method.as_deref(), status, count),
        (None, Some(http)) => sim.inject_http_error(body.method.as_deref(), http, count),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give exactly one of status and http_status",
            );
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct KindQuery {
    kind: String,
    count: Option<usize>,
    timeout_ms: Option<u64>,
}

fn kind(text: &str) -> Result<ViberRecordKind, Response> {
    format!("viber_{text}")
        .parse()
        .map_err(|e: String| error(StatusCode::BAD_REQUEST, e))
}

fn to_json<T: serde::Serialize>(items: Vec<T>) -> Value {
    serde_json::to_value(items).unwrap_or(Value::Null)
}

async fn records(State(sim): State<Sim>, Query(query): Query<KindQuery>) -> Response {
    match kind(&query.kind) {
        Ok(ViberRecordKind::Call) => Json(to_json(sim.calls())).into_response(),
        Ok(ViberRecordKind::Sent) => Json(to_json(sim.sent_messages())).into_response(),
        Ok(ViberRecordKind::Callback) => Json(to_json(sim.callbacks())).into_response(),
        Ok(ViberRecordKind::MediaDownload) => Json(to_json(sim.media_downloads())).into_response(),
        Err(response) => response,
    }
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
