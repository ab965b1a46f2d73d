//! The HTTP side of the Teams simulator: metadata and keys, the token
//! endpoint, the Bot Connector activities endpoint with its validation,
//! attachment downloads, and posting signed activities to a bot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ActivityDelivery, ActivitySpec, AttachmentDownload, CHANNEL_ID, ISSUER, SCOPE, SentActivity,
    TeamsState, TokenFault, TokenRequest,
};
use crate::SimError;
use crate::recording::lock;

pub(crate) async fn openid_metadata(State(state): State<Arc<TeamsState>>) -> Json<Value> {
    state.key_fetches.push("openidconfiguration".to_owned());
    Json(json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://invalid.botframework.com",
        "jwks_uri": format!("{}/v1/.well-known/keys", state.base_url),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    }))
}

pub(crate) async fn keys(State(state): State<Arc<TeamsState>>) -> Json<Value> {
    state.key_fetches.push("keys".to_owned());
    let mut keys: Vec<Value> = lock(&state.keys).iter().map(|k| k.jwk()).collect();
    keys.push(state.webchat_key.jwk());
    Json(json!({ "keys": keys }))
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    scope: String,
}

fn aad_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description, "error_codes": []})),
    )
        .into_response()
}

pub(crate) async fn token(
    State(state): State<Arc<TeamsState>>,
    Path(authority): Path<String>,
    Form(form): Form<TokenForm>,
) -> Response {
    let known = lock(&state.bots)
        .get(&form.client_id)
        .map(|bot| bot.password.clone());
    let response = if form.grant_type != "client_credentials" {
        aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: grant type not supported",
        )
    } else if form.scope != SCOPE {
        aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS70011: The provided value for the input parameter 'scope' is not valid.",
        )
    } else if known.is_none() {
        aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory.",
        )
    } else if known.as_deref() != Some(form.client_secret.as_str()) {
        aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        )
    } else {
        let token = format!("eyJ0eXAi.sim.{}", uuid::Uuid::new_v4().simple());
        lock(&state.tokens).insert(
            token.clone(),
            (form.client_id.clone(), Instant::now() + state.token_ttl),
        );
        let ttl = state.token_ttl.as_secs();
        Json(json!({"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": token}))
            .into_response()
    };
    state.token_requests.push(TokenRequest {
        authority,
        client_id: form.client_id,
        scope: form.scope,
        status: response.status().as_u16(),
    });
    response
}

/// The app id of a valid bot token in `Authorization`.
fn bot_of(state: &TeamsState, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?;
    let tokens = lock(&state.tokens);
    let (app_id, expires) = tokens.get(token)?;
    (Instant::now() < *expires).then(|| app_id.clone())
}

fn bf_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

const ACTION_TYPES: [&str; 5] = [
    "Action.Submit",
    "Action.OpenUrl",
    "Action.ShowCard",
    "Action.Execute",
    "Action.ToggleVisibility",
];

fn check_actions(actions: Option<&Value>) -> Result<(), String> {
    let Some(actions) = actions else {
        return Ok(());
    };
    let actions = actions.as_array().ok_or("actions must be an array")?;
    for action in actions {
        let kind = action["type"].as_str().unwrap_or_default();
        if !ACTION_TYPES.contains(&kind) {
            return Err(format!("unknown action type {kind:?}"));
        }
        if kind == "Action.OpenUrl" && action["url"].as_str().is_none_or(str::is_empty) {
            return Err("Action.OpenUrl without url".into());
        }
        if action["title"].as_str().is_none() {
            return Err(format!("{kind} without title"));
        }
    }
    Ok(())
}

fn check_element(element: &Value) -> Result<(), String> {
    match element["type"].as_str() {
        Some("TextBlock") if element["text"].is_string() => Ok(()),
        Some("Image") if element["url"].is_string() => Ok(()),
        Some("ActionSet") => check_actions(element.get("actions")),
        Some("Container" | "ColumnSet" | "FactSet" | "Input.Text" | "Input.ChoiceSet") => Ok(()),
        other => Err(format!("invalid card element {other:?}")),
    }
}

/// Adaptive Card rules Teams enforces (a subset: shape, version, types).
fn check_adaptive_card(card: &Value) -> Result<(), String> {
    if card["type"] != "AdaptiveCard" {
        return Err("content.type must be AdaptiveCard".into());
    }
    let version = card["version"]
        .as_str()
        .ok_or("AdaptiveCard without version")?;
    let (major, minor) = version.split_once('.').ok_or("bad AdaptiveCard version")?;
    if major != "1" || minor.parse::<u32>().map_or(true, |m| m > 5) {
        return Err(format!(
            "AdaptiveCard version {version} is not supported by Teams"
        ));
    }
    for element in card["body"]
        .as_array()
        .ok_or("AdaptiveCard body must be an array")?
    {
        check_element(element)?;
    }
    check_actions(card.get("actions"))
}

