//! The Messaging API endpoints.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::errors::LineError;
use super::state::{AcceptedRequest, LineState, message_id};
use super::{ApiCall, MediaFetch, SentMessages, SwitchRecord, validate, webhook};
use crate::recording::lock;

type Shared = State<Arc<LineState>>;

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn with_request_id(mut response: Response, id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert("x-line-request-id", value);
    }
    response
}

fn record(
    state: &LineState,
    method: &str,
    path: &str,
    channel: Option<&str>,
    status: u16,
    retry_key: Option<&str>,
) {
    state.calls.push(ApiCall {
        method: method.to_owned(),
        path: path.to_owned(),
        channel_id: channel.map(str::to_owned),
        status,
        retry_key: retry_key.map(str::to_owned),
    });
}

fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
}

/// The channel of the request's token, or the 401 LINE answers.
fn authorize(state: &LineState, headers: &HeaderMap) -> Result<String, LineError> {
    state
        .channel_of_token(bearer(headers))
        .ok_or_else(LineError::unauthorized)
}

fn fail(
    state: &LineState,
    method: &str,
    path: &str,
    channel: Option<&str>,
    error: LineError,
) -> Response {
    record(state, method, path, channel, error.status, None);
    with_request_id(error.into_response(), &request_id())
}

pub(crate) async fn issue_token(State(state): Shared, body: Bytes) -> Response {
    const PATH: &str = "/v2/oauth/accessToken";
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(&body).into_owned().collect();
    if let Some(error) = state.take_fault("token") {
        return fail(&state, "POST", PATH, None, error);
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let valid = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && lock(&state.channels)
            .get(&client_id)
            .is_some_and(|channel| Some(&channel.spec.channel_secret) == form.get("client_secret"));
    if !valid {
        record(&state, "POST", PATH, None, 400, None);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client", "error_description": "invalid client_id or client_secret"})),
        )
            .into_response();
    }
    let token = format!("sim-short-{}", uuid::Uuid::new_v4().simple());
    lock(&state.issued_tokens).insert(token.clone(), client_id.clone());
    record(&state, "POST", PATH, Some(&client_id), 200, None);
    Json(json!({"access_token": token, "expires_in": 2_592_000, "token_type": "Bearer"}))
        .into_response()
}

fn retry_key_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-line-retry-key")
        .and_then(|v| v.to_str().ok())
}

async fn fetch_media(state: &LineState, messages: &[Value]) -> Vec<MediaFetch> {
    let mut fetched = Vec::new();
    for message in messages.iter().filter(|m| m["type"] == "image") {
        let Some(url) = message["originalContentUrl"].as_str() else {
            continue;
        };
        let result = state
            .http
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        fetched.push(match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let content_type = response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let bytes_len = response.bytes().await.map(|b| b.len() as u64).unwrap_or(0);
                MediaFetch {
                    url: url.to_owned(),
                    status: Some(status),
                    bytes_len,
                    content_type,
                }
            }
            Err(_) => MediaFetch {
                url: url.to_owned(),
                status: None,
                bytes_len: 0,
                content_type: String::new(),
            },
        });
    }
    fetched
}

/// Accepts messages for `to`: validated, recorded, media fetched.
async fn accept(
    state: &LineState,
    channel_id: &str,
    to: &str,
    via: &str,
    messages: &[Value],
    retry_key: Option<&str>,
    request: &str,
) -> Vec<String> {
    let ids: Vec<String> = messages.iter().map(|_| message_id()).collect();
    let shown = !lock(&state.users).get(to).is_some_and(|user| user.blocked);
    let media = fetch_media(state, messages).await;
    state.sent.push(SentMessages {
        channel_id: channel_id.to_owned(),
        to: to.to_owned(),
        via: via.to_owned(),
        messages: messages.to_vec(),
        message_ids: ids.clone(),
        retry_key: retry_key.map(str::to_owned),
        request_id: request.to_owned(),
        shown,
        media,
    });
    ids
}

