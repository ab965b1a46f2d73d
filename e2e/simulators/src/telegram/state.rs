//! Shared state of one Telegram simulator.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::errors::ApiError;
use super::updates::{PhotoSize, UploadedFile};
use super::{
    BotApiCall, DeliveryAttempt, RedeliveryPolicy, SentMessage, TelegramOptions, TelegramRecordKind,
};
use crate::SimError;
use crate::recording::{RecordList, lock};

pub(crate) struct Webhook {
    pub url: String,
    pub secret_token: Option<String>,
    pub max_connections: u32,
    /// FIFO gate of `max_connections` permits: with 1, delivery is strictly
    /// in order and later updates wait while one is being redelivered.
    pub gate: Arc<Semaphore>,
}

pub(crate) struct Bot {
    pub id: i64,
    pub username: String,
    pub first_name: String,
    pub webhook: Option<Webhook>,
    pub next_update_id: i64,
    pub pending: u64,
    pub last_error: Option<(i64, String)>,
}

impl Bot {
    pub fn from_token(token: &str) -> Self {
        let id = token
            .split(':')
            .next()
            .and_then(|prefix| prefix.parse::<i64>().ok())
            .unwrap_or(1);
        Self {
            id,
            username: format!("um_sim_{id}_bot"),
            first_name: "UM Simulator Bot".to_owned(),
            webhook: None,
            next_update_id: 100_000_001,
            pending: 0,
            last_error: None,
        }
    }

    pub fn user_json(&self) -> Value {
        json!({"id": self.id, "is_bot": true, "first_name": self.first_name, "username": self.username})
    }
}

pub(crate) struct Chat {
    pub chat: Value,
    pub next_message_id: i64,
    pub blocked: bool,
}

impl Chat {
    pub fn new(chat: Value) -> Self {
        Self {
            chat,
            next_message_id: 1,
            blocked: false,
        }
    }
}

pub(crate) struct StoredFile {
    pub file: UploadedFile,
    pub bytes: Bytes,
    pub file_path: String,
}

pub(crate) struct Fault {
    pub method: Option<String>,
    pub error: ApiError,
    pub remaining: u32,
}

pub(crate) struct Config {
    pub require_known_chats: bool,
    pub per_chat_per_second: u32,
    pub per_bot_per_second: u32,
    pub redelivery: RedeliveryPolicy,
}

struct Window {
    started: Instant,
    count: u32,
}

pub(crate) struct TelegramState {
    pub config: Mutex<Config>,
    /// token → bot
    pub bots: Mutex<HashMap<String, Bot>>,
    pub chats: Mutex<HashMap<i64, Chat>>,
    pub files: Mutex<HashMap<String, StoredFile>>,
    /// file_path → file_id
    pub file_paths: Mutex<HashMap<String, String>>,
    next_file: AtomicU64,
    pub callback_queries: Mutex<HashSet<String>>,
    pub faults: Mutex<Vec<Fault>>,
    rate: Mutex<HashMap<(String, Option<i64>), Window>>,
    pub http: reqwest::Client,
    pub calls: RecordList<BotApiCall>,
    pub sent: RecordList<SentMessage>,
    pub updates: RecordList<Value>,
    pub deliveries: RecordList<DeliveryAttempt>,
    pub callback_answers: RecordList<Value>,
}

