//! Shared state of one LINE simulator.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::errors::LineError;
use super::{
    ApiCall, ChannelSpec, LineOptions, LineRecordKind, RedeliveryPolicy, SentMessages,
    SwitchRecord, WebhookAttempt,
};
use crate::SimError;
use crate::recording::{RecordList, lock};

pub(crate) struct Channel {
    pub spec: ChannelSpec,
    /// Where events go (`PUT /v2/bot/channel/webhook/endpoint`).
    pub webhook: Option<String>,
}

#[derive(Clone)]
pub(crate) struct User {
    pub display_name: String,
    pub language: Option<String>,
    pub picture_url: Option<String>,
    /// Blocked the account (`unfollow`): pushes are accepted, not shown.
    pub blocked: bool,
}

pub(crate) struct ReplyToken {
    pub channel_id: String,
    /// The user (or group) whose event carried the token.
    pub target: String,
    pub issued: Instant,
    pub used: bool,
}

pub(crate) struct Content {
    pub channel_id: String,
    pub bytes: Bytes,
    pub mime: String,
}

/// A push accepted under a retry key: what a repeat of the key answers.
#[derive(Clone)]
pub(crate) struct AcceptedRequest {
    pub request_id: String,
    pub message_ids: Vec<String>,
}

pub(crate) struct Fault {
    /// `reply`, `push`, `content`, `profile`, ... or any (None).
    pub endpoint: Option<String>,
    pub error: LineError,
    pub remaining: u32,
    /// Send first, then answer with the error (a lost answer: LINE's
    /// documented reason for retry keys).
    pub after_accept: bool,
}

pub(crate) struct Config {
    pub reply_token_ttl: Duration,
    pub redelivery: RedeliveryPolicy,
}

pub(crate) struct LineState {
    pub config: Mutex<Config>,
    /// channel id → channel
    pub channels: Mutex<HashMap<String, Channel>>,
    /// issued short-lived token → channel id
    pub issued_tokens: Mutex<HashMap<String, String>>,
    pub users: Mutex<HashMap<String, User>>,
    pub reply_tokens: Mutex<HashMap<String, ReplyToken>>,
    pub contents: Mutex<HashMap<String, Content>>,
    /// (channel id, retry key) → the accepted request
    pub retry_keys: Mutex<HashMap<(String, String), AcceptedRequest>>,
    pub faults: Mutex<Vec<Fault>>,
    pub http: reqwest::Client,
    pub calls: RecordList<ApiCall>,
    pub sent: RecordList<SentMessages>,
    pub webhooks: RecordList<WebhookAttempt>,
    pub switches: RecordList<SwitchRecord>,
}

impl LineState {
    pub fn new(options: &LineOptions) -> Result<Self, SimError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(SimError::HttpClient)?;
        let channels = options
            .channels
            .iter()
            .map(|spec| {
                (
                    spec.channel_id.clone(),
                    Channel {
                        spec: spec.clone(),
                        webhook: None,
                    },
                )
            })
            .collect();
        Ok(Self {
            config: Mutex::new(Config {
                reply_token_ttl: options.reply_token_ttl,
                redelivery: options.redelivery,
            }),
            channels: Mutex::new(channels),
            issued_tokens: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            reply_tokens: Mutex::new(HashMap::new()),
            contents: Mutex::new(HashMap::new()),
            retry_keys: Mutex::new(HashMap::new()),
            faults: Mutex::new(Vec::new()),
            http,
            calls: RecordList::new(),
            sent: RecordList::new(),
            webhooks: RecordList::new(),
            switches: RecordList::new(),
        })
    }

    /// The channel a `Bearer` token belongs to.
    pub fn channel_of_token(&self, token: &str) -> Option<String> {
        if token.is_empty() {
            return None;
        }
        if let Some(id) = lock(&self.issued_tokens).get(token) {
            return Some(id.clone());
        }
        lock(&self.channels)
            .values()
            .find(|channel| channel.spec.access_token.as_deref() == Some(token))
            .map(|channel| channel.spec.channel_id.clone())
    }

    pub fn take_fault(&self, endpoint: &str) -> Option<LineError> {
        self.take_fault_timed(endpoint, false)
    }

    /// Consumes a fault of `endpoint` whose timing is `after_accept`.
    pub fn take_fault_timed(&self, endpoint: &str, after_accept: bool) -> Option<LineError> {
        let mut faults = lock(&self.faults);
        let index = faults.iter().position(|fault| {
            fault.after_accept == after_accept
                && fault.endpoint.as_deref().is_none_or(|e| e == endpoint)
        })?;
        let fault = &mut faults[index];
        fault.remaining = fault.remaining.saturating_sub(1);
        let error = fault.error.clone();
        if fault.remaining == 0 {
            faults.remove(index);
        }
        Some(error)
    }

    pub fn record_len(&self, kind: LineRecordKind) -> usize {
        match kind {
            LineRecordKind::Call => self.calls.len(),
            LineRecordKind::Sent => self.sent.len(),
            LineRecordKind::Webhook => self.webhooks.len(),
            LineRecordKind::Switch => self.switches.len(),
        }
    }

    pub async fn wait_for(&self, kind: LineRecordKind, count: usize, timeout: Duration) -> bool {
        match kind {
            LineRecordKind::Call => self.calls.wait_len(count, timeout).await,
            LineRecordKind::Sent => self.sent.wait_len(count, timeout).await,
            LineRecordKind::Webhook => self.webhooks.wait_len(count, timeout).await,
            LineRecordKind::Switch => self.switches.wait_len(count, timeout).await,
        }
    }

    pub fn clear_records(&self) {
        self.calls.clear();
        self.sent.clear();
        self.webhooks.clear();
        self.switches.clear();
    }
}

/// A LINE-looking id: prefix plus 32 hex digits.
pub(crate) fn line_id(prefix: char) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// A ULID-shaped id (26 Crockford base32 characters), like webhookEventId.
pub(crate) fn ulid_like() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let millis = chrono::Utc::now().timestamp_millis() as u128;
    let random = uuid::Uuid::new_v4().as_u128() & ((1u128 << 80) - 1);
    let mut value = (millis << 80) | random;
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A numeric message id as LINE uses them.
pub(crate) fn message_id() -> String {
    format!(
        "{}",
        400_000_000_000_000_000u128 + uuid::Uuid::new_v4().as_u128() % 100_000_000_000_000_000
    )
}
