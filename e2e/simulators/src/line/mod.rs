//! LINE Messaging API simulator: reply, push (with `X-Line-Retry-Key`),
//! profile, content (LINE serves it on `api-data.line.me`; here on the same
//! base URL), channel access tokens, the webhook endpoint setting, bot
//! info, and the Switcher (proposed contract, see `switcher`). The guest
//! side posts webhook events signed with `X-Line-Signature` and redelivers
//! them with `deliveryContext.isRedelivery` while the webhook fails.
//!
//! Deviations from LINE, on purpose: media URLs may be plain HTTP when they
//! point to loopback (LINE wants HTTPS); LINE sends no `Retry-After`, an
//! injected fault may add one.

mod api;
pub mod control;
mod errors;
mod events;
mod state;
pub mod validate;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use errors::LineError;

use crate::SimError;
use crate::recording::lock;
use crate::server::{DEFAULT_LISTEN, ServerHandle};
use state::{Channel, Content, Fault, LineState, User};

/// The Switcher settings of a channel (proposed contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitcherSpec {
    pub service_code: String,
    pub secret: String,
    /// Destination ids the guest may be switched to.
    pub destinations: Vec<String>,
}

/// One LINE channel (one LINE Official Account's Messaging API channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSpec {
    pub channel_id: String,
    pub channel_secret: String,
    /// A long-lived channel access token, if issued.
    #[serde(default)]
    pub access_token: Option<String>,
    /// The bot's user id (`destination` of webhooks).
    #[serde(default = "bot_user_id")]
    pub bot_user_id: String,
    #[serde(default = "basic_id")]
    pub basic_id: String,
    #[serde(default)]
    pub switcher: Option<SwitcherSpec>,
}

fn bot_user_id() -> String {
    state::line_id('U')
}

fn basic_id() -> String {
    "@123abcde".to_owned()
}

impl ChannelSpec {
    pub fn new(channel_id: impl Into<String>, channel_secret: impl Into<String>) -> Self {
        Self {
            channel_id: channel_id.into(),
            channel_secret: channel_secret.into(),
            access_token: None,
            bot_user_id: bot_user_id(),
            basic_id: basic_id(),
            switcher: None,
        }
    }

    pub fn with_access_token(mut self, token: impl Into<String>) -> Self {
        self.access_token = Some(token.into());
        self
    }

    pub fn with_switcher(mut self, switcher: SwitcherSpec) -> Self {
        self.switcher = Some(switcher);
        self
    }
}

/// How the simulator (re)delivers webhooks while they fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedeliveryPolicy {
    /// Attempts in total (1 = redelivery off, LINE's default).
    pub max_attempts: u32,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for RedeliveryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LineOptions {
    pub listen: SocketAddr,
    pub channels: Vec<ChannelSpec>,
    /// How long a reply token stays usable.
    pub reply_token_ttl: Duration,
    pub redelivery: RedeliveryPolicy,
}

impl Default for LineOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(DEFAULT_LISTEN),
            channels: Vec::new(),
            reply_token_ttl: Duration::from_secs(60),
            redelivery: RedeliveryPolicy::default(),
        }
    }
}

impl LineOptions {
    pub fn with_channel(mut self, channel: ChannelSpec) -> Self {
        self.channels.push(channel);
        self
    }
}

/// A LINE user (a guest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    pub user_id: String,
    pub display_name: String,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub picture_url: Option<String>,
}

impl Guest {
    /// A user with a fresh LINE-shaped id.
    pub fn new(display_name: impl Into<String>) -> Self {
        Self {
            user_id: state::line_id('U'),
            display_name: display_name.into(),
            language: None,
            picture_url: None,
        }
    }

    pub fn with_language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }
}

/// One API request as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiCall {
    pub method: String,
    pub path: String,
    pub channel_id: Option<String>,
    pub status: u16,
    pub retry_key: Option<String>,
}

/// A media URL the simulator fetched for an image message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaFetch {
    pub url: String,
    pub status: Option<u16>,
    pub bytes_len: u64,
    pub content_type: String,
}

