//! Slack simulator: the Web API the connector calls (`chat.postMessage`
//! with Block Kit validation and Slack's `{ok:false, error}` answers,
//! `files.getUploadURLExternal` / upload / `files.completeUploadExternal`,
//! `oauth.v2.access`, private file downloads that need the bot token), the
//! OAuth v2 authorize page (approves at once, like an administrator
//! clicking "Allow"), and the Events API side: signed `event_callback`,
//! `url_verification` and interactivity posts with Slack's retries
//! (`X-Slack-Retry-Num`, `X-Slack-Retry-Reason`).

mod api;
pub mod blocks;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use crate::SimError;
use crate::recording::{RecordList, lock};
use crate::server::{DEFAULT_LISTEN, ServerHandle};

pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";

/// `v0=` hex(HMAC-SHA256(signing secret, `v0:{timestamp}:{body}`)).
pub fn sign(signing_secret: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(signing_secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

/// A workspace the app is (or can be) installed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub team_id: String,
    pub team_name: String,
    pub enterprise: Option<(String, String)>,
    /// The bot token of the app in this workspace.
    pub bot_token: String,
    pub bot_user_id: String,
}

impl Workspace {
    pub fn new(team_id: &str, team_name: &str, bot_token: &str) -> Self {
        Self {
            team_id: team_id.into(),
            team_name: team_name.into(),
            enterprise: None,
            bot_token: bot_token.into(),
            bot_user_id: format!("UB{team_id}"),
        }
    }

    pub fn with_enterprise(mut self, id: &str, name: &str) -> Self {
        self.enterprise = Some((id.into(), name.into()));
        self
    }
}

/// A user as `users.info` describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackUser {
    pub name: String,
    pub real_name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub locale: Option<String>,
}

impl SlackUser {
    pub fn new(name: &str, real_name: &str) -> Self {
        Self {
            name: name.into(),
            real_name: real_name.into(),
            display_name: None,
            email: None,
            locale: None,
        }
    }
}

/// Retries of an event the webhook did not answer with 2xx in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (Slack: 3).
    pub retries: u32,
    pub interval: Duration,
    /// Slack waits 3 s for an answer.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 3,
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(3),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SlackOptions {
    pub listen: std::net::SocketAddr,
    pub app_id: String,
    pub signing_secret: String,
    pub client_id: String,
    pub client_secret: String,
    pub workspaces: Vec<Workspace>,
    pub retry: RetryPolicy,
}

impl SlackOptions {
    pub fn new(signing_secret: &str) -> Self {
        Self {
            listen: std::net::SocketAddr::from(DEFAULT_LISTEN),
            app_id: "A0SIMAPP01".into(),
            signing_secret: signing_secret.into(),
            client_id: "1111.2222".into(),
            client_secret: "sim-client-secret".into(),
            workspaces: Vec::new(),
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_workspace(mut self, workspace: Workspace) -> Self {
        self.workspaces.push(workspace);
        self
    }
}

/// One Web API call and how it was answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiCall {
    pub method: String,
    pub team_id: Option<String>,
    pub http_status: u16,
    pub error: Option<String>,
}

/// A message the bot posted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostedMessage {
    pub team_id: String,
    pub channel: String,
    pub ts: String,
    pub text: Option<String>,
    pub blocks: Option<Value>,
}

/// A file the bot uploaded into a channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UploadedFile {
    pub team_id: String,
    pub channel: String,
    pub file_id: String,
    pub filename: String,
    pub title: Option<String>,
    pub bytes_len: usize,
}

/// A download of a private file (by the connector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDownload {
    pub file_id: String,
    pub http_status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub retry_num: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// The outcome of posting one request to the webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventDelivery {
    pub body: String,
    pub attempts: Vec<Attempt>,
    pub response_body: Option<String>,
}

