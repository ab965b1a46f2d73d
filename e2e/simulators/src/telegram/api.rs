//! `/bot<token>/<method>`: parameter parsing (query, JSON, form,
//! multipart) and the Bot API methods.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use super::errors::{ApiError, ok};
use super::markup;
use super::state::{Chat, TelegramState, Webhook, unix_now};
use super::{BotApiCall, MediaFetch, SentMessage};
use crate::recording::lock;

const MAX_BODY: usize = 60 * 1024 * 1024;
const DOWNLOAD_LIMIT: usize = 20 * 1024 * 1024;

type Params = Map<String, Value>;

fn bot_token(segment: &str) -> Option<&str> {
    segment
        .strip_prefix("bot")
        .filter(|token| !token.is_empty())
}

/// Form and query values are strings; JSON-looking ones (reply_markup,
/// allowed_updates) are decoded as Telegram does.
fn form_value(text: &str) -> Value {
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(value) = serde_json::from_str(text)
    {
        return value;
    }
    Value::String(text.to_owned())
}

async fn read_params(state: &TelegramState, request: Request) -> Result<Params, ApiError> {
    let mut params = Params::new();
    if let Some(query) = request.uri().query() {
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            params.insert(key.into_owned(), form_value(&value));
        }
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|error| {
                ApiError::bad_request(format!("can't parse multipart request: {error}"))
            })?;
        while let Some(field) = multipart.next_field().await.map_err(|error| {
            ApiError::bad_request(format!("can't parse multipart request: {error}"))
        })? {
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let mime = field.content_type().map(str::to_owned);
            let data = field.bytes().await.map_err(|error| {
                ApiError::bad_request(format!("can't read multipart field: {error}"))
            })?;
            match file_name {
                Some(file_name) => {
                    let mime = mime.unwrap_or_else(|| "application/octet-stream".to_owned());
                    let stored = state.store_file(data, &mime, None, Some(&file_name));
                    params.insert(
                        name,
                        json!({"uploaded_file_id": stored.file_id, "file_name": file_name}),
                    );
                }
                None => {
                    params.insert(name, form_value(&String::from_utf8_lossy(&data)));
                }
            }
        }
        return Ok(params);
    }
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| ApiError::new(413, "Request Entity Too Large"))?;
    if body.is_empty() {
        return Ok(params);
    }
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => params.extend(map),
            _ => return Err(ApiError::bad_request("can't parse JSON object")),
        }
    } else {
        for (key, value) in form_urlencoded::parse(&body) {
            params.insert(key.into_owned(), form_value(&value));
        }
    }
    Ok(params)
}