fn sent_messages(ids: &[String]) -> Value {
    json!({"sentMessages": ids.iter().map(|id| json!({"id": id, "quoteToken": uuid::Uuid::new_v4().simple().to_string()})).collect::<Vec<_>>()})
}

pub(crate) async fn reply(
    State(state): Shared,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    const PATH: &str = "/v2/bot/message/reply";
    let channel = match authorize(&state, &headers) {
        Ok(channel) => channel,
        Err(error) => return fail(&state, "POST", PATH, None, error),
    };
    if retry_key_header(&headers).is_some() {
        // LINE takes retry keys on push, multicast, narrowcast and broadcast only.
        return fail(
            &state,
            "POST",
            PATH,
            Some(&channel),
            LineError::new(400, "The retry key is not supported for this API"),
        );
    }
    if let Some(error) = state.take_fault("reply") {
        return fail(&state, "POST", PATH, Some(&channel), error);
    }
    let messages = match validate::messages(&body) {
        Ok(messages) => messages.clone(),
        Err(error) => return fail(&state, "POST", PATH, Some(&channel), error),
    };
    let token = body["replyToken"].as_str().unwrap_or_default();
    let ttl = lock(&state.config).reply_token_ttl;
    let valid = {
        let mut tokens = lock(&state.reply_tokens);
        match tokens.get_mut(token) {
            Some(entry)
                if entry.channel_id == channel && !entry.used && entry.issued.elapsed() < ttl =>
            {
                entry.used = true;
                true
            }
            _ => false,
        }
    };
    if !valid {
        return fail(
            &state,
            "POST",
            PATH,
            Some(&channel),
            LineError::invalid_reply_token(),
        );
    }
    // The reply goes to whoever the token's event came from; the simulator
    // finds that user in the webhooks it sent.
    let to = reply_target(&state, token).unwrap_or_default();
    let request = request_id();
    let ids = accept(&state, &channel, &to, "reply", &messages, None, &request).await;
    record(&state, "POST", PATH, Some(&channel), 200, None);
    with_request_id(Json(sent_messages(&ids)).into_response(), &request)
}

/// The conversation an issued reply token belongs to.
fn reply_target(state: &LineState, token: &str) -> Option<String> {
    lock(&state.reply_tokens)
        .get(token)
        .map(|entry| entry.target.clone())
}

pub(crate) async fn push(
    State(state): Shared,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    const PATH: &str = "/v2/bot/message/push";
    let channel = match authorize(&state, &headers) {
        Ok(channel) => channel,
        Err(error) => return fail(&state, "POST", PATH, None, error),
    };
    let retry_key = retry_key_header(&headers).map(str::to_owned);
    if let Some(key) = &retry_key {
        if uuid::Uuid::parse_str(key).is_err() {
            return fail(
                &state,
                "POST",
                PATH,
                Some(&channel),
                LineError::new(400, "The value of the X-Line-Retry-Key header is invalid"),
            );
        }
        let accepted = lock(&state.retry_keys)
            .get(&(channel.clone(), key.clone()))
            .cloned();
        if let Some(AcceptedRequest {
            request_id: accepted_id,
            message_ids: ids,
        }) = accepted
        {
            record(&state, "POST", PATH, Some(&channel), 409, Some(key));
            let mut body = sent_messages(&ids);
            body["message"] = json!("The retry key is already accepted");
            let mut response = with_request_id(
                (StatusCode::CONFLICT, Json(body)).into_response(),
                &request_id(),
            );
            if let Ok(value) = HeaderValue::from_str(&accepted_id) {
                response
                    .headers_mut()
                    .insert("x-line-accepted-request-id", value);
            }
            return response;
        }
    }
    if let Some(error) = state.take_fault("push") {
        return fail(&state, "POST", PATH, Some(&channel), error);
    }
    let to = body["to"].as_str().unwrap_or_default().to_owned();
    let valid_to = to.len() == 33
        && matches!(to.chars().next(), Some('U' | 'C' | 'R'))
        && to[1..].chars().all(|c| c.is_ascii_hexdigit());
    if !valid_to {
        return fail(
            &state,
            "POST",
            PATH,
            Some(&channel),
            LineError::invalid(
                "to",
                "The property, 'to', in the request body is invalid (line: -, column: -)",
            ),
        );
    }
    let messages = match validate::messages(&body) {
        Ok(messages) => messages.clone(),
        Err(error) => return fail(&state, "POST", PATH, Some(&channel), error),
    };
    let request = request_id();
    let ids = accept(
        &state,
        &channel,
        &to,
        "push",
        &messages,
        retry_key.as_deref(),
        &request,
    )
    .await;
    if let Some(key) = &retry_key {
        lock(&state.retry_keys).insert(
            (channel.clone(), key.clone()),
            AcceptedRequest {
                request_id: request.clone(),
                message_ids: ids.clone(),
            },
        );
    }
    if let Some(error) = state.take_fault_timed("push", true) {
        record(
            &state,
            "POST",
            PATH,
            Some(&channel),
            error.status,
            retry_key.as_deref(),
        );
        return with_request_id(error.into_response(), &request);
    }
    record(
        &state,
        "POST",
        PATH,
        Some(&channel),
        200,
        retry_key.as_deref(),
    );
    with_request_id(Json(sent_messages(&ids)).into_response(), &request)
}

