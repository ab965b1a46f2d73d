//! The Slack part of the `um-sim` control API, nested under `/__sim/slack`.
//!
//! | method and path | body / query | answer |
//! |---|---|---|
//! | `POST /app` | `{signing_secret, app_id?, client_id?, client_secret?}` | 200 `{app_id, client_id}` |
//! | `POST /workspaces` | `{team_id, team_name, bot_token, enterprise_id?, enterprise_name?}` | 200 `{team_id, bot_user_id}` (same team: replaced) |
//! | `POST /users` | `{team_id, user_id, name, real_name, display_name?, locale?, email?}` | 204 (404 unknown team) |
//! | `POST /dm` | `{team_id, user_id}` | 200 `{channel}` (the same channel for the same user) |
//! | `POST /events` | `{url, team_id, user_id, channel?, text?, file?:{name, mime, bytes_base64}, thread_ts?, event_id?, wait?}` | delivery + `{event_id, channel, ts}` (202 with `wait:false`); `thread_ts`: a reply in that thread |
//! | `POST /interactions` | `{url, user_id, action_id, ts?, wait?}` | delivery (404 no posted button with that `action_id`) |
//! | `POST /verify` | `{url, challenge}` | delivery of `url_verification` |
//! | `POST /faults` | `{method, retry_after, count?=1}` (429 `ratelimited`) or `{method, error, http_status?=200, count?=1}` | 204 |
//! | `POST /archive` | `{channel}` | 204 (posts answer `is_archived`) |
//! | `POST /uninstall` | `{team_id, url?}` | 200 `{deliveries:[...]}`: the team's bot token is revoked (`token_revoked`); with `url`, `app_uninstalled` then `tokens_revoked` are delivered there (404 unknown team) |
//! | `POST /scopes` | `{team_id, revoke?:[scope], grant?:[scope]}` | 204: methods needing a revoked scope answer `missing_scope`; without `files:read` private files answer the HTML sign-in page with 200 |
//! | `POST /approve` | `{team_id}` | 204 (OAuth authorize installs into this team) |
//! | `POST /settings` | `{retry?:{retries?, interval_ms?, timeout_ms?}}` | 204 |
//! | `POST /clear` | | 204 (records emptied) |
//! | `GET /records?kind=calls\|posted\|uploaded\|downloads\|deliveries` | | JSON array |
//! | `GET /wait?kind=K&count=N&timeout_ms=T` | | 200 / 408 `{reached, count}` |
//!
//! A delivery is `{status, attempts:[{retry_num, status, error}], body,
//! response_body}`: `status` is the last attempt's HTTP status (null when
//! the receiver never answered). Posts to the app need a signing secret:
//! without one (`POST /app` not yet called and none configured) they
//! answer 409. Errors are `{"error": "..."}`.

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
    EventDelivery, RetryPolicy, SlackOptions, SlackRecordKind, SlackSimulator, SlackUser, Workspace,
};

/// The `slack` section of the `um-sim --config` file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlackConfig {
    /// Empty until set here or with `POST /app`.
    #[serde(default)]
    pub signing_secret: String,
    pub app_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    #[serde(default)]
    pub workspaces: Vec<WorkspaceSpec>,
    pub retry: Option<RetryConfig>,
}

/// A workspace the app is installed in, as JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkspaceSpec {
    pub team_id: String,
    pub team_name: String,
    pub bot_token: String,
    pub enterprise_id: Option<String>,
    /// Defaults to the enterprise id.
    pub enterprise_name: Option<String>,
}