pub(crate) async fn method(
    State(state): State<Arc<TelegramState>>,
    Path((segment, method)): Path<(String, String)>,
    request: Request,
) -> Response {
    let Some(token) = bot_token(&segment).map(str::to_owned) else {
        return ApiError::not_found().into_response();
    };
    if !lock(&state.bots).contains_key(&token) {
        state.calls.push(BotApiCall {
            method,
            token,
            params: Value::Null,
            status: 401,
        });
        return ApiError::unauthorized().into_response();
    }
    let params = match read_params(&state, request).await {
        Ok(params) => params,
        Err(error) => {
            state.calls.push(BotApiCall {
                method,
                token,
                params: Value::Null,
                status: error.code,
            });
            return error.into_response();
        }
    };
    let result = match state.take_fault(&method) {
        Some(error) => Err(error),
        None => dispatch(&state, &token, &method, &params).await,
    };
    let status = result.as_ref().map_or_else(|error| error.code, |_| 200);
    state.calls.push(BotApiCall {
        method,
        token,
        params: Value::Object(params),
        status,
    });
    match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn dispatch(
    state: &Arc<TelegramState>,
    token: &str,
    method: &str,
    params: &Params,
) -> Result<Response, ApiError> {
    // Method names are case-insensitive in the Bot API.
    match method.to_ascii_lowercase().as_str() {
        "getme" => {
            let bots = lock(&state.bots);
            let bot = bots.get(token).ok_or_else(ApiError::unauthorized)?;
            let mut me = bot.user_json();
            me["can_join_groups"] = json!(true);
            me["can_read_all_group_messages"] = json!(false);
            me["supports_inline_queries"] = json!(false);
            Ok(ok(me, None))
        }
        "setwebhook" => set_webhook(state, token, params),
        "deletewebhook" => {
            let mut bots = lock(&state.bots);
            let bot = bots.get_mut(token).ok_or_else(ApiError::unauthorized)?;
            let had = bot.webhook.take().is_some();
            Ok(ok(
                json!(true),
                Some(if had {
                    "Webhook was deleted"
                } else {
                    "Webhook is already deleted"
                }),
            ))
        }
        "getwebhookinfo" => {
            let bots = lock(&state.bots);
            let bot = bots.get(token).ok_or_else(ApiError::unauthorized)?;
            Ok(ok(webhook_info(bot), None))
        }
        "sendmessage" => send_message(state, token, params),
        "sendphoto" => send_media(state, token, params, Media::Photo).await,
        "senddocument" => send_media(state, token, params, Media::Document).await,
        "sendvideo" => send_media(state, token, params, Media::Video).await,
        "sendaudio" => send_media(state, token, params, Media::Audio).await,
        "sendvoice" => send_media(state, token, params, Media::Voice).await,
        "sendsticker" => send_media(state, token, params, Media::Sticker).await,
        "sendlocation" => send_location(state, token, params),
        "sendchataction" => {
            target_chat(state, params)?;
            let action = str_param(params, "action").unwrap_or_default();
            if !markup::CHAT_ACTIONS.contains(&action) {
                return Err(ApiError::bad_request("wrong parameter action in request"));
            }
            Ok(ok(json!(true), None))
        }
        "answercallbackquery" => {
            let id = str_param(params, "callback_query_id").unwrap_or_default();
            if !lock(&state.callback_queries).remove(id) {
                return Err(ApiError::bad_request(
                    "query is too old and response timeout expired or query ID is invalid",
                ));
            }
            if str_param(params, "text").is_some_and(|text| text.chars().count() > 200) {
                return Err(ApiError::bad_request("MESSAGE_TOO_LONG"));
            }
            state.callback_answers.push(Value::Object(params.clone()));
            Ok(ok(json!(true), None))
        }
        "editmessagetext" | "editmessagereplymarkup" => edit_message(state, token, method, params),
        "deletemessage" => {
            let chat_id = target_chat(state, params)?;
            let message_id = int_param(params, "message_id").unwrap_or_default();
            find_sent(state, chat_id, message_id)
                .ok_or_else(|| ApiError::bad_request("message to delete not found"))?;
            Ok(ok(json!(true), None))
        }
        "getfile" => {
            let file_id = str_param(params, "file_id").unwrap_or_default();
            let files = lock(&state.files);
            let stored = files
                .get(file_id)
                .ok_or_else(|| ApiError::bad_request("invalid file_id"))?;
            if stored.bytes.len() > DOWNLOAD_LIMIT {
                return Err(ApiError::bad_request("file is too big"));
            }
            Ok(ok(
                json!({"file_id": stored.file.file_id, "file_unique_id": stored.file.file_unique_id,
                       "file_size": stored.file.file_size, "file_path": stored.file_path}),
                None,
            ))
        }
        _ => Err(ApiError::not_found()),
    }
}

fn str_param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).and_then(Value::as_str)
}

fn int_param(params: &Params, name: &str) -> Option<i64> {
    match params.get(name)? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn float_param(params: &Params, name: &str) -> Option<f64> {
    match params.get(name)? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

pub(crate) fn webhook_info(bot: &super::state::Bot) -> Value {
    let mut info = json!({
        "url": bot.webhook.as_ref().map(|hook| hook.url.clone()).unwrap_or_default(),
        "has_custom_certificate": false,
        "pending_update_count": bot.pending,
    });
    if let Some(hook) = &bot.webhook {
        info["max_connections"] = json!(hook.max_connections);
        info["ip_address"] = json!("127.0.0.1");
    }
    if let Some((date, message)) = &bot.last_error {
        info["last_error_date"] = json!(date);
        info["last_error_message"] = json!(message);
    }
    info
}

fn set_webhook(state: &TelegramState, token: &str, params: &Params) -> Result<Response, ApiError> {
    let url = str_param(params, "url").unwrap_or_default().to_owned();
    let secret = str_param(params, "secret_token").map(str::to_owned);
    if let Some(secret) = &secret {
        markup::secret_token(secret)?;
    }
    let max_connections = match int_param(params, "max_connections") {
        None => 40,
        Some(n @ 1..=100) => n as u32,
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad webhook: max_connections must be between 1 and 100",
            ));
        }
    };
    let mut bots = lock(&state.bots);
    let bot = bots.get_mut(token).ok_or_else(ApiError::unauthorized)?;
    if url.is_empty() {
        let had = bot.webhook.take().is_some();
        return Ok(ok(
            json!(true),
            Some(if had {
                "Webhook was deleted"
            } else {
                "Webhook is already deleted"
            }),
        ));
    }
    // Real Telegram demands HTTPS on 443/80/88/8443; loopback tests use plain HTTP.
    match url::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {}
        _ => {
            return Err(ApiError::bad_request(
                "bad webhook: Failed to resolve host: Name or service not known",
            ));
        }
    }
    let same = bot.webhook.as_ref().is_some_and(|hook| {
        hook.url == url && hook.secret_token == secret && hook.max_connections == max_connections
    });
    if !same {
        bot.webhook = Some(Webhook {
            url,
            secret_token: secret,
            max_connections,
            gate: Arc::new(Semaphore::new(max_connections as usize)),
        });
    }
    Ok(ok(
        json!(true),
        Some(if same {
            "Webhook is already set"
        } else {
            "Webhook was set"
        }),
    ))
}

