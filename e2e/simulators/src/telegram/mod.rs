//! Telegram Bot API simulator: `/bot<token>/<method>` for known bot
//! tokens, file downloads at `/file/bot<token>/<file_path>`, and the guest
//! side that posts Updates to the registered webhook with the secret
//! header, redelivering in order while the webhook fails.

mod api;
mod errors;
mod markup;
mod state;
mod updates;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

pub use errors::ApiError;
pub use updates::{Guest, PhotoSize, UpdateSpec, UploadedFile};

use crate::SimError;
use crate::recording::lock;
use crate::server::{DEFAULT_LISTEN, ServerHandle};
use state::{Chat, Fault, TelegramState};

/// How the simulator (re)delivers an update while the webhook fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedeliveryPolicy {
    /// Attempts in total (1 = no redelivery).
    pub max_attempts: u32,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for RedeliveryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TelegramOptions {
    pub listen: SocketAddr,
    /// Known bot tokens (`<bot id>:<secret>`); others get 401.
    pub bot_tokens: Vec<String>,
    /// Answer 400 "chat not found" for chats that never wrote to a bot
    /// and were not added with `add_chat`.
    pub require_known_chats: bool,
    /// Sends per chat per second before 429 (0 = off).
    pub per_chat_per_second: u32,
    /// Sends per bot per second before 429 (0 = off).
    pub per_bot_per_second: u32,
    pub redelivery: RedeliveryPolicy,
}

impl Default for TelegramOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(DEFAULT_LISTEN),
            bot_tokens: Vec::new(),
            require_known_chats: false,
            per_chat_per_second: 0,
            per_bot_per_second: 0,
            redelivery: RedeliveryPolicy::default(),
        }
    }
}

impl TelegramOptions {
    pub fn with_bot(mut self, token: impl Into<String>) -> Self {
        self.bot_tokens.push(token.into());
        self
    }
}

/// One Bot API call as received (params merged from query and body).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotApiCall {
    pub method: String,
    pub token: String,
    pub params: Value,
    pub status: u16,
}

/// A media URL the simulator fetched for a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaFetch {
    pub url: String,
    pub bytes_len: u64,
    pub content_type: String,
}

/// A message a bot sent successfully (the `Message` returned to it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    pub token: String,
    pub chat_id: i64,
    pub method: String,
    pub message: Value,
    pub media: Option<MediaFetch>,
}

/// One POST of an update to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryResult {
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl DeliveryResult {
    pub fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryAttempt {
    pub token: String,
    pub update_id: i64,
    pub attempt: u32,
    pub result: DeliveryResult,
}

/// The outcome of `send_update`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateDelivery {
    pub update_id: i64,
    pub update: Value,
    pub delivered: bool,
    pub attempts: Vec<DeliveryResult>,
}

impl UpdateDelivery {
    /// Status of the last attempt (None for a transport error).
    pub fn status(&self) -> Option<u16> {
        self.attempts.last().and_then(|attempt| attempt.status)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelegramRecordKind {
    Call,
    Sent,
    Update,
    Delivery,
    CallbackAnswer,
}

impl std::str::FromStr for TelegramRecordKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "call" | "calls" => Self::Call,
            "sent" | "messages" => Self::Sent,
            "update" | "updates" => Self::Update,
            "delivery" | "deliveries" => Self::Delivery,
            "callback_answer" | "callback_answers" => Self::CallbackAnswer,
            other => return Err(format!("unknown telegram record kind '{other}'")),
        })
    }
}

/// A running Telegram Bot API simulator. Stops when dropped.
pub struct TelegramSimulator {
    state: Arc<TelegramState>,
    addr: SocketAddr,
    /// None when the router is served by someone else (the `um-sim` host).
    server: Option<ServerHandle>,
}

