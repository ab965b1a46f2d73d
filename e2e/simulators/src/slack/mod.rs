//! Slack simulator: the Web API the connector calls (`chat.postMessage`
//! with Block Kit validation and Slack's `{ok:false, error}` answers,
//! `files.getUploadURLExternal` / upload / `files.completeUploadExternal`,
//! `users.info`, `auth.test`, `oauth.v2.access`, private file downloads
//! that need the bot token), the OAuth v2 authorize page (approves at once,
//! like an administrator clicking "Allow"), and the Events API side: signed
//! `event_callback`, `url_verification` and interactivity posts with
//! Slack's retries (`X-Slack-Retry-Num`, `X-Slack-Retry-Reason`).
//!
//! The app (signing secret, ids) and the workspaces it is installed in are
//! state, not only construction options: a scenario learns the signing
//! secret at run time and installs workspaces as it goes
//! ([`control`] drives this over HTTP under `/__sim/slack`).

mod api;
pub mod blocks;
pub mod control;
mod events;
mod records;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use serde_json::{Value, json};

pub use records::{
    ApiCall, Attempt, EventDelivery, FileDownload, PostedMessage, SlackRecordKind, UploadedFile,
};

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
    /// Once the bytes came, all `length` of them.
    pub received: Option<ReceivedUpload>,
}

/// What an upload brought: its size and checksum, not its bytes (uploads
/// of up to 50 MiB are streamed through).
pub(crate) struct ReceivedUpload {
    pub len: usize,
    pub sha256: String,
}

pub(crate) struct SlackState {
    /// The app and its workspaces as they are now (changed at run time).
    pub options: Mutex<SlackOptions>,
    pub base_url: OnceLock<String>,
    pub http: reqwest::Client,
    pub next_id: AtomicU64,
    /// Channels that exist → their team; archived ones.
    pub channels: Mutex<HashMap<String, String>>,
    pub archived: Mutex<Vec<String>>,
    /// The app's direct-message channel with a user: (team, user) → channel.
    pub dms: Mutex<HashMap<(String, String), String>>,
    pub files: Mutex<HashMap<String, StoredFile>>,
    pub uploads: Mutex<HashMap<String, PendingUpload>>,
    /// OAuth codes issued by the authorize page: code → team id.
    pub codes: Mutex<HashMap<String, String>>,
    /// The workspace the next authorize approves (default: the first).
    pub approving_team: Mutex<Option<String>>,
    /// Profiles by (team, user id).
    pub users: Mutex<HashMap<(String, String), SlackUser>>,
    pub faults: Mutex<Vec<Fault>>,
    /// Bot tokens revoked by an uninstall: calls answer `token_revoked`.
    pub revoked_tokens: Mutex<HashSet<String>>,
    /// Scopes a workspace's install lacks: (team, scope).
    pub missing_scopes: Mutex<HashSet<(String, String)>>,
    pub calls: RecordList<ApiCall>,
    pub posted: RecordList<PostedMessage>,
    pub uploaded: RecordList<UploadedFile>,
    pub downloads: RecordList<FileDownload>,
    pub deliveries: RecordList<EventDelivery>,
}