/// Resolves `chat_id` and applies blocked / unknown-chat rules.
fn target_chat(state: &TelegramState, params: &Params) -> Result<i64, ApiError> {
    let chat_id = match params.get("chat_id") {
        None => return Err(ApiError::bad_request("chat_id is empty")),
        Some(Value::String(text)) if text.starts_with('@') => {
            let username = &text[1..];
            let chats = lock(&state.chats);
            chats
                .iter()
                .find(|(_, chat)| chat.chat["username"].as_str() == Some(username))
                .map(|(id, _)| *id)
                .ok_or_else(|| ApiError::bad_request("chat not found"))?
        }
        Some(_) => {
            int_param(params, "chat_id").ok_or_else(|| ApiError::bad_request("chat not found"))?
        }
    };
    let require_known = lock(&state.config).require_known_chats;
    let chats = lock(&state.chats);
    match chats.get(&chat_id) {
        Some(chat) if chat.blocked => Err(ApiError::blocked()),
        None if require_known => Err(ApiError::bad_request("chat not found")),
        _ => Ok(chat_id),
    }
}

/// Builds, numbers and records a message the bot sent.
fn record_sent(
    state: &TelegramState,
    token: &str,
    method: &str,
    chat_id: i64,
    fields: Value,
    media: Option<MediaFetch>,
) -> Value {
    let from = lock(&state.bots)
        .get(token)
        .map(super::state::Bot::user_json)
        .unwrap_or(Value::Null);
    let (message_id, chat) = {
        let mut chats = lock(&state.chats);
        let chat = chats
            .entry(chat_id)
            .or_insert_with(|| Chat::new(json!({"id": chat_id, "type": "private"})));
        let id = chat.next_message_id;
        chat.next_message_id += 1;
        (id, chat.chat.clone())
    };
    let mut message =
        json!({"message_id": message_id, "from": from, "chat": chat, "date": unix_now()});
    if let Value::Object(fields) = fields {
        for (key, value) in fields {
            message[key] = value;
        }
    }
    state.sent.push(SentMessage {
        token: token.to_owned(),
        chat_id,
        method: method.to_owned(),
        message: message.clone(),
        media,
    });
    message
}

/// Checks parse_mode, HTML entities in `text_field`, and reply_markup.
fn common_checks(params: &Params, text_field: &str) -> Result<(), ApiError> {
    let mode = str_param(params, "parse_mode");
    markup::parse_mode(mode)?;
    if mode.is_some_and(|mode| mode.eq_ignore_ascii_case("HTML"))
        && let Some(text) = str_param(params, text_field)
    {
        markup::html_entities(text)?;
    }
    markup::reply_markup(params.get("reply_markup"))
}

fn with_markup(mut fields: Value, params: &Params) -> Value {
    if let Some(markup) = params
        .get("reply_markup")
        .filter(|markup| markup.get("inline_keyboard").is_some())
    {
        fields["reply_markup"] = markup.clone();
    }
    fields
}

fn send_message(state: &TelegramState, token: &str, params: &Params) -> Result<Response, ApiError> {
    let chat_id = target_chat(state, params)?;
    let text = str_param(params, "text");
    markup::text(text)?;
    common_checks(params, "text")?;
    state.check_rate(token, chat_id)?;
    let fields = with_markup(json!({"text": text}), params);
    Ok(ok(
        record_sent(state, token, "sendMessage", chat_id, fields, None),
        None,
    ))
}

