//! The HTTP side of the Slack simulator: Web API methods, OAuth authorize,
//! upload URLs and private file URLs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    ApiCall, FileDownload, PendingUpload, PostedMessage, ReceivedUpload, SlackState, UploadedFile,
    Workspace, blocks,
};
use crate::recording::lock;

type Shared = Arc<SlackState>;

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/{method}", post(method).get(method_get))
        .route("/oauth/v2/authorize", get(authorize))
        .route("/upload/{id}", post(upload))
        .route("/files-pri/{*path}", get(private_file))
        .with_state(state)
}

fn answer(
    state: &SlackState,
    method: &str,
    team: Option<&str>,
    status: StatusCode,
    body: Value,
) -> Response {
    state.calls.push(ApiCall {
        method: method.to_owned(),
        team_id: team.map(str::to_owned),
        http_status: status.as_u16(),
        error: body["error"].as_str().map(str::to_owned),
    });
    (status, axum::Json(body)).into_response()
}

fn fail(state: &SlackState, method: &str, team: Option<&str>, error: &str) -> Response {
    answer(
        state,
        method,
        team,
        StatusCode::OK,
        json!({"ok": false, "error": error}),
    )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Arguments as Slack reads them: JSON or form body.
fn arguments(headers: &HeaderMap, body: &Bytes) -> Option<Value> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        return serde_json::from_slice(body).ok();
    }
    let map: serde_json::Map<String, Value> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    Some(Value::Object(map))
}

/// Read methods (`users.info`) also take their arguments in the query.
async fn method_get(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let args = Value::Object(
        query
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    );
    run_method(&state, &name, &headers, &args)
}

async fn method(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(args) = arguments(&headers, &body) else {
        return fail(&state, &name, None, "invalid_json");
    };
    run_method(&state, &name, &headers, &args)
}

fn run_method(state: &SlackState, name: &str, headers: &HeaderMap, args: &Value) -> Response {
    if name == "oauth.v2.access" {
        return oauth_access(state, args);
    }
    let token = bearer(headers)
        .map(str::to_owned)
        .or_else(|| args["token"].as_str().map(str::to_owned));
    let Some(token) = token else {
        return fail(state, name, None, "not_authed");
    };
    let Some(workspace) = state.workspace_by_token(&token) else {
        return fail(state, name, None, "invalid_auth");
    };
    let team = Some(workspace.team_id.as_str());
    if state.is_revoked(&token) {
        return fail(state, name, team, "token_revoked");
    }
    if let Some(needed) = required_scope(name)
        && !state.has_scope(&workspace.team_id, needed)
    {
        return answer(
            state,
            name,
            team,
            StatusCode::OK,
            json!({"ok": false, "error": "missing_scope", "needed": needed,
                   "provided": granted_scopes(state, &workspace.team_id)}),
        );
    }
    if let Some(fault) = state.take_fault(name) {
        let status =
            StatusCode::from_u16(fault.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = answer(
            state,
            name,
            team,
            status,
            json!({"ok": false, "error": fault.error}),
        );
        if let Some(after) = fault.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, after.into());
        }
        return response;
    }
    match name {
        "chat.postMessage" => post_message(state, &workspace, args),
        "files.getUploadURLExternal" => get_upload_url(state, &workspace, args),
        "files.completeUploadExternal" => complete_upload(state, &workspace, args),
        "users.info" => users_info(state, &workspace, args),
        "auth.test" => answer(
            state,
            name,
            team,
            StatusCode::OK,
            json!({"ok": true, "team_id": workspace.team_id, "team": workspace.team_name, "user_id": workspace.bot_user_id}),
        ),
        _ => fail(state, name, team, "unknown_method"),
    }
}

/// Bot scopes the simulated app is installed with.
const APP_SCOPES: [&str; 5] = [
    "chat:write",
    "im:history",
    "files:read",
    "files:write",
    "users:read",
];

/// The scope a method needs (Slack answers `missing_scope` without it).
fn required_scope(method: &str) -> Option<&'static str> {
    match method {
        "chat.postMessage" => Some("chat:write"),
        "files.getUploadURLExternal" | "files.completeUploadExternal" => Some("files:write"),
        "users.info" => Some("users:read"),
        _ => None,
    }
}

