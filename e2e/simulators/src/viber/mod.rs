//! Viber REST Bot API simulator: `POST /pa/<method>` with
//! `X-Viber-Auth-Token` (`set_webhook` with the `webhook` check callback,
//! `send_message` with Viber's validation and status codes,
//! `get_user_details` with its per-user quota, `get_account_info`),
//! public expiring media URLs at `/media/<id>`, and the guest side that
//! posts signed callbacks to the registered webhook.

mod api;
mod callbacks;
pub mod control;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

pub use callbacks::{CallbackSpec, SIGNATURE_HEADER, ViberUser, sign};

use crate::SimError;
use crate::recording::{RecordList, lock};
use crate::server::{DEFAULT_LISTEN, ServerHandle};

/// How the simulator (re)posts a callback while the webhook fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViberRedelivery {
    /// Attempts in total (1 = no redelivery).
    pub max_attempts: u32,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for ViberRedelivery {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ViberOptions {
    pub listen: SocketAddr,
    /// Known auth tokens; others get status 2 `invalidAuthToken`.
    pub auth_tokens: Vec<String>,
    /// How long a media URL of a guest message stays downloadable.
    pub media_ttl: Duration,
    /// `get_user_details` calls allowed per user (Viber: 2 per 12 hours).
    pub user_details_quota: u32,
    pub redelivery: ViberRedelivery,
}

impl Default for ViberOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(DEFAULT_LISTEN),
            auth_tokens: Vec::new(),
            media_ttl: Duration::from_secs(3600),
            user_details_quota: 2,
            redelivery: ViberRedelivery::default(),
        }
    }
}

impl ViberOptions {
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.auth_tokens.push(token.into());
        self
    }
}

/// One API call as received and the status it was answered with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiCall {
    pub method: String,
    pub token: String,
    pub body: Value,
    /// Viber `status` of the answer (0 ok), or the HTTP status for faults
    /// answered at the HTTP level.
    pub status: i64,
    pub http_status: u16,
}

/// A media URL the simulator fetched for a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaFetch {
    pub url: String,
    pub http_status: u16,
    pub bytes_len: u64,
    pub content_type: String,
}

/// A message a bot sent successfully.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    pub token: String,
    pub receiver: String,
    pub message_token: u64,
    pub message: Value,
    pub media: Option<MediaFetch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptResult {
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl AttemptResult {
    pub fn succeeded(&self) -> bool {
        self.status == Some(200)
    }
}

/// The outcome of posting one callback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallbackDelivery {
    pub message_token: u64,
    pub callback: Value,
    pub attempts: Vec<AttemptResult>,
}

impl CallbackDelivery {
    pub fn status(&self) -> Option<u16> {
        self.attempts.last().and_then(|a| a.status)
    }

    pub fn delivered(&self) -> bool {
        self.attempts.last().is_some_and(AttemptResult::succeeded)
    }
}

/// A download of a guest media URL (by the connector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaDownload {
    pub id: String,
    pub http_status: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViberRecordKind {
    Call,
    Sent,
    Callback,
    MediaDownload,
}

impl std::str::FromStr for ViberRecordKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "viber_call" | "viber_calls" => Self::Call,
            "viber_sent" | "viber_messages" => Self::Sent,
            "viber_callback" | "viber_callbacks" => Self::Callback,
            "viber_media_download" | "viber_media_downloads" => Self::MediaDownload,
            other => return Err(format!("unknown viber record kind '{other}'")),
        })
    }
}

/// A fault answered instead of running a method.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub method: Option<String>,
    /// Viber status in an HTTP 200 answer, or (if `http` is set) an HTTP
    /// status with an empty body.
    pub status: i64,
    pub http: Option<u16>,
    pub remaining: u32,
}

pub(crate) struct User {
    pub user: ViberUser,
    pub subscribed: bool,
    pub details_calls: u32,
    /// `tracking_data` of the bot's last message to this user.
    pub tracking_data: Option<String>,
}

pub(crate) struct Bot {
    pub webhook: Option<String>,
    pub event_types: Vec<String>,
    pub users: HashMap<String, User>,
}

pub(crate) struct StoredMedia {
    pub bytes: Bytes,
    pub mime: String,
    pub expires: Instant,
}