fn check_activity(activity: &Value) -> Result<(), String> {
    match activity["type"].as_str() {
        Some("typing") => return Ok(()),
        Some("message") => {}
        other => return Err(format!("Unknown activity type {other:?}")),
    }
    let has_text = activity["text"].as_str().is_some_and(|t| !t.is_empty());
    let attachments = activity.get("attachments").and_then(Value::as_array);
    let suggested = activity
        .pointer("/suggestedActions/actions")
        .and_then(Value::as_array);
    if !has_text && attachments.is_none_or(Vec::is_empty) && suggested.is_none_or(Vec::is_empty) {
        return Err("Activity has neither text nor attachments".into());
    }
    for attachment in attachments.into_iter().flatten() {
        let kind = attachment["contentType"].as_str().unwrap_or_default();
        if kind == "application/vnd.microsoft.card.adaptive" {
            check_adaptive_card(&attachment["content"])?;
        } else if kind.starts_with("image/") {
            if attachment["contentUrl"].as_str().is_none() {
                return Err("image attachment without contentUrl".into());
            }
        } else if !kind.starts_with("application/vnd.microsoft.card.") {
            return Err(format!("attachment type {kind:?} cannot be sent by a bot"));
        }
    }
    for action in suggested.into_iter().flatten() {
        let kind = action["type"].as_str().unwrap_or_default();
        if !["imBack", "messageBack", "openUrl"].contains(&kind)
            || action["title"].as_str().is_none()
        {
            return Err(format!("invalid suggested action {action}"));
        }
    }
    Ok(())
}

async fn fetch_images(state: &TeamsState, activity: &Value) -> Vec<usize> {
    let mut sizes = Vec::new();
    let attachments = activity
        .get("attachments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for attachment in attachments {
        let is_image = attachment["contentType"]
            .as_str()
            .is_some_and(|k| k.starts_with("image/"));
        if let (true, Some(url)) = (is_image, attachment["contentUrl"].as_str()) {
            let size = match state.http.get(url).send().await {
                Ok(response) if response.status().is_success() => {
                    response.bytes().await.map_or(0, |b| b.len())
                }
                _ => 0,
            };
            sizes.push(size);
        }
    }
    sizes
}

pub(crate) async fn post_activity(
    State(state): State<Arc<TeamsState>>,
    Path(conversation_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let app_id = bot_of(&state, &headers);
    let activity: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let record = |status: u16, fetched_images: Vec<usize>| SentActivity {
        conversation_id: conversation_id.clone(),
        app_id: app_id.clone(),
        activity: activity.clone(),
        status,
        fetched_images,
    };
    if app_id.is_none() {
        state.sent.push(record(401, Vec::new()));
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Authorization has been denied for this request."})),
        )
            .into_response();
    }
    if let Some(fault) = state.take_fault() {
        state.sent.push(record(fault.status, Vec::new()));
        let status =
            StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = bf_error(status, "Throttled", "Injected fault");
        if let Some(seconds) = fault.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        return response;
    }
    let blocked = lock(&state.conversations).get(&conversation_id).copied();
    let response = match blocked {
        None => bf_error(
            StatusCode::NOT_FOUND,
            "ConversationNotFound",
            "Conversation not found.",
        ),
        Some(true) => bf_error(
            StatusCode::FORBIDDEN,
            "ConversationBlockedByUser",
            "User blocked the conversation with the bot.",
        ),
        Some(false) => match check_activity(&activity) {
            Err(message) => bf_error(StatusCode::BAD_REQUEST, "BadArgument", &message),
            Ok(()) => {
                let images = fetch_images(&state, &activity).await;
                let id = format!("1:{}", state.id());
                state.sent.push(record(201, images));
                return (StatusCode::CREATED, Json(json!({"id": id}))).into_response();
            }
        },
    };
    state
        .sent
        .push(record(response.status().as_u16(), Vec::new()));
    response
}