fn granted_scopes(state: &SlackState, team_id: &str) -> String {
    APP_SCOPES
        .iter()
        .filter(|scope| state.has_scope(team_id, scope))
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

fn users_info(state: &SlackState, workspace: &Workspace, args: &Value) -> Response {
    let method = "users.info";
    let team = Some(workspace.team_id.as_str());
    let id = args["user"].as_str().unwrap_or("");
    let Some(user) = lock(&state.users)
        .get(&(workspace.team_id.clone(), id.to_owned()))
        .cloned()
    else {
        return fail(state, method, team, "user_not_found");
    };
    let display_name = user.display_name.clone().unwrap_or_default();
    answer(
        state,
        method,
        team,
        StatusCode::OK,
        json!({"ok": true, "user": {
            "id": id, "team_id": workspace.team_id, "name": user.name, "real_name": user.real_name,
            "deleted": false, "is_bot": false, "locale": user.locale, "tz": "Europe/Paris",
            "profile": {"display_name": display_name, "real_name": user.real_name,
                        "email": user.email, "image_72": format!("{}/avatars/{id}_72.png", state.base_url())},
        }}),
    )
}

fn channel_check(
    state: &SlackState,
    workspace: &Workspace,
    channel: &str,
) -> Result<(), &'static str> {
    match lock(&state.channels).get(channel) {
        Some(team) if *team == workspace.team_id => {}
        _ => return Err("channel_not_found"),
    }
    if lock(&state.archived).iter().any(|c| c == channel) {
        return Err("is_archived");
    }
    Ok(())
}

fn post_message(state: &SlackState, workspace: &Workspace, args: &Value) -> Response {
    let method = "chat.postMessage";
    let team = Some(workspace.team_id.as_str());
    let Some(channel) = args["channel"].as_str() else {
        return fail(state, method, team, "channel_not_found");
    };
    if let Err(error) = channel_check(state, workspace, channel) {
        return fail(state, method, team, error);
    }
    let text = args["text"].as_str().map(str::to_owned);
    // Form posts carry blocks as a JSON string.
    let blocks = match &args["blocks"] {
        Value::String(s) => serde_json::from_str(s).ok(),
        Value::Null => None,
        other => Some(other.clone()),
    };
    if text.as_deref().is_none_or(str::is_empty) && blocks.is_none() {
        return fail(state, method, team, "no_text");
    }
    if text
        .as_deref()
        .is_some_and(|t| t.chars().count() > blocks::MAX_TEXT)
    {
        return fail(state, method, team, "msg_too_long");
    }
    if let Some(blocks) = &blocks
        && let Err(reason) = blocks::validate(blocks)
    {
        tracing::debug!(%reason, "invalid_blocks");
        return fail(state, method, team, "invalid_blocks");
    }
    let ts = format!(
        "{}.{:06}",
        chrono::Utc::now().timestamp(),
        state
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % 1_000_000
    );
    let thread_ts = args["thread_ts"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    state.posted.push(PostedMessage {
        team_id: workspace.team_id.clone(),
        channel: channel.to_owned(),
        ts: ts.clone(),
        thread_ts: thread_ts.clone(),
        text: text.clone(),
        blocks: blocks.clone(),
    });
    answer(
        state,
        method,
        team,
        StatusCode::OK,
        json!({"ok": true, "channel": channel, "ts": ts, "message": {"type": "message", "text": text, "bot_id": format!("B{}", workspace.team_id), "ts": ts, "thread_ts": thread_ts, "blocks": blocks}}),
    )
}

fn get_upload_url(state: &SlackState, workspace: &Workspace, args: &Value) -> Response {
    let method = "files.getUploadURLExternal";
    let team = Some(workspace.team_id.as_str());
    let filename = args["filename"].as_str().unwrap_or("");
    let length = args["length"]
        .as_str()
        .and_then(|l| l.parse::<usize>().ok())
        .or_else(|| args["length"].as_u64().map(|l| l as usize));
    let Some(length) = length.filter(|_| !filename.is_empty()) else {
        return fail(state, method, team, "invalid_arguments");
    };
    let id = state.id("F");
    lock(&state.uploads).insert(
        id.clone(),
        PendingUpload {
            team_id: workspace.team_id.clone(),
            filename: filename.to_owned(),
            length,
            received: None,
        },
    );
    let url = format!("{}/upload/{id}", state.base_url());
    answer(
        state,
        method,
        team,
        StatusCode::OK,
        json!({"ok": true, "upload_url": url, "file_id": id}),
    )
}

/// An upload URL's POST, read as it comes (size and SHA-256 kept, not the
/// bytes): Slack takes files far over axum's default body limit, and
/// exactly the `length` announced to `files.getUploadURLExternal`.
async fn upload(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(length) = lock(&state.uploads).get(&id).map(|pending| pending.length) else {
        return (StatusCode::NOT_FOUND, "unknown upload").into_response();
    };
    let refuse = |detail: String| (StatusCode::BAD_REQUEST, detail).into_response();
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if let Some(announced) = announced.filter(|announced| *announced != length) {
        return refuse(format!(
            "expected {length} bytes, Content-Length says {announced}"
        ));
    }
    let mut hasher = Sha256::new();
    let mut len = 0usize;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else {
            return refuse(format!("upload cut after {len} of {length} bytes"));
        };
        len += chunk.len();
        if len > length {
            return refuse(format!("expected {length} bytes, got more"));
        }
        hasher.update(&chunk);
    }
    if len != length {
        return refuse(format!("expected {length} bytes, got {len}"));
    }
    let sha256 = hex(&hasher.finalize());
    match lock(&state.uploads).get_mut(&id) {
        Some(pending) => pending.received = Some(ReceivedUpload { len, sha256 }),
        None => return (StatusCode::NOT_FOUND, "unknown upload").into_response(),
    }
    (StatusCode::OK, format!("OK - {length}")).into_response()
}