fn send_location(
    state: &TelegramState,
    token: &str,
    params: &Params,
) -> Result<Response, ApiError> {
    let chat_id = target_chat(state, params)?;
    let latitude = float_param(params, "latitude").filter(|lat| (-90.0..=90.0).contains(lat));
    let longitude = float_param(params, "longitude").filter(|lon| (-180.0..=180.0).contains(lon));
    let (Some(latitude), Some(longitude)) = (latitude, longitude) else {
        return Err(ApiError::bad_request(
            "wrong latitude or longitude specified",
        ));
    };
    common_checks(params, "text")?;
    state.check_rate(token, chat_id)?;
    let fields = with_markup(
        json!({"location": {"latitude": latitude, "longitude": longitude}}),
        params,
    );
    Ok(ok(
        record_sent(state, token, "sendLocation", chat_id, fields, None),
        None,
    ))
}

#[derive(Clone, Copy)]
enum Media {
    Photo,
    Document,
    Video,
    Audio,
    Voice,
    Sticker,
}

impl Media {
    fn param(self) -> &'static str {
        match self {
            Self::Photo => "photo",
            Self::Document => "document",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Voice => "voice",
            Self::Sticker => "sticker",
        }
    }

    fn method(self) -> &'static str {
        match self {
            Self::Photo => "sendPhoto",
            Self::Document => "sendDocument",
            Self::Video => "sendVideo",
            Self::Audio => "sendAudio",
            Self::Voice => "sendVoice",
            Self::Sticker => "sendSticker",
        }
    }

    fn folder(self) -> &'static str {
        match self {
            Self::Photo => "photos",
            Self::Document => "documents",
            Self::Video => "videos",
            Self::Audio => "music",
            Self::Voice => "voice",
            Self::Sticker => "stickers",
        }
    }
}

/// Where the media of a send comes from.
struct ResolvedMedia {
    file_id: String,
    fetch: Option<MediaFetch>,
    file_name: Option<String>,
}

async fn download(
    state: &TelegramState,
    url: &str,
    folder: &str,
) -> Result<ResolvedMedia, ApiError> {
    let failed = || ApiError::bad_request("failed to get HTTP URL content");
    let response = state
        .http
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|_| failed())?;
    if !response.status().is_success() {
        return Err(failed());
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let bytes: Bytes = response.bytes().await.map_err(|_| failed())?;
    if bytes.len() > DOWNLOAD_LIMIT {
        return Err(ApiError::bad_request("file is too big"));
    }
    let file_name = url::Url::parse(url)
        .ok()
        .and_then(|parsed| {
            parsed
                .path_segments()
                .and_then(|mut segments| segments.next_back().map(str::to_owned))
        })
        .filter(|name| !name.is_empty());
    let fetch = MediaFetch {
        url: url.to_owned(),
        bytes_len: bytes.len() as u64,
        content_type: content_type.clone(),
    };
    let stored = state.store_file(bytes, &content_type, Some(folder), file_name.as_deref());
    Ok(ResolvedMedia {
        file_id: stored.file_id,
        fetch: Some(fetch),
        file_name,
    })
}

async fn resolve_media(
    state: &TelegramState,
    params: &Params,
    media: Media,
) -> Result<ResolvedMedia, ApiError> {
    match params.get(media.param()) {
        None | Some(Value::Null) => Err(ApiError::bad_request(format!(
            "there is no {} in the request",
            media.param()
        ))),
        Some(Value::String(text))
            if text.starts_with("http://") || text.starts_with("https://") =>
        {
            download(state, text, media.folder()).await
        }
        Some(Value::String(file_id)) => {
            if lock(&state.files).contains_key(file_id) {
                Ok(ResolvedMedia {
                    file_id: file_id.clone(),
                    fetch: None,
                    file_name: None,
                })
            } else {
                Err(ApiError::bad_request(
                    "wrong file identifier/HTTP URL specified",
                ))
            }
        }
        Some(upload) => match upload["uploaded_file_id"].as_str() {
            Some(file_id) => Ok(ResolvedMedia {
                file_id: file_id.to_owned(),
                fetch: None,
                file_name: upload["file_name"].as_str().map(str::to_owned),
            }),
            None => Err(ApiError::bad_request(
                "wrong file identifier/HTTP URL specified",
            )),
        },
    }
}