pub(crate) async fn content(
    State(state): Shared,
    headers: HeaderMap,
    Path(message_id): Path<String>,
) -> Response {
    let path = format!("/v2/bot/message/{message_id}/content");
    let channel = match authorize(&state, &headers) {
        Ok(channel) => channel,
        Err(error) => return fail(&state, "GET", &path, None, error),
    };
    if let Some(error) = state.take_fault("content") {
        return fail(&state, "GET", &path, Some(&channel), error);
    }
    let found = lock(&state.contents)
        .get(&message_id)
        .filter(|content| content.channel_id == channel)
        .map(|content| (content.bytes.clone(), content.mime.clone()));
    match found {
        Some((bytes, mime)) => {
            record(&state, "GET", &path, Some(&channel), 200, None);
            let response = ([(header::CONTENT_TYPE, mime)], bytes).into_response();
            with_request_id(response, &request_id())
        }
        None => fail(&state, "GET", &path, Some(&channel), LineError::not_found()),
    }
}

pub(crate) async fn profile(
    State(state): Shared,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Response {
    let path = format!("/v2/bot/profile/{user_id}");
    let channel = match authorize(&state, &headers) {
        Ok(channel) => channel,
        Err(error) => return fail(&state, "GET", &path, None, error),
    };
    if let Some(error) = state.take_fault("profile") {
        return fail(&state, "GET", &path, Some(&channel), error);
    }
    let user = lock(&state.users).get(&user_id).cloned();
    match user {
        // A user who blocked the account is not a friend: 404 as LINE.
        Some(user) if !user.blocked => {
            record(&state, "GET", &path, Some(&channel), 200, None);
            let mut body = json!({"userId": user_id, "displayName": user.display_name});
            if let Some(language) = user.language {
                body["language"] = json!(language);
            }
            if let Some(picture) = user.picture_url {
                body["pictureUrl"] = json!(picture);
            }
            with_request_id(Json(body).into_response(), &request_id())
        }
        _ => fail(&state, "GET", &path, Some(&channel), LineError::not_found()),
    }
}

pub(crate) async fn set_webhook_endpoint(
    State(state): Shared,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    const PATH: &str = "/v2/bot/channel/webhook/endpoint";
    let channel = match authorize(&state, &headers) {
        Ok(channel) => channel,
        Err(error) => return fail(&state, "PUT", PATH, None, error),
    };
    let Some(endpoint) = body["endpoint"].as_str().filter(|e| !e.is_empty()) else {
        return fail(
            &state,
            "PUT",
            PATH,
            Some(&channel),
            LineError::invalid("endpoint", "May not be empty"),
        );
    };
    if let Err(error) = validate::media_url(endpoint, "endpoint") {
        return fail(&state, "PUT", PATH, Some(&channel), error);
    }
    if let Some(entry) = lock(&state.channels).get_mut(&channel) {
        entry.webhook = Some(endpoint.to_owned());
    }
    record(&state, "PUT", PATH, Some(&channel), 200, None);
    with_request_id(Json(json!({})).into_response(), &request_id())
}

pub(crate) async fn get_webhook_endpoint(State(state): Shared, headers: HeaderMap) -> Response {
    const PATH: &str = "/v2/bot/channel/webhook/endpoint";
    let channel = match authorize(&state, &headers) {
        Ok(channel) => channel,
        Err(error) => return fail(&state, "GET", PATH, None, error),
    };
    let endpoint = lock(&state.channels)
        .get(&channel)
        .and_then(|c| c.webhook.clone());
    record(&state, "GET", PATH, Some(&channel), 200, None);
    Json(json!({"endpoint": endpoint.clone().unwrap_or_default(), "active": endpoint.is_some()}))
        .into_response()
}

pub(crate) async fn bot_info(State(state): Shared, headers: HeaderMap) -> Response {
    const PATH: &str = "/v2/bot/info";
    let channel = match authorize(&state, &headers) {
        Ok(channel) => channel,
        Err(error) => return fail(&state, "GET", PATH, None, error),
    };
    let info = lock(&state.channels).get(&channel).map(|c| {
        json!({"userId": c.spec.bot_user_id, "basicId": c.spec.basic_id, "displayName": "UM Simulator",
               "chatMode": "bot", "markAsReadMode": "manual"})
    });
    record(&state, "GET", PATH, Some(&channel), 200, None);
    Json(info.unwrap_or(Value::Null)).into_response()
}

/// Proposed Switcher contract (see the connector's `line::switcher`).
pub(crate) async fn switch(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    const PATH: &str = "/switcher/v1/switch";
    let request: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(_) => {
            return fail(
                &state,
                "POST",
                PATH,
                None,
                LineError::new(400, "The request body is not JSON"),
            );
        }
    };
    let service_code = request["serviceCode"].as_str().unwrap_or_default();
    let switcher = lock(&state.channels).values().find_map(|channel| {
        channel
            .spec
            .switcher
            .clone()
            .filter(|switcher| switcher.service_code == service_code)
            .map(|switcher| (channel.spec.channel_id.clone(), switcher))
    });
    let Some((channel, switcher)) = switcher else {
        return fail(
            &state,
            "POST",
            PATH,
            None,
            LineError::invalid("serviceCode", "Unknown service code"),
        );
    };
    let given = headers
        .get("x-line-switcher-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if given != webhook::signature(&switcher.secret, &body) {
        return fail(
            &state,
            "POST",
            PATH,
            Some(&channel),
            LineError::new(401, "Invalid signature"),
        );
    }
    if let Some(error) = state.take_fault("switch") {
        return fail(&state, "POST", PATH, Some(&channel), error);
    }
    let destination = request["destinationId"].as_str().unwrap_or_default();
    if !switcher.destinations.iter().any(|d| d == destination) {
        return fail(
            &state,
            "POST",
            PATH,
            Some(&channel),
            LineError::invalid("destinationId", "Unknown destination"),
        );
    }
    state.switches.push(SwitchRecord {
        service_code: service_code.to_owned(),
        destination_id: destination.to_owned(),
        user_id: request["userId"].as_str().unwrap_or_default().to_owned(),
        note: request["note"].as_str().map(str::to_owned),
    });
    record(&state, "POST", PATH, Some(&channel), 200, None);
    with_request_id(Json(json!({})).into_response(), &request_id())
}