pub(crate) struct ViberState {
    pub options: Mutex<ViberOptions>,
    pub bots: Mutex<HashMap<String, Bot>>,
    pub media: Mutex<HashMap<String, StoredMedia>>,
    pub faults: Mutex<Vec<Fault>>,
    pub next_token: AtomicU64,
    pub base_url: String,
    pub http: reqwest::Client,
    pub calls: RecordList<ApiCall>,
    pub sent: RecordList<SentMessage>,
    pub callbacks: RecordList<CallbackDelivery>,
    pub downloads: RecordList<MediaDownload>,
}

impl ViberState {
    fn new(options: &ViberOptions, addr: SocketAddr) -> Result<Self, SimError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(SimError::HttpClient)?;
        let bots = options
            .auth_tokens
            .iter()
            .map(|token| (token.clone(), Bot::new()))
            .collect();
        Ok(Self {
            options: Mutex::new(options.clone()),
            bots: Mutex::new(bots),
            media: Mutex::new(HashMap::new()),
            faults: Mutex::new(Vec::new()),
            next_token: AtomicU64::new(5_491_041_446_839_582_721),
            base_url: format!("http://{addr}"),
            http,
            calls: RecordList::new(),
            sent: RecordList::new(),
            callbacks: RecordList::new(),
            downloads: RecordList::new(),
        })
    }

    pub(crate) fn token(&self) -> u64 {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    /// The first matching fault, consumed.
    pub(crate) fn take_fault(&self, method: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let index = faults.iter().position(|fault| {
            fault.remaining > 0 && fault.method.as_deref().is_none_or(|m| m == method)
        })?;
        let fault = faults[index].clone();
        faults[index].remaining -= 1;
        if faults[index].remaining == 0 {
            faults.remove(index);
        }
        Some(fault)
    }

    fn list_len(&self, kind: ViberRecordKind) -> usize {
        match kind {
            ViberRecordKind::Call => self.calls.len(),
            ViberRecordKind::Sent => self.sent.len(),
            ViberRecordKind::Callback => self.callbacks.len(),
            ViberRecordKind::MediaDownload => self.downloads.len(),
        }
    }
}

impl Bot {
    fn new() -> Self {
        Self {
            webhook: None,
            event_types: Vec::new(),
            users: HashMap::new(),
        }
    }
}

/// A running Viber simulator. Stops when dropped.
pub struct ViberSimulator {
    state: Arc<ViberState>,
    addr: SocketAddr,
    server: Option<ServerHandle>,
}

impl ViberSimulator {
    pub async fn start(options: ViberOptions) -> Result<Self, SimError> {
        // The state needs its own address for media URLs: bind first.
        let listener_addr = {
            crate::server::ensure_loopback(options.listen)?;
            let probe =
                std::net::TcpListener::bind(options.listen).map_err(|source| SimError::Bind {
                    addr: options.listen,
                    source,
                })?;
            probe.local_addr().map_err(SimError::LocalAddr)?
        };
        let state = Arc::new(ViberState::new(&options, listener_addr)?);
        let server = ServerHandle::serve(listener_addr, router(state.clone())).await?;
        Ok(Self {
            state,
            addr: server.addr(),
            server: Some(server),
        })
    }

    /// The simulator and its router, for a host that serves it on `addr`.
    pub fn unserved(options: ViberOptions, addr: SocketAddr) -> Result<(Self, Router), SimError> {
        let state = Arc::new(ViberState::new(&options, addr)?);
        let router = router(state.clone());
        Ok((
            Self {
                state,
                addr,
                server: None,
            },
            router,
        ))
    }

    /// `http://127.0.0.1:PORT`; the API is at `{base_url}/pa/<method>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn shutdown(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }

    pub fn add_token(&self, token: impl Into<String>) {
        lock(&self.state.bots)
            .entry(token.into())
            .or_insert_with(Bot::new);
    }

    /// Makes a user known and subscribed to the bot (as after `subscribed`).
    pub fn add_user(&self, token: &str, user: &ViberUser) {
        if let Some(bot) = lock(&self.state.bots).get_mut(token) {
            let entry = bot.users.entry(user.id.clone()).or_insert_with(|| User {
                user: user.clone(),
                subscribed: true,
                details_calls: 0,
                tracking_data: None,
            });
            entry.user = user.clone();
            entry.subscribed = true;
        }
    }

    /// Sends to this user answer status 6 `receiverNotSubscribed`.
    pub fn unsubscribe_user(&self, token: &str, user_id: &str) {
        if let Some(user) = lock(&self.state.bots)
            .get_mut(token)
            .and_then(|bot| bot.users.get_mut(user_id))
        {
            user.subscribed = false;
        }
    }