impl SlackState {
    fn new(options: SlackOptions) -> Result<Self, SimError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(SimError::HttpClient)?;
        Ok(Self {
            options: Mutex::new(options),
            base_url: OnceLock::new(),
            http,
            next_id: AtomicU64::new(1),
            channels: Mutex::new(HashMap::new()),
            archived: Mutex::new(Vec::new()),
            dms: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            uploads: Mutex::new(HashMap::new()),
            codes: Mutex::new(HashMap::new()),
            approving_team: Mutex::new(None),
            users: Mutex::new(HashMap::new()),
            faults: Mutex::new(Vec::new()),
            revoked_tokens: Mutex::new(HashSet::new()),
            missing_scopes: Mutex::new(HashSet::new()),
            calls: RecordList::new(),
            posted: RecordList::new(),
            uploaded: RecordList::new(),
            downloads: RecordList::new(),
            deliveries: RecordList::new(),
        })
    }

    pub(crate) fn id(&self, prefix: &str) -> String {
        format!(
            "{prefix}{:08X}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub(crate) fn base_url(&self) -> String {
        self.base_url.get().cloned().unwrap_or_default()
    }

    pub(crate) fn app_id(&self) -> String {
        lock(&self.options).app_id.clone()
    }

    pub(crate) fn workspace(&self, team_id: &str) -> Option<Workspace> {
        lock(&self.options)
            .workspaces
            .iter()
            .find(|w| w.team_id == team_id)
            .cloned()
    }

    pub(crate) fn workspace_by_token(&self, token: &str) -> Option<Workspace> {
        lock(&self.options)
            .workspaces
            .iter()
            .find(|w| w.bot_token == token)
            .cloned()
    }

    pub(crate) fn is_revoked(&self, token: &str) -> bool {
        lock(&self.revoked_tokens).contains(token)
    }

    pub(crate) fn has_scope(&self, team_id: &str, scope: &str) -> bool {
        !lock(&self.missing_scopes).contains(&(team_id.to_owned(), scope.to_owned()))
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

/// A Slack simulator, serving itself ([`SlackSimulator::start`], stops
/// when dropped) or served by a host ([`SlackSimulator::unserved`]).
pub struct SlackSimulator {
    state: Arc<SlackState>,
    server: Option<ServerHandle>,
}

impl SlackSimulator {
    pub async fn start(options: SlackOptions) -> Result<Self, SimError> {
        let listen = options.listen;
        let state = Arc::new(SlackState::new(options)?);
        let server = ServerHandle::serve(listen, api::router(state.clone())).await?;
        let _ = state.base_url.set(format!("http://{}", server.addr()));
        Ok(Self {
            state,
            server: Some(server),
        })
    }

    /// The simulator and its router, for a host that serves it on `addr`
    /// (`options.listen` is not used).
    pub fn unserved(options: SlackOptions, addr: SocketAddr) -> Result<(Self, Router), SimError> {
        let state = Arc::new(SlackState::new(options)?);
        let _ = state.base_url.set(format!("http://{addr}"));
        let router = api::router(state.clone());
        Ok((
            Self {
                state,
                server: None,
            },
            router,
        ))
    }

    /// `http://127.0.0.1:PORT`: Web API under `/api/`, OAuth under `/oauth/v2/`.
    pub fn base_url(&self) -> String {
        self.state.base_url()
    }

    /// The app and workspaces as they are now (a copy).
    pub fn options(&self) -> SlackOptions {
        lock(&self.state.options).clone()
    }

    pub async fn shutdown(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }

    /// Changes the app: the signing secret signs every later post; `None`
    /// keeps the current value.
    pub fn set_app(
        &self,
        signing_secret: &str,
        app_id: Option<&str>,
        client_id: Option<&str>,
        client_secret: Option<&str>,
    ) {
        let mut options = lock(&self.state.options);
        options.signing_secret = signing_secret.to_owned();
        if let Some(app_id) = app_id {
            options.app_id = app_id.to_owned();
        }
        if let Some(client_id) = client_id {
            options.client_id = client_id.to_owned();
        }
        if let Some(client_secret) = client_secret {
            options.client_secret = client_secret.to_owned();
        }
    }

    /// Installs the app in a workspace, or replaces the installation of the
    /// same team (its previous bot token stops working).
    pub fn add_workspace(&self, workspace: Workspace) {
        lock(&self.state.revoked_tokens).remove(&workspace.bot_token);
        let mut options = lock(&self.state.options);
        options
            .workspaces
            .retain(|w| w.team_id != workspace.team_id);
        options.workspaces.push(workspace);
    }

    pub fn workspace(&self, team_id: &str) -> Option<Workspace> {
        self.state.workspace(team_id)
    }

    pub fn set_retry(&self, retry: RetryPolicy) {
        lock(&self.state.options).retry = retry;
    }

    /// The app's direct-message channel with `user` in `team`, opened on
    /// first use (like `conversations.open`, the same user keeps one).
    pub fn open_dm(&self, team_id: &str, user: &str) -> String {
        let key = (team_id.to_owned(), user.to_owned());
        let mut dms = lock(&self.state.dms);
        if let Some(channel) = dms.get(&key) {
            return channel.clone();
        }
        let channel = format!("D{}", &self.state.id("")[..8]);
        lock(&self.state.channels).insert(channel.clone(), team_id.to_owned());
        dms.insert(key, channel.clone());
        channel
    }

    /// The team a channel belongs to, if it exists.
    pub fn channel_team(&self, channel: &str) -> Option<String> {
        lock(&self.state.channels).get(channel).cloned()
    }

    /// Adds a user to `team` (answered by `users.info`).
    pub fn add_user(&self, team_id: &str, user_id: &str, user: SlackUser) {
        lock(&self.state.users).insert((team_id.to_owned(), user_id.to_owned()), user);
    }

    /// The authorize page approves installs into `team_id` from now on.
    pub fn approve_as(&self, team_id: &str) {
        *lock(&self.state.approving_team) = Some(team_id.to_owned());
    }

    /// Uninstalls the app from `team_id` as Slack does: its bot token is
    /// revoked (Web API calls answer `token_revoked`, private file URLs the
    /// sign-in page). Tell the app with [`Self::app_uninstalled_event`]
    /// and [`Self::tokens_revoked_event`]. `false`: unknown team.
    pub fn uninstall(&self, team_id: &str) -> bool {
        let Some(workspace) = self.state.workspace(team_id) else {
            return false;
        };
        lock(&self.state.revoked_tokens).insert(workspace.bot_token);
        true
    }

    /// The install in `team_id` lacks `scope` from now on: methods that
    /// need it answer `missing_scope`, and private file downloads without
    /// `files:read` get Slack's sign-in page (HTML, HTTP 200).
    pub fn revoke_scope(&self, team_id: &str, scope: &str) {
        lock(&self.state.missing_scopes).insert((team_id.to_owned(), scope.to_owned()));
    }

    /// Gives `scope` back to the install in `team_id`.
    pub fn grant_scope(&self, team_id: &str, scope: &str) {
        lock(&self.state.missing_scopes).remove(&(team_id.to_owned(), scope.to_owned()));
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

    pub fn count(&self, kind: SlackRecordKind) -> usize {
        match kind {
            SlackRecordKind::Call => self.state.calls.len(),
            SlackRecordKind::Posted => self.state.posted.len(),
            SlackRecordKind::Uploaded => self.state.uploaded.len(),
            SlackRecordKind::Download => self.state.downloads.len(),
            SlackRecordKind::Delivery => self.state.deliveries.len(),
        }
    }

    /// Waits (without polling) until `count` records of `kind` exist.
    pub async fn wait_for(&self, kind: SlackRecordKind, count: usize, timeout: Duration) -> bool {
        match kind {
            SlackRecordKind::Call => self.state.calls.wait_len(count, timeout).await,
            SlackRecordKind::Posted => self.state.posted.wait_len(count, timeout).await,
            SlackRecordKind::Uploaded => self.state.uploaded.wait_len(count, timeout).await,
            SlackRecordKind::Download => self.state.downloads.wait_len(count, timeout).await,
            SlackRecordKind::Delivery => self.state.deliveries.wait_len(count, timeout).await,
        }
    }

    pub fn clear_records(&self) {
        self.state.calls.clear();
        self.state.posted.clear();
        self.state.uploaded.clear();
        self.state.downloads.clear();
        self.state.deliveries.clear();
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
            "size": size, "mode": "hosted", "is_external": false, "created": chrono::Utc::now().timestamp(),
            "url_private": url, "url_private_download": format!("{url}?download=1"),
        })
    }
}