impl TelegramSimulator {
    pub async fn start(options: TelegramOptions) -> Result<Self, SimError> {
        let state = Arc::new(TelegramState::new(&options)?);
        let server = ServerHandle::serve(options.listen, router(state.clone())).await?;
        Ok(Self {
            state,
            addr: server.addr(),
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`; the Bot API is at `{base_url}/bot<token>/<method>`.
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

    /// The simulator and its router, for a host that serves it on `addr`.
    pub(crate) fn unserved(
        options: TelegramOptions,
        addr: SocketAddr,
    ) -> Result<(Self, Router), SimError> {
        let state = Arc::new(TelegramState::new(&options)?);
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

    pub fn add_bot(&self, token: impl Into<String>) {
        let token = token.into();
        let bot = state::Bot::from_token(&token);
        lock(&self.state.bots).entry(token).or_insert(bot);
    }

    /// Makes a private chat known (as if the guest had started the bot).
    pub fn add_chat(&self, guest: &Guest) {
        lock(&self.state.chats)
            .entry(guest.id)
            .or_insert_with(|| Chat::new(guest.chat_json()));
    }

    /// Sends to this chat answer 403 "Forbidden: bot was blocked by the user".
    pub fn block_chat(&self, chat_id: i64) {
        let mut chats = lock(&self.state.chats);
        let chat = chats
            .entry(chat_id)
            .or_insert_with(|| Chat::new(serde_json::json!({"id": chat_id, "type": "private"})));
        chat.blocked = true;
    }

    pub fn unblock_chat(&self, chat_id: i64) {
        if let Some(chat) = lock(&self.state.chats).get_mut(&chat_id) {
            chat.blocked = false;
        }
    }

    pub fn set_require_known_chats(&self, required: bool) {
        lock(&self.state.config).require_known_chats = required;
    }

    pub fn set_rate_limits(&self, per_chat_per_second: u32, per_bot_per_second: u32) {
        let mut config = lock(&self.state.config);
        config.per_chat_per_second = per_chat_per_second;
        config.per_bot_per_second = per_bot_per_second;
    }

    pub fn set_redelivery(&self, policy: RedeliveryPolicy) {
        lock(&self.state.config).redelivery = policy;
    }

    /// The next `count` calls of `method` (any method if None) fail with
    /// this error instead of running.
    pub fn inject_error(&self, method: Option<&str>, error: ApiError, count: u32) {
        if count > 0 {
            lock(&self.state.faults).push(Fault {
                method: method.map(str::to_owned),
                error,
                remaining: count,
            });
        }
    }

    /// Ends every injected error (an outage injected with `u32::MAX` calls
    /// ends here).
    pub fn clear_injected_errors(&self) {
        lock(&self.state.faults).clear();
    }

    /// The next `count` calls of `method` answer 429 with `retry_after`.
    pub fn inject_rate_limit(&self, method: Option<&str>, count: u32, retry_after_secs: u64) {
        self.inject_error(method, ApiError::too_many_requests(retry_after_secs), count);
    }

    /// Stores a file as if a guest had sent it; `getFile` + download
    /// return these exact bytes.
    pub fn upload_file(&self, bytes: impl Into<Bytes>, mime: &str) -> UploadedFile {
        self.state.store_file(bytes.into(), mime, None, None)
    }

    /// Stores a photo and two smaller renditions; sizes largest last.
    pub fn upload_photo(&self, bytes: impl Into<Bytes>, mime: &str) -> Vec<PhotoSize> {
        self.state.store_photo(bytes.into(), mime)
    }

    /// Posts an update to the bot's webhook (with the secret header) and
    /// redelivers it while it fails, per the redelivery policy.
    pub async fn send_update(
        &self,
        token: &str,
        update: impl Into<UpdateSpec>,
    ) -> Result<UpdateDelivery, SimError> {
        webhook::send_update(&self.state, token, update.into()).await
    }

    /// The webhook URL a bot registered with `setWebhook`.
    pub fn webhook_url(&self, token: &str) -> Option<String> {
        lock(&self.state.bots)
            .get(token)
            .and_then(|bot| bot.webhook.as_ref().map(|hook| hook.url.clone()))
    }

    /// The `WebhookInfo` object `getWebhookInfo` would return.
    pub fn webhook_info(&self, token: &str) -> Option<Value> {
        lock(&self.state.bots).get(token).map(api::webhook_info)
    }

    pub fn calls(&self) -> Vec<BotApiCall> {
        self.state.calls.snapshot()
    }

    /// Calls of one method (case-insensitive).
    pub fn calls_of(&self, method: &str) -> Vec<BotApiCall> {
        self.state
            .calls
            .snapshot()
            .into_iter()
            .filter(|call| call.method.eq_ignore_ascii_case(method))
            .collect()
    }

    /// Every message bots sent, in order.
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.state.sent.snapshot()
    }

    /// Messages sent to one chat, in order.
    pub fn sent_to(&self, chat_id: i64) -> Vec<SentMessage> {
        self.state
            .sent
            .snapshot()
            .into_iter()
            .filter(|sent| sent.chat_id == chat_id)
            .collect()
    }

    /// Every update sent to a webhook (as assembled, before delivery).
    pub fn updates(&self) -> Vec<Value> {
        self.state.updates.snapshot()
    }

    pub fn deliveries(&self) -> Vec<DeliveryAttempt> {
        self.state.deliveries.snapshot()
    }

    /// Parameters of every accepted `answerCallbackQuery`.
    pub fn callback_answers(&self) -> Vec<Value> {
        self.state.callback_answers.snapshot()
    }

    pub fn count(&self, kind: TelegramRecordKind) -> usize {
        self.state.record_len(kind)
    }

    /// Waits (without polling) until at least `count` records of `kind`
    /// exist; false on timeout.
    pub async fn wait_for(
        &self,
        kind: TelegramRecordKind,
        count: usize,
        timeout: Duration,
    ) -> bool {
        self.state.wait_for(kind, count, timeout).await
    }

    pub fn clear_records(&self) {
        self.state.clear_records();
    }
}

fn router(state: Arc<TelegramState>) -> Router {
    Router::new()
        .route("/file/{bot}/{*file_path}", get(api::file_download))
        .route("/{bot}/{method}", any(api::method))
        .layer(DefaultBodyLimit::max(60 * 1024 * 1024))
        .with_state(state)
}