fn attachment_response(
    state: &TeamsState,
    id: &str,
    authorized: bool,
    tempauth: Option<&str>,
) -> Response {
    let found = lock(&state.attachments)
        .get(id)
        .map(|a| (a.bytes.clone(), a.mime.clone(), a.tempauth.clone()));
    let status = match &found {
        None => StatusCode::NOT_FOUND,
        Some((_, _, None)) if !authorized => StatusCode::UNAUTHORIZED,
        Some((_, _, Some(expected))) if tempauth != Some(expected.as_str()) => {
            StatusCode::FORBIDDEN
        }
        Some(_) => StatusCode::OK,
    };
    state.downloads.push(AttachmentDownload {
        id: id.to_owned(),
        authorized,
        status: status.as_u16(),
    });
    match found {
        Some((bytes, mime, _)) if status == StatusCode::OK => {
            ([(header::CONTENT_TYPE, mime)], bytes).into_response()
        }
        _ => status.into_response(),
    }
}

pub(crate) async fn inline_attachment(
    State(state): State<Arc<TeamsState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let authorized = bot_of(&state, &headers).is_some();
    attachment_response(&state, &id, authorized, None)
}

#[derive(Deserialize)]
pub(crate) struct FileQuery {
    tempauth: Option<String>,
}

pub(crate) async fn file(
    State(state): State<Arc<TeamsState>>,
    Path(id): Path<String>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
) -> Response {
    let authorized = bot_of(&state, &headers).is_some();
    attachment_response(&state, &id, authorized, query.tempauth.as_deref())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Posts `spec` to the bot, signed as the channel does (or spoiled).
pub(crate) async fn send_activity(
    state: &TeamsState,
    app_id: &str,
    spec: ActivitySpec,
    fault: TokenFault,
) -> Result<ActivityDelivery, SimError> {
    let (webhook, bot_name) = {
        let bots = lock(&state.bots);
        let bot = bots
            .get(app_id)
            .ok_or_else(|| SimError::UnknownBot(app_id.to_owned()))?;
        (
            bot.webhook
                .clone()
                .ok_or_else(|| SimError::NoWebhook(app_id.to_owned()))?,
            bot.name.clone(),
        )
    };
    let service_url = state.service_url();
    let mut activity = spec.activity;
    if activity.get("id").is_none() {
        activity["id"] = json!(state.id().to_string());
    }
    activity["timestamp"] =
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    activity["serviceUrl"] = json!(service_url);
    activity["channelId"] = json!(CHANNEL_ID);
    activity["recipient"] = json!({"id": format!("28:{app_id}"), "name": bot_name});
    if let Some(conversation) = activity.pointer("/conversation/id").and_then(Value::as_str) {
        lock(&state.conversations)
            .entry(conversation.to_owned())
            .or_insert(false);
    }
    let mut claims = json!({"iss": ISSUER, "aud": app_id, "exp": now() + 3600, "nbf": now() - 5,
                            "serviceurl": service_url});
    let current = lock(&state.keys).last().cloned();
    let mut key = current.ok_or_else(|| SimError::KeyGeneration("no signing key".to_owned()))?;
    match fault {
        TokenFault::None | TokenFault::Missing | TokenFault::BadSignature => {}
        TokenFault::Expired => claims["exp"] = json!(now() - 3600),
        TokenFault::WrongAudience => claims["aud"] = json!("some-other-bot"),
        TokenFault::WrongIssuer => claims["iss"] = json!("https://sts.windows.net/attacker/"),
        TokenFault::ServiceUrlMismatch => {
            claims["serviceurl"] = json!("https://attacker.example/amer/")
        }
        TokenFault::NotEndorsed => key = state.webchat_key.clone(),
        TokenFault::UnknownKey => key = state.unpublished_key.clone(),
    }
    let mut token = key.sign(&claims);
    if fault == TokenFault::BadSignature {
        // Same header and claims, the signature of other bytes.
        let forged = key.sign(&json!({"iss": ISSUER, "aud": app_id, "exp": now() + 60}));
        let signature = forged.rsplit('.').next().unwrap_or_default().to_owned();
        let head = token
            .rsplit_once('.')
            .map(|(h, _)| h.to_owned())
            .unwrap_or_default();
        token = format!("{head}.{signature}");
    }
    let mut request = state
        .http
        .post(&webhook)
        .json(&activity)
        .timeout(Duration::from_secs(15));
    if fault != TokenFault::Missing {
        request = request.bearer_auth(token);
    }
    let (status, error) = match request.send().await {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(error) => (None, Some(error.to_string())),
    };
    let delivery = ActivityDelivery {
        activity,
        status,
        error,
    };
    state.deliveries.push(delivery.clone());
    Ok(delivery)
}