/// One accepted reply or push.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessages {
    pub channel_id: String,
    pub to: String,
    /// `reply` or `push`.
    pub via: String,
    pub messages: Vec<Value>,
    pub message_ids: Vec<String>,
    pub retry_key: Option<String>,
    pub request_id: String,
    /// False when the user blocked the account: LINE accepts, the user
    /// never sees it.
    pub shown: bool,
    pub media: Vec<MediaFetch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookAttempt {
    pub channel_id: String,
    pub url: String,
    pub attempt: u32,
    pub redelivery: bool,
    pub event_ids: Vec<String>,
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl WebhookAttempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The outcome of `send_events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookDelivery {
    pub body: Value,
    pub delivered: bool,
    pub attempts: Vec<WebhookAttempt>,
}

impl WebhookDelivery {
    pub fn status(&self) -> Option<u16> {
        self.attempts.last().and_then(|a| a.status)
    }
}

/// A Switcher request the simulator accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwitchRecord {
    pub service_code: String,
    pub destination_id: String,
    pub user_id: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRecordKind {
    Call,
    Sent,
    Webhook,
    Switch,
}

impl std::str::FromStr for LineRecordKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "call" | "calls" => Self::Call,
            "sent" => Self::Sent,
            "webhook" | "webhooks" => Self::Webhook,
            "switch" | "switches" => Self::Switch,
            other => return Err(format!("unknown LINE record kind '{other}'")),
        })
    }
}

/// A running LINE simulator. Stops when dropped.
pub struct LineSimulator {
    state: Arc<LineState>,
    addr: SocketAddr,
    server: Option<ServerHandle>,
}

impl LineSimulator {
    pub async fn start(options: LineOptions) -> Result<Self, SimError> {
        let state = Arc::new(LineState::new(&options)?);
        let server = ServerHandle::serve(options.listen, router(state.clone())).await?;
        Ok(Self {
            state,
            addr: server.addr(),
            server: Some(server),
        })
    }

    /// The simulator and its router, for a host that serves it on `addr`.
    pub fn unserved(options: LineOptions, addr: SocketAddr) -> Result<(Self, Router), SimError> {
        let state = Arc::new(LineState::new(&options)?);
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

    /// `http://127.0.0.1:PORT`: stands for both `api.line.me` and
    /// `api-data.line.me`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn shutdown(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }

    pub fn add_channel(&self, spec: ChannelSpec) {
        lock(&self.state.channels)
            .entry(spec.channel_id.clone())
            .or_insert(Channel {
                spec,
                webhook: None,
            });
    }

    /// Sets the webhook URL as the LINE Developers console would.
    pub fn set_webhook_url(
        &self,
        channel_id: &str,
        url: impl Into<String>,
    ) -> Result<(), SimError> {
        let mut channels = lock(&self.state.channels);
        let channel = channels
            .get_mut(channel_id)
            .ok_or_else(|| SimError::UnknownBot(channel_id.to_owned()))?;
        channel.webhook = Some(url.into());
        Ok(())
    }

    pub fn webhook_url(&self, channel_id: &str) -> Option<String> {
        lock(&self.state.channels)
            .get(channel_id)
            .and_then(|channel| channel.webhook.clone())
    }

    /// Makes a user known (profile lookups answer for it).
    pub fn add_user(&self, guest: &Guest) {
        lock(&self.state.users).insert(
            guest.user_id.clone(),
            User {
                display_name: guest.display_name.clone(),
                language: guest.language.clone(),
                picture_url: guest.picture_url.clone(),
                blocked: false,
            },
        );
    }

    /// The user blocks (true) or unblocks the account, without an event
    /// (`unfollow_event` / `follow_event` send one).
    pub fn set_blocked(&self, user_id: &str, blocked: bool) {
        if let Some(user) = lock(&self.state.users).get_mut(user_id) {
            user.blocked = blocked;
        }
    }

    /// Stores content as if a user had sent it; returns the message id the
    /// content API serves it under.
    pub fn upload_content(&self, channel_id: &str, bytes: impl Into<Bytes>, mime: &str) -> String {
        let id = state::message_id();
        lock(&self.state.contents).insert(
            id.clone(),
            Content {
                channel_id: channel_id.to_owned(),
                bytes: bytes.into(),
                mime: mime.to_owned(),
            },
        );
        id
    }

    /// The next `count` calls of `endpoint` (`reply`, `push`, `content`,
    /// `profile`, `token`, `switch`; None: any) fail with `error`.
    pub fn inject_error(&self, endpoint: Option<&str>, error: LineError, count: u32) {
        if count > 0 {
            lock(&self.state.faults).push(Fault {
                endpoint: endpoint.map(str::to_owned),
                error,
                remaining: count,
                after_accept: false,
            });
        }
    }

    /// The next `count` pushes are sent, but answered with `error`: the
    /// caller cannot tell, retries, and must not cause a second message.
    pub fn inject_error_after_accept(&self, error: LineError, count: u32) {
        if count > 0 {
            lock(&self.state.faults).push(Fault {
                endpoint: Some("push".to_owned()),
                error,
                remaining: count,
                after_accept: true,
            });
        }
    }

    /// The next `count` calls of `endpoint` answer 429 as LINE does.
    pub fn inject_rate_limit(&self, endpoint: Option<&str>, count: u32) {
        self.inject_error(endpoint, LineError::rate_limited(), count);
    }

    pub fn set_reply_token_ttl(&self, ttl: Duration) {
        lock(&self.state.config).reply_token_ttl = ttl;
    }

    pub fn set_redelivery(&self, policy: RedeliveryPolicy) {
        lock(&self.state.config).redelivery = policy;
    }

    /// A text message event from `guest` (with a fresh reply token).
    pub fn text_event(&self, channel_id: &str, guest: &Guest, text: &str) -> Value {
        events::message(&self.state, channel_id, guest, events::text(text))
    }

    /// An image message event whose content the content API serves.
    pub fn image_event(
        &self,
        channel_id: &str,
        guest: &Guest,
        bytes: impl Into<Bytes>,
        mime: &str,
    ) -> Value {
        let id = self.upload_content(channel_id, bytes, mime);
        events::message(&self.state, channel_id, guest, events::image(&id))
    }

    /// A file message event whose content the content API serves.
    pub fn file_event(
        &self,
        channel_id: &str,
        guest: &Guest,
        bytes: impl Into<Bytes>,
        file_name: &str,
    ) -> Value {
        let bytes = bytes.into();
        let size = bytes.len() as u64;
        let id = self.upload_content(channel_id, bytes, "application/octet-stream");
        events::message(
            &self.state,
            channel_id,
            guest,
            events::file(&id, file_name, size),
        )
    }

    pub fn location_event(
        &self,
        channel_id: &str,
        guest: &Guest,
        title: &str,
        latitude: f64,
        longitude: f64,
    ) -> Value {
        events::message(
            &self.state,
            channel_id,
            guest,
            events::location(title, latitude, longitude),
        )
    }

    pub fn sticker_event(
        &self,
        channel_id: &str,
        guest: &Guest,
        package_id: &str,
        sticker_id: &str,
    ) -> Value {
        events::message(
            &self.state,
            channel_id,
            guest,
            events::sticker(package_id, sticker_id),
        )
    }

    /// A postback event (a tap on a postback action with this `data`).
    pub fn postback_event(&self, channel_id: &str, guest: &Guest, data: &str) -> Value {
        events::postback(&self.state, channel_id, guest, data)
    }

    /// The guest adds or unblocks the account.
    pub fn follow_event(&self, channel_id: &str, guest: &Guest) -> Value {
        self.set_blocked(&guest.user_id, false);
        events::follow(&self.state, channel_id, guest, true)
    }

    /// The guest blocks the account.
    pub fn unfollow_event(&self, guest: &Guest) -> Value {
        self.set_blocked(&guest.user_id, true);
        events::follow(&self.state, "", guest, false)
    }

    /// Posts events to the channel's webhook, signed, redelivering while
    /// it fails (per the redelivery policy).
    pub async fn send_events(
        &self,
        channel_id: &str,
        events: Vec<Value>,
    ) -> Result<WebhookDelivery, SimError> {
        webhook::send_events(&self.state, channel_id, events).await
    }

    /// Posts a raw body with the given `X-Line-Signature` (None: none), once.
    pub async fn post_raw(
        &self,
        channel_id: &str,
        body: Vec<u8>,
        signature: Option<&str>,
    ) -> Result<Option<u16>, SimError> {
        webhook::post_raw(&self.state, channel_id, body, signature).await
    }

    /// The `X-Line-Signature` LINE would send for `body`.
    pub fn sign(&self, channel_id: &str, body: &[u8]) -> Option<String> {
        let secret = lock(&self.state.channels)
            .get(channel_id)
            .map(|channel| channel.spec.channel_secret.clone())?;
        Some(webhook::signature(&secret, body))
    }

    pub fn calls(&self) -> Vec<ApiCall> {
        self.state.calls.snapshot()
    }

    pub fn sent(&self) -> Vec<SentMessages> {
        self.state.sent.snapshot()
    }

    pub fn sent_to(&self, to: &str) -> Vec<SentMessages> {
        self.sent()
            .into_iter()
            .filter(|sent| sent.to == to)
            .collect()
    }

    pub fn webhook_attempts(&self) -> Vec<WebhookAttempt> {
        self.state.webhooks.snapshot()
    }

    pub fn switches(&self) -> Vec<SwitchRecord> {
        self.state.switches.snapshot()
    }

    pub fn count(&self, kind: LineRecordKind) -> usize {
        self.state.record_len(kind)
    }

    /// Waits (without polling) until `count` records of `kind` exist.
    pub async fn wait_for(&self, kind: LineRecordKind, count: usize, timeout: Duration) -> bool {
        self.state.wait_for(kind, count, timeout).await
    }

    pub fn clear_records(&self) {
        self.state.clear_records();
    }
}

fn router(state: Arc<LineState>) -> Router {
    Router::new()
        .route("/v2/oauth/accessToken", post(api::issue_token))
        .route("/v2/bot/message/reply", post(api::reply))
        .route("/v2/bot/message/push", post(api::push))
        .route("/v2/bot/message/{message_id}/content", get(api::content))
        .route("/v2/bot/profile/{user_id}", get(api::profile))
        .route(
            "/v2/bot/channel/webhook/endpoint",
            get(api::get_webhook_endpoint).put(api::set_webhook_endpoint),
        )
        .route("/v2/bot/info", get(api::bot_info))
        .route("/switcher/v1/switch", post(api::switch))
        .layer(DefaultBodyLimit::max(2 * 1024 * 1024))
        .with_state(state)
}