impl EventDelivery {
    pub fn status(&self) -> Option<u16> {
        self.attempts.last().and_then(|a| a.status)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub method: String,
    pub http_status: u16,
    pub error: String,
    pub retry_after: Option<u64>,
    pub remaining: u32,
}

pub(crate) struct StoredFile {
    pub team_id: String,
    pub name: String,
    pub mime: String,
    pub bytes: Bytes,
}

pub(crate) struct PendingUpload {
    pub team_id: String,
    pub filename: String,
    pub length: usize,
    pub bytes: Option<Bytes>,
}

pub(crate) struct SlackState {
    pub options: SlackOptions,
    pub base_url: OnceLock<String>,
    pub http: reqwest::Client,
    pub next_id: AtomicU64,
    /// Channels that exist, per team; archived ones.
    pub channels: Mutex<HashMap<String, String>>,
    pub archived: Mutex<Vec<String>>,
    pub files: Mutex<HashMap<String, StoredFile>>,
    pub uploads: Mutex<HashMap<String, PendingUpload>>,
    /// OAuth codes issued by the authorize page: code → team id.
    pub codes: Mutex<HashMap<String, String>>,
    /// The workspace the next authorize approves (default: the first).
    pub approving_team: Mutex<Option<String>>,
    /// Profiles by (team, user id).
    pub users: Mutex<HashMap<(String, String), SlackUser>>,
    pub faults: Mutex<Vec<Fault>>,
    pub calls: RecordList<ApiCall>,
    pub posted: RecordList<PostedMessage>,
    pub uploaded: RecordList<UploadedFile>,
    pub downloads: RecordList<FileDownload>,
    pub deliveries: RecordList<EventDelivery>,
}

impl SlackState {
    pub(crate) fn id(&self, prefix: &str) -> String {
        format!(
            "{prefix}{:08X}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub(crate) fn base_url(&self) -> String {
        self.base_url.get().cloned().unwrap_or_default()
    }

    pub(crate) fn workspace_by_token(&self, token: &str) -> Option<&Workspace> {
        self.options
            .workspaces
            .iter()
            .find(|w| w.bot_token == token)
    }

    pub(crate) fn take_fault(&self, method: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let index = faults
            .iter()
            .position(|f| f.method == method && f.remaining > 0)?;
        let fault = faults[index].clone();
        faults[index].remaining -= 1;
        if faults[index].remaining == 0 {
            faults.remove(index);
        }
        Some(fault)
    }
}

/// A running Slack simulator. Stops when dropped.
pub struct SlackSimulator {
    state: Arc<SlackState>,
    server: Option<ServerHandle>,
}

impl SlackSimulator {
    pub async fn start(options: SlackOptions) -> Result<Self, SimError> {
        let listen = options.listen;
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(SimError::HttpClient)?;
        let state = Arc::new(SlackState {
            options,
            base_url: OnceLock::new(),
            http,
            next_id: AtomicU64::new(1),
            channels: Mutex::new(HashMap::new()),
            archived: Mutex::new(Vec::new()),
            files: Mutex::new(HashMap::new()),
            uploads: Mutex::new(HashMap::new()),
            codes: Mutex::new(HashMap::new()),
            approving_team: Mutex::new(None),
            users: Mutex::new(HashMap::new()),
            faults: Mutex::new(Vec::new()),
            calls: RecordList::new(),
            posted: RecordList::new(),
            uploaded: RecordList::new(),
            downloads: RecordList::new(),
            deliveries: RecordList::new(),
        });
        let server = ServerHandle::serve(listen, api::router(state.clone())).await?;
        let _ = state.base_url.set(format!("http://{}", server.addr()));
        Ok(Self {
            state,
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`: Web API under `/api/`, OAuth under `/oauth/v2/`.
    pub fn base_url(&self) -> String {
        self.state.base_url()
    }

    pub fn options(&self) -> &SlackOptions {
        &self.state.options
    }

    pub async fn shutdown(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }

    /// Opens a direct-message channel between the app and `user` in `team`.
    pub fn open_dm(&self, team_id: &str, user: &str) -> String {
        let channel = format!("D{}", &self.state.id("")[..8]);
        lock(&self.state.channels).insert(channel.clone(), team_id.to_owned());
        let _ = user;
        channel
    }

    /// Adds a user to `team` (answered by `users.info`).
    pub fn add_user(&self, team_id: &str, user_id: &str, user: SlackUser) {
        lock(&self.state.users).insert((team_id.to_owned(), user_id.to_owned()), user);
    }

    /// The authorize page approves installs into `team_id` from now on.
    pub fn approve_as(&self, team_id: &str) {
        *lock(&self.state.approving_team) = Some(team_id.to_owned());
    }

    /// Archives a channel: posts to it answer `is_archived`.
    pub fn archive(&self, channel: &str) {
        lock(&self.state.archived).push(channel.to_owned());
    }

    /// The next `count` calls of `method` answer HTTP 429 `ratelimited`
    /// with `Retry-After: retry_after`.
    pub fn inject_rate_limit(&self, method: &str, retry_after: u64, count: u32) {
        lock(&self.state.faults).push(Fault {
            method: method.into(),
            http_status: 429,
            error: "ratelimited".into(),
            retry_after: Some(retry_after),
            remaining: count,
        });
    }

    /// The next `count` calls of `method` answer HTTP `status`
    /// `{ok:false, error}`.
    pub fn inject_error(&self, method: &str, http_status: u16, error: &str, count: u32) {
        lock(&self.state.faults).push(Fault {
            method: method.into(),
            http_status,
            error: error.into(),
            retry_after: None,
            remaining: count,
        });
    }

    pub fn calls(&self) -> Vec<ApiCall> {
        self.state.calls.snapshot()
    }

    pub fn posted(&self) -> Vec<PostedMessage> {
        self.state.posted.snapshot()
    }

    pub fn posted_to(&self, channel: &str) -> Vec<PostedMessage> {
        self.posted()
            .into_iter()
            .filter(|m| m.channel == channel)
            .collect()
    }

    pub fn uploaded(&self) -> Vec<UploadedFile> {
        self.state.uploaded.snapshot()
    }

    pub fn downloads(&self) -> Vec<FileDownload> {
        self.state.downloads.snapshot()
    }

    pub fn deliveries(&self) -> Vec<EventDelivery> {
        self.state.deliveries.snapshot()
    }

    /// Waits (without polling) until `count` messages were posted.
    pub async fn wait_posted(&self, count: usize, timeout: Duration) -> bool {
        self.state.posted.wait_len(count, timeout).await
    }

    pub async fn wait_uploaded(&self, count: usize, timeout: Duration) -> bool {
        self.state.uploaded.wait_len(count, timeout).await
    }

    /// Stores a private file of `team` and returns its `files[]` object
    /// (its `url_private` answers only with that team's bot token).
    pub fn add_file(&self, team_id: &str, name: &str, mime: &str, bytes: Vec<u8>) -> Value {
        let id = self.state.id("F");
        let url = format!("{}/files-pri/{team_id}-{id}/{name}", self.base_url());
        let size = bytes.len();
        lock(&self.state.files).insert(
            id.clone(),
            StoredFile {
                team_id: team_id.into(),
                name: name.into(),
                mime: mime.into(),
                bytes: Bytes::from(bytes),
            },
        );
        json!({
            "id": id, "name": name, "title": name, "mimetype": mime, "filetype": name.rsplit('.').next(),
            "size": size, "url_private": url, "url_private_download": format!("{url}?download=1"),
        })
    }

    /// An `event_callback` carrying a `message.im` event from `user`.
    pub fn message_event(&self, team_id: &str, user: &str, channel: &str, text: &str) -> Value {
        let ts = self.ts();
        let workspace = self
            .state
            .options
            .workspaces
            .iter()
            .find(|w| w.team_id == team_id);
        json!({
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "enterprise_id": workspace.and_then(|w| w.enterprise.as_ref()).map(|(id, _)| id.clone()),
            "api_app_id": self.state.options.app_id,
            "event": {
                "type": "message", "channel_type": "im", "user": user, "text": text,
                "channel": channel, "ts": ts, "event_ts": ts, "team": team_id,
            },
            "type": "event_callback",
            "event_id": self.state.id("Ev"),
            "event_time": chrono::Utc::now().timestamp(),
            "authorizations": [{
                "enterprise_id": null, "team_id": team_id,
                "user_id": workspace.map(|w| w.bot_user_id.clone()), "is_bot": true,
                "is_enterprise_install": false,
            }],
            "is_ext_shared_channel": false,
            "event_context": self.state.id("4-"),
        })
    }

    /// A message event with files (`subtype: file_share`).
    pub fn file_event(
        &self,
        team_id: &str,
        user: &str,
        channel: &str,
        text: &str,
        files: Vec<Value>,
    ) -> Value {
        let mut event = self.message_event(team_id, user, channel, text);
        event["event"]["subtype"] = json!("file_share");
        event["event"]["files"] = Value::Array(files);
        event
    }

    /// The `block_actions` payload of `user` tapping the button whose
    /// `action_id` is `action_id` in a posted message.
    pub fn block_actions(
        &self,
        message: &PostedMessage,
        user: &str,
        action_id: &str,
    ) -> Option<Value> {
        let button = message
            .blocks
            .as_ref()?
            .as_array()?
            .iter()
            .filter(|block| block["type"] == "actions")
            .flat_map(|block| block["elements"].as_array().cloned().unwrap_or_default())
            .find(|element| element["action_id"] == action_id)?;
        let workspace = self
            .state
            .options
            .workspaces
            .iter()
            .find(|w| w.team_id == message.team_id);
        let mut action = json!({
            "type": "button", "action_id": action_id, "block_id": self.state.id("b"),
            "text": button["text"], "action_ts": self.ts(),
        });
        if let Some(value) = button.get("value") {
            action["value"] = value.clone();
        }
        Some(json!({
            "type": "block_actions",
            "user": {"id": user, "username": format!("user-{}", user.to_lowercase()), "name": user, "team_id": message.team_id},
            "api_app_id": self.state.options.app_id,
            "token": "deprecated-verification-token",
            "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel, "is_ephemeral": false},
            "trigger_id": format!("{}.{}.{}", self.state.next_id.fetch_add(1, Ordering::Relaxed), 98765, self.state.id("")),
            "team": {"id": message.team_id, "domain": workspace.map(|w| w.team_name.to_lowercase())},
            "enterprise": workspace.and_then(|w| w.enterprise.as_ref()).map(|(id, name)| json!({"id": id, "name": name})),
            "is_enterprise_install": false,
            "channel": {"id": message.channel, "name": "directmessage"},
            "message": {"type": "message", "ts": message.ts, "text": message.text, "blocks": message.blocks},
            "actions": [action],
        }))
    }

    fn ts(&self) -> String {
        let now = chrono::Utc::now();
        format!(
            "{}.{:06}",
            now.timestamp(),
            self.state.next_id.fetch_add(1, Ordering::Relaxed) % 1_000_000
        )
    }

    /// Signs `body` at `timestamp` with the app's signing secret.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        sign(&self.state.options.signing_secret, timestamp, body)
    }

    /// Posts an Events API body (JSON) to `url` the way Slack does: signed,
    /// retried up to [`RetryPolicy::retries`] times with `X-Slack-Retry-Num`
    /// while the answer is not 2xx within the timeout.
    pub async fn send_event(&self, url: &str, event: &Value) -> EventDelivery {
        let body = event.to_string();
        self.deliver(url, body, "application/json").await
    }

    /// Posts an interactivity payload (form-encoded `payload=`), signed.
    pub async fn send_interaction(&self, url: &str, payload: &Value) -> EventDelivery {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish();
        self.deliver(url, body, "application/x-www-form-urlencoded")
            .await
    }

    /// `url_verification` as Slack sends it when a request URL is saved.
    pub async fn verify_url(&self, url: &str, challenge: &str) -> EventDelivery {
        let body = json!({"token": "deprecated-verification-token", "challenge": challenge, "type": "url_verification"});
        self.deliver(url, body.to_string(), "application/json")
            .await
    }

    async fn deliver(&self, url: &str, body: String, content_type: &str) -> EventDelivery {
        let policy = self.state.options.retry;
        let mut attempts = Vec::new();
        let mut response_body = None;
        for retry_num in 0..=policy.retries {
            if retry_num > 0 {
                tokio::time::sleep(policy.interval).await;
            }
            let timestamp = chrono::Utc::now().timestamp();
            let mut request = self
                .state
                .http
                .post(url)
                .timeout(policy.timeout)
                .header("Content-Type", content_type)
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, self.sign(timestamp, body.as_bytes()))
                .body(body.clone());
            if let Some(last) = attempts.last() {
                let last: &Attempt = last;
                let reason = match (last.status, last.error.as_deref()) {
                    (Some(_), _) => "http_error",
                    (None, Some("timeout")) => "http_timeout",
                    _ => "connection_failed",
                };
                request = request
                    .header("X-Slack-Retry-Num", retry_num.to_string())
                    .header("X-Slack-Retry-Reason", reason);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    attempts.push(Attempt {
                        retry_num,
                        status: Some(status),
                        error: None,
                    });
                    if (200..300).contains(&status) {
                        response_body = Some(text);
                        break;
                    }
                }
                Err(error) => attempts.push(Attempt {
                    retry_num,
                    status: None,
                    error: Some(if error.is_timeout() {
                        "timeout".into()
                    } else {
                        "connection_failed".into()
                    }),
                }),
            }
        }
        let delivery = EventDelivery {
            body,
            attempts,
            response_body,
        };
        self.state.deliveries.push(delivery.clone());
        delivery
    }

    /// Posts raw bytes with the given signature headers (no retries), for
    /// tests of refusals. Returns the status.
    pub async fn post_raw(
        &self,
        url: &str,
        body: Vec<u8>,
        content_type: &str,
        timestamp: Option<i64>,
        signature: Option<&str>,
    ) -> Option<u16> {
        let mut request = self
            .state
            .http
            .post(url)
            .header("Content-Type", content_type)
            .body(body);
        if let Some(timestamp) = timestamp {
            request = request.header(TIMESTAMP_HEADER, timestamp.to_string());
        }
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        request.send().await.ok().map(|r| r.status().as_u16())
    }
}