impl TelegramState {
    pub fn new(options: &TelegramOptions) -> Result<Self, SimError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(128)
            .build()
            .map_err(SimError::HttpClient)?;
        let bots = options
            .bot_tokens
            .iter()
            .map(|token| (token.clone(), Bot::from_token(token)))
            .collect();
        Ok(Self {
            config: Mutex::new(Config {
                require_known_chats: options.require_known_chats,
                per_chat_per_second: options.per_chat_per_second,
                per_bot_per_second: options.per_bot_per_second,
                redelivery: options.redelivery,
            }),
            bots: Mutex::new(bots),
            chats: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            file_paths: Mutex::new(HashMap::new()),
            next_file: AtomicU64::new(1),
            callback_queries: Mutex::new(HashSet::new()),
            faults: Mutex::new(Vec::new()),
            rate: Mutex::new(HashMap::new()),
            http,
            calls: RecordList::new(),
            sent: RecordList::new(),
            updates: RecordList::new(),
            deliveries: RecordList::new(),
            callback_answers: RecordList::new(),
        })
    }

    /// Stores bytes as a Telegram file; `dir` is the file_path folder.
    pub fn store_file(
        &self,
        bytes: Bytes,
        mime: &str,
        dir: Option<&str>,
        file_name: Option<&str>,
    ) -> UploadedFile {
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let file = UploadedFile {
            file_id: format!("AgACAgIAAxkBAAI{n}{}", &unique[..20]),
            file_unique_id: format!("AQAD{}", &unique[20..]),
            file_size: bytes.len() as u64,
            mime_type: mime.to_owned(),
        };
        let dir = dir.unwrap_or_else(|| folder_for(mime));
        let extension = file_name
            .and_then(|name| name.rsplit_once('.').map(|(_, ext)| ext.to_owned()))
            .unwrap_or_else(|| extension_for(mime).to_owned());
        let file_path = format!("{dir}/file_{n}.{extension}");
        lock(&self.file_paths).insert(file_path.clone(), file.file_id.clone());
        lock(&self.files).insert(
            file.file_id.clone(),
            StoredFile {
                file: file.clone(),
                bytes,
                file_path,
            },
        );
        file
    }

    /// The full image plus two smaller renditions, largest last.
    pub fn store_photo(&self, bytes: Bytes, mime: &str) -> Vec<PhotoSize> {
        let renditions = [(90, 16), (320, 4), (1280, 1)];
        renditions
            .iter()
            .map(|(width, divisor)| {
                let content = if *divisor == 1 {
                    bytes.clone()
                } else {
                    bytes.slice(..(bytes.len() / divisor).max(1).min(bytes.len()))
                };
                let file = self.store_file(content, mime, Some("photos"), None);
                PhotoSize {
                    file_id: file.file_id,
                    file_unique_id: file.file_unique_id,
                    width: *width,
                    height: width * 3 / 4,
                    file_size: file.file_size,
                }
            })
            .collect()
    }

    /// Counts a send against the per-chat and per-bot limits.
    pub fn check_rate(&self, token: &str, chat_id: i64) -> Result<(), ApiError> {
        let (per_chat, per_bot) = {
            let config = lock(&self.config);
            (config.per_chat_per_second, config.per_bot_per_second)
        };
        let now = Instant::now();
        let mut rate = lock(&self.rate);
        let mut over = |key: (String, Option<i64>), limit: u32| -> Option<u64> {
            if limit == 0 {
                return None;
            }
            let window = rate.entry(key).or_insert(Window {
                started: now,
                count: 0,
            });
            if now.duration_since(window.started) >= Duration::from_secs(1) {
                *window = Window {
                    started: now,
                    count: 0,
                };
            }
            if window.count >= limit {
                return Some(1);
            }
            window.count += 1;
            None
        };
        if let Some(retry) = over((token.to_owned(), Some(chat_id)), per_chat) {
            return Err(ApiError::too_many_requests(retry));
        }
        if let Some(retry) = over((token.to_owned(), None), per_bot) {
            return Err(ApiError::too_many_requests(retry));
        }
        Ok(())
    }

    /// Consumes one injected fault for this method, if any.
    pub fn take_fault(&self, method: &str) -> Option<ApiError> {
        let mut faults = lock(&self.faults);
        let index = faults.iter().position(|fault| {
            fault
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        let fault = &mut faults[index];
        fault.remaining = fault.remaining.saturating_sub(1);
        let error = fault.error.clone();
        if fault.remaining == 0 {
            faults.remove(index);
        }
        Some(error)
    }

    pub fn record_len(&self, kind: TelegramRecordKind) -> usize {
        match kind {
            TelegramRecordKind::Call => self.calls.len(),
            TelegramRecordKind::Sent => self.sent.len(),
            TelegramRecordKind::Update => self.updates.len(),
            TelegramRecordKind::Delivery => self.deliveries.len(),
            TelegramRecordKind::CallbackAnswer => self.callback_answers.len(),
        }
    }

    pub async fn wait_for(
        &self,
        kind: TelegramRecordKind,
        count: usize,
        timeout: Duration,
    ) -> bool {
        match kind {
            TelegramRecordKind::Call => self.calls.wait_len(count, timeout).await,
            TelegramRecordKind::Sent => self.sent.wait_len(count, timeout).await,
            TelegramRecordKind::Update => self.updates.wait_len(count, timeout).await,
            TelegramRecordKind::Delivery => self.deliveries.wait_len(count, timeout).await,
            TelegramRecordKind::CallbackAnswer => {
                self.callback_answers.wait_len(count, timeout).await
            }
        }
    }

    pub fn clear_records(&self) {
        self.calls.clear();
        self.sent.clear();
        self.updates.clear();
        self.deliveries.clear();
        self.callback_answers.clear();
    }
}

fn folder_for(mime: &str) -> &'static str {
    match mime.split('/').next().unwrap_or_default() {
        "image" => "photos",
        "video" => "videos",
        "audio" if mime == "audio/ogg" => "voice",
        "audio" => "music",
        _ => "documents",
    }
}

fn extension_for(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "oga",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        _ => "bin",
    }
}

pub(crate) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