impl WorkspaceSpec {
    pub fn workspace(&self) -> Workspace {
        let workspace = Workspace::new(&self.team_id, &self.team_name, &self.bot_token);
        match &self.enterprise_id {
            Some(id) => {
                workspace.with_enterprise(id, self.enterprise_name.as_deref().unwrap_or(id))
            }
            None => workspace,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct RetryConfig {
    pub retries: Option<u32>,
    pub interval_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
}

impl RetryConfig {
    fn policy(self, base: RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries.unwrap_or(base.retries),
            interval: self
                .interval_ms
                .map_or(base.interval, Duration::from_millis),
            timeout: self.timeout_ms.map_or(base.timeout, Duration::from_millis),
        }
    }
}

impl SlackConfig {
    pub fn options(&self) -> SlackOptions {
        let mut options = SlackOptions::new(&self.signing_secret);
        if let Some(app_id) = &self.app_id {
            options.app_id.clone_from(app_id);
        }
        if let Some(client_id) = &self.client_id {
            options.client_id.clone_from(client_id);
        }
        if let Some(client_secret) = &self.client_secret {
            options.client_secret.clone_from(client_secret);
        }
        options.workspaces = self
            .workspaces
            .iter()
            .map(WorkspaceSpec::workspace)
            .collect();
        if let Some(retry) = self.retry {
            options.retry = retry.policy(options.retry);
        }
        options
    }
}

type Sim = Arc<SlackSimulator>;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

pub fn routes(sim: Sim) -> Router {
    Router::new()
        .route("/app", post(set_app))
        .route("/workspaces", post(add_workspace))
        .route("/users", post(add_user))
        .route("/dm", post(open_dm))
        .route("/events", post(send_event))
        .route("/interactions", post(send_interaction))
        .route("/verify", post(verify))
        .route("/faults", post(fault))
        .route("/archive", post(archive))
        .route("/uninstall", post(uninstall))
        .route("/scopes", post(scopes))
        .route("/approve", post(approve))
        .route("/settings", post(settings))
        .route("/clear", post(clear))
        .route("/records", get(records))
        .route("/wait", get(wait))
        .with_state(sim)
}

/// A delivery as the control API shows it: with the final status.
pub fn delivery_json(delivery: &EventDelivery) -> Value {
    let mut value = serde_json::to_value(delivery).unwrap_or(Value::Null);
    value["status"] = json!(delivery.status());
    value
}

fn known_team(sim: &SlackSimulator, team_id: &str) -> Result<Workspace, Response> {
    sim.workspace(team_id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            format!("unknown team '{team_id}': POST /__sim/slack/workspaces first"),
        )
    })
}

fn signing_ready(sim: &SlackSimulator) -> Result<(), Response> {
    if sim.options().signing_secret.is_empty() {
        return Err(error(
            StatusCode::CONFLICT,
            "no signing secret: POST /__sim/slack/app first",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct AppBody {
    signing_secret: String,
    app_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn set_app(State(sim): State<Sim>, Json(body): Json<AppBody>) -> Response {
    if body.signing_secret.is_empty() {
        return error(StatusCode::BAD_REQUEST, "signing_secret must not be empty");
    }
    sim.set_app(
        &body.signing_secret,
        body.app_id.as_deref(),
        body.client_id.as_deref(),
        body.client_secret.as_deref(),
    );
    let options = sim.options();
    Json(json!({"app_id": options.app_id, "client_id": options.client_id})).into_response()
}

async fn add_workspace(State(sim): State<Sim>, Json(spec): Json<WorkspaceSpec>) -> Response {
    if spec.team_id.is_empty() || spec.bot_token.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "team_id and bot_token must not be empty",
        );
    }
    let workspace = spec.workspace();
    let answer = json!({"team_id": workspace.team_id, "bot_user_id": workspace.bot_user_id});
    sim.add_workspace(workspace);
    Json(answer).into_response()
}

#[derive(Deserialize)]
struct UserBody {
    team_id: String,
    user_id: String,
    name: String,
    real_name: String,
    display_name: Option<String>,
    locale: Option<String>,
    email: Option<String>,
}

async fn add_user(State(sim): State<Sim>, Json(body): Json<UserBody>) -> Response {
    if let Err(response) = known_team(&sim, &body.team_id) {
        return response;
    }
    let mut user = SlackUser::new(&body.name, &body.real_name);
    user.display_name = body.display_name;
    user.locale = body.locale;
    user.email = body.email;
    sim.add_user(&body.team_id, &body.user_id, user);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct DmBody {
    team_id: String,
    user_id: String,
}

async fn open_dm(State(sim): State<Sim>, Json(body): Json<DmBody>) -> Response {
    match known_team(&sim, &body.team_id) {
        Ok(_) => {
            Json(json!({"channel": sim.open_dm(&body.team_id, &body.user_id)})).into_response()
        }
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct FileBody {
    name: String,
    mime: String,
    bytes_base64: String,
}

#[derive(Deserialize)]
struct EventBody {
    url: String,
    team_id: String,
    user_id: String,
    /// Default: the app's DM channel with the user.
    channel: Option<String>,
    text: Option<String>,
    file: Option<FileBody>,
    /// The parent `ts` of the thread the message is a reply in.
    thread_ts: Option<String>,
    /// Reuse an event id (a duplicate, as Slack redelivers).
    event_id: Option<String>,
    /// false: answer 202 at once and deliver in the background.
    wait: Option<bool>,
}

/// The `event_callback` body for a control `/events` request.
fn event_for(sim: &SlackSimulator, body: &EventBody) -> Result<Value, Response> {
    signing_ready(sim)?;
    known_team(sim, &body.team_id)?;
    let channel = match &body.channel {
        Some(channel) if sim.channel_team(channel).as_deref() == Some(body.team_id.as_str()) => {
            channel.clone()
        }
        Some(channel) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!(
                    "channel '{channel}' is not a channel of team '{}': open one with POST /__sim/slack/dm or leave channel out",
                    body.team_id
                ),
            ));
        }
        None => sim.open_dm(&body.team_id, &body.user_id),
    };
    let text = body.text.as_deref().unwrap_or("");
    let mut event = match &body.file {
        Some(file) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&file.bytes_base64)
                .map_err(|e| error(StatusCode::BAD_REQUEST, format!("file.bytes_base64: {e}")))?;
            let stored = sim.add_file(&body.team_id, &file.name, &file.mime, bytes);
            sim.file_event(&body.team_id, &body.user_id, &channel, text, vec![stored])
        }
        None if body.text.is_some() => match &body.thread_ts {
            Some(thread_ts) => {
                sim.thread_reply_event(&body.team_id, &body.user_id, &channel, thread_ts, text)
            }
            None => sim.message_event(&body.team_id, &body.user_id, &channel, text),
        },
        None => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "nothing to send: give text or file",
            ));
        }
    };
    if let (Some(thread_ts), Some(_)) = (&body.thread_ts, &body.file) {
        event["event"]["thread_ts"] = json!(thread_ts);
    }
    if let Some(event_id) = &body.event_id {
        event["event_id"] = json!(event_id);
    }
    Ok(event)
}