    /// The next `count` calls of `method` (any if None) answer HTTP 200
    /// with this Viber `status` (12 = tooManyRequests, 5, 6, 3, ...).
    pub fn inject_status(&self, method: Option<&str>, status: i64, count: u32) {
        lock(&self.state.faults).push(Fault {
            method: method.map(str::to_owned),
            status,
            http: None,
            remaining: count,
        });
    }

    /// The next `count` calls of `method` answer this HTTP status.
    pub fn inject_http_error(&self, method: Option<&str>, http_status: u16, count: u32) {
        lock(&self.state.faults).push(Fault {
            method: method.map(str::to_owned),
            status: -1,
            http: Some(http_status),
            remaining: count,
        });
    }

    /// Stores a file a guest sends; the URL is public and expires after
    /// the configured `media_ttl`, like Viber's.
    pub fn upload_media(&self, bytes: impl Into<Bytes>, mime: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let ttl = lock(&self.state.options).media_ttl;
        lock(&self.state.media).insert(
            id.clone(),
            StoredMedia {
                bytes: bytes.into(),
                mime: mime.to_owned(),
                expires: Instant::now() + ttl,
            },
        );
        format!("{}/media/{id}", self.state.base_url)
    }

    /// Makes an uploaded media URL expire now.
    pub fn expire_media(&self, url: &str) {
        if let Some(id) = url.rsplit('/').next()
            && let Some(media) = lock(&self.state.media).get_mut(id)
        {
            media.expires = Instant::now();
        }
    }

    pub fn set_redelivery(&self, policy: ViberRedelivery) {
        lock(&self.state.options).redelivery = policy;
    }

    /// Posts a signed callback to the bot's webhook, reposting while it
    /// fails per the redelivery policy. A `message` makes the user known.
    pub async fn send_callback(
        &self,
        token: &str,
        spec: CallbackSpec,
    ) -> Result<CallbackDelivery, SimError> {
        api::send_callback(&self.state, token, spec).await
    }

    pub fn webhook_url(&self, token: &str) -> Option<String> {
        lock(&self.state.bots)
            .get(token)
            .and_then(|bot| bot.webhook.clone())
    }

    pub fn event_types(&self, token: &str) -> Vec<String> {
        lock(&self.state.bots)
            .get(token)
            .map(|bot| bot.event_types.clone())
            .unwrap_or_default()
    }

    pub fn calls(&self) -> Vec<ApiCall> {
        self.state.calls.snapshot()
    }

    pub fn calls_of(&self, method: &str) -> Vec<ApiCall> {
        self.calls()
            .into_iter()
            .filter(|call| call.method == method)
            .collect()
    }

    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.state.sent.snapshot()
    }

    pub fn sent_to(&self, receiver: &str) -> Vec<SentMessage> {
        self.sent_messages()
            .into_iter()
            .filter(|sent| sent.receiver == receiver)
            .collect()
    }

    pub fn callbacks(&self) -> Vec<CallbackDelivery> {
        self.state.callbacks.snapshot()
    }

    pub fn media_downloads(&self) -> Vec<MediaDownload> {
        self.state.downloads.snapshot()
    }

    pub fn count(&self, kind: ViberRecordKind) -> usize {
        self.state.list_len(kind)
    }

    /// Waits (without polling) until `count` records of `kind` exist.
    pub async fn wait_for(&self, kind: ViberRecordKind, count: usize, timeout: Duration) -> bool {
        match kind {
            ViberRecordKind::Call => self.state.calls.wait_len(count, timeout).await,
            ViberRecordKind::Sent => self.state.sent.wait_len(count, timeout).await,
            ViberRecordKind::Callback => self.state.callbacks.wait_len(count, timeout).await,
            ViberRecordKind::MediaDownload => self.state.downloads.wait_len(count, timeout).await,
        }
    }

    pub fn clear_records(&self) {
        self.state.calls.clear();
        self.state.sent.clear();
        self.state.callbacks.clear();
        self.state.downloads.clear();
    }
}

fn router(state: Arc<ViberState>) -> Router {
    Router::new()
        .route("/pa/{method}", post(api::method))
        .route("/media/{id}", get(api::media))
        .layer(DefaultBodyLimit::max(1024 * 1024))
        .with_state(state)
}