fn complete_upload(state: &SlackState, workspace: &Workspace, args: &Value) -> Response {
    let method = "files.completeUploadExternal";
    let team = Some(workspace.team_id.as_str());
    let files: Option<Vec<Value>> = match &args["files"] {
        Value::String(s) => serde_json::from_str(s).ok(),
        Value::Array(a) => Some(a.clone()),
        _ => None,
    };
    let Some(files) = files.filter(|f| !f.is_empty()) else {
        return fail(state, method, team, "invalid_arguments");
    };
    let channel = args["channel_id"].as_str().map(str::to_owned);
    let text_arg = |name: &str| {
        args[name]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    let thread_ts = text_arg("thread_ts");
    let initial_comment = text_arg("initial_comment");
    // A thread reply names the one channel the thread is in.
    if thread_ts.is_some() && channel.is_none() {
        return fail(state, method, team, "invalid_arguments");
    }
    if let Some(channel) = &channel
        && let Err(error) = channel_check(state, workspace, channel)
    {
        return fail(state, method, team, error);
    }
    let mut done = Vec::new();
    for file in &files {
        let id = file["id"].as_str().unwrap_or("");
        let uploads = lock(&state.uploads);
        let Some(pending) = uploads.get(id).filter(|p| p.team_id == workspace.team_id) else {
            drop(uploads);
            return fail(state, method, team, "file_not_found");
        };
        let Some(received) = &pending.received else {
            drop(uploads);
            return fail(state, method, team, "file_upload_not_complete");
        };
        done.push(UploadedFile {
            team_id: workspace.team_id.clone(),
            channel: channel.clone().unwrap_or_default(),
            file_id: id.to_owned(),
            filename: pending.filename.clone(),
            title: file["title"].as_str().map(str::to_owned),
            bytes_len: received.len,
            sha256: received.sha256.clone(),
            thread_ts: thread_ts.clone(),
            initial_comment: initial_comment.clone(),
        });
    }
    let ids: Vec<Value> = done
        .iter()
        .map(|f| json!({"id": f.file_id, "title": f.title}))
        .collect();
    for file in done {
        state.uploaded.push(file);
    }
    answer(
        state,
        method,
        team,
        StatusCode::OK,
        json!({"ok": true, "files": ids}),
    )
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn oauth_access(state: &SlackState, args: &Value) -> Response {
    let method = "oauth.v2.access";
    let options = lock(&state.options).clone();
    if args["client_id"].as_str() != Some(options.client_id.as_str()) {
        return fail(state, method, None, "invalid_client_id");
    }
    if args["client_secret"].as_str() != Some(options.client_secret.as_str()) {
        return fail(state, method, None, "bad_client_secret");
    }
    let code = args["code"].as_str().unwrap_or("");
    let Some(team_id) = lock(&state.codes).remove(code) else {
        return fail(state, method, None, "invalid_code");
    };
    let Some(mut workspace) = options
        .workspaces
        .iter()
        .find(|w| w.team_id == team_id)
        .cloned()
    else {
        return fail(state, method, None, "invalid_code");
    };
    // Installing again after an uninstall issues a new bot token.
    if state.is_revoked(&workspace.bot_token) {
        workspace.bot_token = format!("{}-{}", workspace.bot_token, state.id("r"));
        let mut options = lock(&state.options);
        if let Some(stored) = options.workspaces.iter_mut().find(|w| w.team_id == team_id) {
            stored.bot_token.clone_from(&workspace.bot_token);
        }
    }
    answer(
        state,
        method,
        Some(&team_id),
        StatusCode::OK,
        json!({
            "ok": true,
            "access_token": workspace.bot_token,
            "token_type": "bot",
            "scope": granted_scopes(state, &team_id),
            "bot_user_id": workspace.bot_user_id,
            "app_id": options.app_id,
            "team": {"id": workspace.team_id, "name": workspace.team_name},
            "enterprise": workspace.enterprise.as_ref().map(|(id, name)| json!({"id": id, "name": name})),
            "authed_user": {"id": "UADMIN"},
            "is_enterprise_install": false,
        }),
    )
}

/// The administrator approves at once. `team` picks the workspace (default:
/// the first configured).
async fn authorize(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let options = lock(&state.options).clone();
    if query.get("client_id") != Some(&options.client_id) {
        return (StatusCode::BAD_REQUEST, "invalid client_id").into_response();
    }
    let Some(redirect) = query.get("redirect_uri") else {
        return (StatusCode::BAD_REQUEST, "redirect_uri required").into_response();
    };
    let team = query
        .get("team")
        .cloned()
        .or_else(|| lock(&state.approving_team).clone())
        .or_else(|| options.workspaces.first().map(|w| w.team_id.clone()));
    let Some(team) = team else {
        return (StatusCode::BAD_REQUEST, "no workspace").into_response();
    };
    let code = state.id("code-");
    lock(&state.codes).insert(code.clone(), team);
    let mut target = url::Url::parse(redirect).map_or_else(|_| redirect.clone(), |u| u.to_string());
    let query_string = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", query.get("state").map_or("", String::as_str))
        .finish();
    target.push(if target.contains('?') { '&' } else { '?' });
    target.push_str(&query_string);
    Redirect::to(&target).into_response()
}

const SIGN_IN_TYPE: &str = "text/html; charset=utf-8";
const SIGN_IN_PAGE: &str = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Slack</title></head><body><h1>Sign in to your workspace</h1>\
<form action=\"/signin\" method=\"post\"><input name=\"domain\"></form></body></html>";

async fn private_file(
    State(state): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let file_id = path
        .split('/')
        .next()
        .and_then(|first| first.split_once('-'))
        .map(|(_, id)| id.to_owned())
        .unwrap_or_default();
    let token = bearer(&headers);
    let token_team = token
        .and_then(|t| state.workspace_by_token(t))
        .map(|w| w.team_id.clone());
    // A token Slack knows but that may not read files (revoked by an
    // uninstall, or installed without `files:read`) gets the sign-in page
    // with HTTP 200, as Slack's redirect to it ends.
    let sign_in_page = |team: &str| {
        token.is_some_and(|t| state.is_revoked(t)) || !state.has_scope(team, "files:read")
    };
    let files = lock(&state.files);
    let (status, content_type, response) = match files.get(&file_id) {
        None => (
            StatusCode::NOT_FOUND,
            None,
            StatusCode::NOT_FOUND.into_response(),
        ),
        // Slack answers an unauthenticated download with its login page.
        Some(file) if token_team.as_deref() != Some(file.team_id.as_str()) => (
            StatusCode::FORBIDDEN,
            Some("text/html".to_owned()),
            (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/html")],
                "<html>sign in</html>",
            )
                .into_response(),
        ),
        Some(file) if sign_in_page(&file.team_id) => (
            StatusCode::OK,
            Some(SIGN_IN_TYPE.to_owned()),
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, SIGN_IN_TYPE)],
                SIGN_IN_PAGE,
            )
                .into_response(),
        ),
        Some(file) => (
            StatusCode::OK,
            Some(file.mime.clone()),
            (
                [
                    (header::CONTENT_TYPE, file.mime.clone()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}\"", file.name),
                    ),
                ],
                file.bytes.clone(),
            )
                .into_response(),
        ),
    };
    drop(files);
    state.downloads.push(FileDownload {
        file_id,
        http_status: status.as_u16(),
        content_type,
    });
    response
}