async fn send_event(State(sim): State<Sim>, Json(body): Json<EventBody>) -> Response {
    let event = match event_for(&sim, &body) {
        Ok(event) => event,
        Err(response) => return response,
    };
    let summary = json!({"event_id": event["event_id"], "channel": event["event"]["channel"],
                         "ts": event["event"]["ts"]});
    if body.wait == Some(false) {
        tokio::spawn(async move { sim.send_event(&body.url, &event).await });
        return (StatusCode::ACCEPTED, Json(summary)).into_response();
    }
    let mut answer = delivery_json(&sim.send_event(&body.url, &event).await);
    for key in ["event_id", "channel", "ts"] {
        answer[key] = summary[key].clone();
    }
    Json(answer).into_response()
}

#[derive(Deserialize)]
struct InteractionBody {
    url: String,
    user_id: String,
    action_id: String,
    ts: Option<String>,
    wait: Option<bool>,
}

async fn send_interaction(State(sim): State<Sim>, Json(body): Json<InteractionBody>) -> Response {
    if let Err(response) = signing_ready(&sim) {
        return response;
    }
    let payload = sim
        .message_with_action(&body.action_id, body.ts.as_deref())
        .and_then(|message| sim.block_actions(&message, &body.user_id, &body.action_id));
    let Some(payload) = payload else {
        let which = body.ts.as_deref().map_or_else(
            || "no posted message".to_owned(),
            |ts| format!("no posted message with ts '{ts}'"),
        );
        return error(
            StatusCode::NOT_FOUND,
            format!("{which} has a button with action_id '{}'", body.action_id),
        );
    };
    if body.wait == Some(false) {
        tokio::spawn(async move { sim.send_interaction(&body.url, &payload).await });
        return StatusCode::ACCEPTED.into_response();
    }
    Json(delivery_json(
        &sim.send_interaction(&body.url, &payload).await,
    ))
    .into_response()
}

#[derive(Deserialize)]
struct VerifyBody {
    url: String,
    challenge: String,
}

async fn verify(State(sim): State<Sim>, Json(body): Json<VerifyBody>) -> Response {
    if let Err(response) = signing_ready(&sim) {
        return response;
    }
    Json(delivery_json(
        &sim.verify_url(&body.url, &body.challenge).await,
    ))
    .into_response()
}