async fn send_media(
    state: &TelegramState,
    token: &str,
    params: &Params,
    media: Media,
) -> Result<Response, ApiError> {
    let chat_id = target_chat(state, params)?;
    let caption = str_param(params, "caption");
    markup::caption(caption)?;
    common_checks(params, "caption")?;
    let resolved = resolve_media(state, params, media).await?;
    state.check_rate(token, chat_id)?;
    let (file, size) = {
        let files = lock(&state.files);
        let stored = files
            .get(&resolved.file_id)
            .ok_or_else(|| ApiError::bad_request("wrong file identifier/HTTP URL specified"))?;
        (stored.file.clone(), stored.bytes.len() as u64)
    };
    let base =
        json!({"file_id": file.file_id, "file_unique_id": file.file_unique_id, "file_size": size});
    let object = |extra: Value| {
        let mut object = base.clone();
        if let Value::Object(extra) = extra {
            for (key, value) in extra {
                object[key] = value;
            }
        }
        object
    };
    let mut fields = match media {
        Media::Photo => {
            // Telegram re-encodes photos into several sizes; one is enough here.
            json!({"photo": [object(json!({"width": 1280, "height": 960}))]})
        }
        Media::Document => {
            json!({"document": object(json!({"file_name": resolved.file_name.clone().unwrap_or_else(|| "file".into()), "mime_type": file.mime_type}))})
        }
        Media::Video => {
            json!({"video": object(json!({"width": 1280, "height": 720, "duration": 0, "mime_type": file.mime_type}))})
        }
        Media::Audio => {
            json!({"audio": object(json!({"duration": 0, "mime_type": file.mime_type}))})
        }
        Media::Voice => {
            json!({"voice": object(json!({"duration": 0, "mime_type": file.mime_type}))})
        }
        Media::Sticker => {
            json!({"sticker": object(json!({"type": "regular", "width": 512, "height": 512, "is_animated": false, "is_video": false}))})
        }
    };
    if let Some(caption) = caption.filter(|_| !matches!(media, Media::Sticker)) {
        fields["caption"] = json!(caption);
    }
    let fields = with_markup(fields, params);
    Ok(ok(
        record_sent(
            state,
            token,
            media.method(),
            chat_id,
            fields,
            resolved.fetch,
        ),
        None,
    ))
}

/// `/file/bot<token>/<file_path>`.
pub(crate) async fn file_download(
    State(state): State<Arc<TelegramState>>,
    Path((segment, file_path)): Path<(String, String)>,
) -> Response {
    let known = bot_token(&segment).is_some_and(|token| lock(&state.bots).contains_key(token));
    if !known {
        return ApiError::unauthorized().into_response();
    }
    let Some(file_id) = lock(&state.file_paths).get(&file_path).cloned() else {
        return ApiError::not_found().into_response();
    };
    let files = lock(&state.files);
    let Some(stored) = files.get(&file_id) else {
        return ApiError::not_found().into_response();
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&stored.file.mime_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    (headers, stored.bytes.clone()).into_response()
}

/// The last recorded version of a message this bot sent to a chat.
fn find_sent(state: &TelegramState, chat_id: i64, message_id: i64) -> Option<Value> {
    state
        .sent
        .snapshot()
        .into_iter()
        .rev()
        .find(|sent| {
            sent.chat_id == chat_id && sent.message["message_id"].as_i64() == Some(message_id)
        })
        .map(|sent| sent.message)
}

/// `editMessageText` / `editMessageReplyMarkup` on a message the bot sent;
/// the edited message is recorded as a new version.
fn edit_message(
    state: &TelegramState,
    token: &str,
    method: &str,
    params: &Params,
) -> Result<Response, ApiError> {
    let chat_id = target_chat(state, params)?;
    let message_id = int_param(params, "message_id")
        .ok_or_else(|| ApiError::bad_request("message identifier is not specified"))?;
    let editing_text = method.eq_ignore_ascii_case("editMessageText");
    if editing_text {
        markup::text(str_param(params, "text"))?;
    }
    common_checks(params, "text")?;
    let mut message = find_sent(state, chat_id, message_id)
        .ok_or_else(|| ApiError::bad_request("message to edit not found"))?;
    let unchanged_text = !editing_text || message["text"].as_str() == str_param(params, "text");
    let unchanged_markup = message.get("reply_markup") == params.get("reply_markup");
    if unchanged_text && unchanged_markup {
        return Err(ApiError::bad_request(
            "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        ));
    }
    if editing_text {
        message["text"] = json!(str_param(params, "text"));
    }
    match params
        .get("reply_markup")
        .filter(|markup| markup.get("inline_keyboard").is_some())
    {
        Some(markup) => message["reply_markup"] = markup.clone(),
        None => {
            if let Some(object) = message.as_object_mut() {
                object.remove("reply_markup");
            }
        }
    }
    message["edit_date"] = json!(unix_now());
    state.sent.push(SentMessage {
        token: token.to_owned(),
        chat_id,
        method: method.to_owned(),
        message: message.clone(),
        media: None,
    });
    Ok(ok(message, None))
}