#[derive(Deserialize)]
struct FaultBody {
    method: String,
    retry_after: Option<u64>,
    error: Option<String>,
    http_status: Option<u16>,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

async fn fault(State(sim): State<Sim>, Json(body): Json<FaultBody>) -> Response {
    match (body.retry_after, &body.error, body.http_status) {
        (Some(retry_after), None, None | Some(429)) => {
            sim.inject_rate_limit(&body.method, retry_after, body.count);
        }
        (None, Some(slack_error), status) => {
            let status = status.unwrap_or(200);
            if StatusCode::from_u16(status).is_err() {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("http_status {status} is not an HTTP status"),
                );
            }
            sim.inject_error(&body.method, status, slack_error, body.count);
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give retry_after (a rate limit) or error with an optional http_status, not both",
            );
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct ArchiveBody {
    channel: String,
}

async fn archive(State(sim): State<Sim>, Json(body): Json<ArchiveBody>) -> StatusCode {
    sim.archive(&body.channel);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct UninstallBody {
    team_id: String,
    url: Option<String>,
}

async fn uninstall(State(sim): State<Sim>, Json(body): Json<UninstallBody>) -> Response {
    if let Err(response) = known_team(&sim, &body.team_id) {
        return response;
    }
    if body.url.is_some()
        && let Err(response) = signing_ready(&sim)
    {
        return response;
    }
    sim.uninstall(&body.team_id);
    let mut deliveries = Vec::new();
    if let Some(url) = &body.url {
        for event in [
            sim.app_uninstalled_event(&body.team_id),
            sim.tokens_revoked_event(&body.team_id),
        ] {
            deliveries.push(delivery_json(&sim.send_event(url, &event).await));
        }
    }
    Json(json!({"deliveries": deliveries})).into_response()
}

#[derive(Deserialize)]
struct ScopesBody {
    team_id: String,
    #[serde(default)]
    revoke: Vec<String>,
    #[serde(default)]
    grant: Vec<String>,
}

async fn scopes(State(sim): State<Sim>, Json(body): Json<ScopesBody>) -> Response {
    if let Err(response) = known_team(&sim, &body.team_id) {
        return response;
    }
    for scope in &body.revoke {
        sim.revoke_scope(&body.team_id, scope);
    }
    for scope in &body.grant {
        sim.grant_scope(&body.team_id, scope);
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct ApproveBody {
    team_id: String,
}

async fn approve(State(sim): State<Sim>, Json(body): Json<ApproveBody>) -> Response {
    match known_team(&sim, &body.team_id) {
        Ok(_) => {
            sim.approve_as(&body.team_id);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct SettingsBody {
    retry: Option<RetryConfig>,
}

async fn settings(State(sim): State<Sim>, Json(body): Json<SettingsBody>) -> StatusCode {
    if let Some(retry) = body.retry {
        sim.set_retry(retry.policy(sim.options().retry));
    }
    StatusCode::NO_CONTENT
}

async fn clear(State(sim): State<Sim>) -> StatusCode {
    sim.clear_records();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct KindQuery {
    kind: String,
    count: Option<usize>,
    timeout_ms: Option<u64>,
}

fn kind(text: &str) -> Result<SlackRecordKind, Response> {
    text.parse()
        .map_err(|e: String| error(StatusCode::BAD_REQUEST, e))
}

fn to_json<T: serde::Serialize>(items: Vec<T>) -> Value {
    serde_json::to_value(items).unwrap_or(Value::Null)
}

async fn records(State(sim): State<Sim>, Query(query): Query<KindQuery>) -> Response {
    let values = match kind(&query.kind) {
        Ok(SlackRecordKind::Call) => to_json(sim.calls()),
        Ok(SlackRecordKind::Posted) => to_json(sim.posted()),
        Ok(SlackRecordKind::Uploaded) => to_json(sim.uploaded()),
        Ok(SlackRecordKind::Download) => to_json(sim.downloads()),
        Ok(SlackRecordKind::Delivery) => {
            Value::Array(sim.deliveries().iter().map(delivery_json).collect())
        }
        Err(response) => return response,
    };
    Json(values).into_response()
}

/// Blocks until `count` records of `kind` exist (default 1): 200 when
/// reached, 408 on timeout (default 10 s, at most 10 min).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_builds_the_app_and_its_workspaces() {
        let config: SlackConfig = serde_json::from_value(json!({
            "signing_secret": "s3cr3t", "app_id": "A1", "client_id": "1.2", "client_secret": "cs",
            "workspaces": [
                {"team_id": "T1", "team_name": "Acme", "bot_token": "xoxb-1"},
                {"team_id": "T2", "team_name": "Beta", "bot_token": "xoxb-2", "enterprise_id": "E1"}
            ],
            "retry": {"retries": 1, "interval_ms": 5}
        }))
        .unwrap();
        let options = config.options();
        assert_eq!(
            (
                options.signing_secret.as_str(),
                options.app_id.as_str(),
                options.client_id.as_str(),
                options.client_secret.as_str()
            ),
            ("s3cr3t", "A1", "1.2", "cs")
        );
        assert_eq!(options.workspaces.len(), 2);
        assert_eq!(options.workspaces[0].enterprise, None);
        assert_eq!(
            options.workspaces[1].enterprise,
            Some(("E1".to_owned(), "E1".to_owned()))
        );
        assert_eq!(options.retry.retries, 1);
        assert_eq!(options.retry.interval, Duration::from_millis(5));
        // Not given: Slack's 3 s answer timeout stays.
        assert_eq!(options.retry.timeout, RetryPolicy::default().timeout);
    }

    #[test]
    fn an_empty_config_has_no_signing_secret_yet() {
        let options = SlackConfig::default().options();
        assert!(options.signing_secret.is_empty());
        assert!(options.workspaces.is_empty());
    }
}
