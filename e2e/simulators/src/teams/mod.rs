//! Microsoft Teams simulator: the Bot Framework channel and the Microsoft
//! identity platform on one loopback listener.
//!
//! - OpenID metadata (`/v1/.well-known/openidconfiguration`) and the JWK
//!   set it points to (`/v1/.well-known/keys`), RSA keys generated at start
//!   with `endorsements`, rotated on demand.
//! - Client-credential tokens: `POST /{tenant}/oauth2/v2.0/token`.
//! - The Bot Connector API under the service URL `{base}/amer/`:
//!   `POST /amer/v3/conversations/{id}/activities` with the bearer token,
//!   validating activities, Adaptive Cards and suggested actions, answering
//!   403 for a conversation the user blocked, 404 for an unknown one, and
//!   injected faults (429 + `Retry-After`); inline images at
//!   `/amer/v3/attachments/{id}/views/original` (bot token required) and
//!   files at pre-authenticated `/files/{id}?tempauth=...` URLs.
//! - The guest side: [`TeamsSimulator::send_activity`] signs an activity
//!   with an RS256 JWT (iss, aud = app id, exp, nbf, `serviceurl`) and posts
//!   it to the bot's messaging endpoint; [`TokenFault`] forges bad tokens.

mod channel;
pub mod control;
mod keys;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use crate::SimError;
use crate::recording::{RecordList, lock};
use crate::server::{DEFAULT_LISTEN, ServerHandle};
use keys::SigningKey;

/// `iss` of every token the channel signs.
pub const ISSUER: &str = "https://api.botframework.com";
/// The scope a bot asks its token for.
pub const SCOPE: &str = "https://api.botframework.com/.default";
pub const CHANNEL_ID: &str = "msteams";

#[derive(Debug, Clone)]
pub struct TeamsOptions {
    pub listen: SocketAddr,
    /// Registered bots: (app id, password, bot name).
    pub bots: Vec<(String, String, String)>,
    /// Lifetime of issued bot tokens.
    pub token_ttl: Duration,
}

impl Default for TeamsOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(DEFAULT_LISTEN),
            bots: Vec::new(),
            token_ttl: Duration::from_secs(3599),
        }
    }
}

impl TeamsOptions {
    pub fn with_bot(mut self, app_id: &str, password: &str, name: &str) -> Self {
        self.bots
            .push((app_id.into(), password.into(), name.into()));
        self
    }
}

/// A token request to the identity platform and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRequest {
    pub authority: String,
    pub client_id: String,
    pub scope: String,
    pub status: u16,
}

/// An activity a bot posted to a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentActivity {
    pub conversation_id: String,
    pub app_id: Option<String>,
    pub activity: Value,
    pub status: u16,
    /// Bytes of image attachments the channel fetched by `contentUrl`.
    pub fetched_images: Vec<usize>,
}

/// An activity posted to a bot and the bot's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityDelivery {
    pub activity: Value,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// A download of an inline image or file by the bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentDownload {
    pub id: String,
    pub authorized: bool,
    pub status: u16,
}

/// How [`TeamsSimulator::send_activity_with`] spoils the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFault {
    None,
    Missing,
    Expired,
    WrongAudience,
    WrongIssuer,
    BadSignature,
    ServiceUrlMismatch,
    /// Signed by a published key endorsed for `webchat` only.
    NotEndorsed,
    /// Signed by a key never published.
    UnknownKey,
}

/// A conversation as Teams has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamsConversation {
    pub id: String,
    /// `personal`, `groupChat` or `channel`.
    pub kind: &'static str,
    pub tenant_id: String,
    pub team: Option<String>,
    pub channel: Option<String>,
}

impl TeamsConversation {
    pub fn personal(id: &str) -> Self {
        Self {
            id: id.into(),
            kind: "personal",
            tenant_id: "tenant-1".into(),
            team: None,
            channel: None,
        }
    }

    pub fn group_chat(id: &str) -> Self {
        Self {
            kind: "groupChat",
            ..Self::personal(id)
        }
    }

    pub fn channel(id: &str, team: &str, channel: &str) -> Self {
        Self {
            kind: "channel",
            team: Some(team.into()),
            channel: Some(channel.into()),
            ..Self::personal(id)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamsUser {
    pub id: String,
    pub name: String,
    pub aad_object_id: String,
}

impl TeamsUser {
    pub fn new(id: &str, name: &str) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            aad_object_id: format!("aad-{id}"),
        }
    }
}

/// An activity the simulator posts to a bot (fields it leaves out, such as
/// `serviceUrl`, `channelId` and `recipient`, are filled in when sent).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivitySpec {
    pub activity: Value,
}

impl ActivitySpec {
    fn base(kind: &str, conversation: &TeamsConversation, user: &TeamsUser) -> Self {
        let mut channel_data = json!({"tenant": {"id": conversation.tenant_id}});
        if let Some(team) = &conversation.team {
            channel_data["team"] = json!({"id": format!("19:{team}@thread.tacv2"), "name": team});
        }
        if let Some(channel) = &conversation.channel {
            channel_data["channel"] =
                json!({"id": format!("19:{channel}@thread.tacv2"), "name": channel});
        }
        Self {
            activity: json!({
                "type": kind,
                "from": {"id": user.id, "name": user.name, "aadObjectId": user.aad_object_id},
                "conversation": {"id": conversation.id, "conversationType": conversation.kind,
                                  "tenantId": conversation.tenant_id},
                "channelData": channel_data,
                "locale": "en-US",
            }),
        }
    }

    pub fn message(conversation: &TeamsConversation, user: &TeamsUser, text: &str) -> Self {
        let mut spec = Self::base("message", conversation, user);
        spec.activity["text"] = json!(text);
        spec.activity["textFormat"] = json!("plain");
        spec
    }

    /// An Adaptive Card `Action.Submit`: Teams posts its data as `value`.
    pub fn submit(conversation: &TeamsConversation, user: &TeamsUser, data: Value) -> Self {
        let mut spec = Self::base("message", conversation, user);
        spec.activity["value"] = data;
        spec
    }

    /// The bot was added to the conversation.
    pub fn bot_added(conversation: &TeamsConversation, user: &TeamsUser) -> Self {
        Self::base("conversationUpdate", conversation, user)
    }

    pub fn with_attachment(mut self, attachment: Value) -> Self {
        match self
            .activity
            .get_mut("attachments")
            .and_then(Value::as_array_mut)
        {
            Some(list) => list.push(attachment),
            None => self.activity["attachments"] = json!([attachment]),
        }
        self
    }

    /// A fixed activity id (a redelivery repeats the same id).
    pub fn with_id(mut self, id: &str) -> Self {
        self.activity["id"] = json!(id);
        self
    }
}

pub(crate) struct Bot {
    pub password: String,
    pub name: String,
    pub webhook: Option<String>,
}

pub(crate) struct StoredAttachment {
    pub bytes: Bytes,
    pub mime: String,
    /// `None`: an inline image that needs the bot token; `Some`: a file
    /// whose URL carries this pre-authentication.
    pub tempauth: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub remaining: u32,
}

pub(crate) struct TeamsState {
    pub bots: Mutex<HashMap<String, Bot>>,
    /// Published keys, the signing one last.
    pub keys: Mutex<Vec<Arc<SigningKey>>>,
    pub webchat_key: Arc<SigningKey>,
    pub unpublished_key: Arc<SigningKey>,
    /// Issued tokens: token → (app id, expiry).
    pub tokens: Mutex<HashMap<String, (String, Instant)>>,
    pub token_ttl: Duration,
    /// Conversations the simulator posted from: id → blocked by the user.
    pub conversations: Mutex<HashMap<String, bool>>,
    pub attachments: Mutex<HashMap<String, StoredAttachment>>,
    pub faults: Mutex<Vec<Fault>>,
    pub next_id: AtomicU64,
    pub base_url: String,
    pub http: reqwest::Client,
    pub token_requests: RecordList<TokenRequest>,
    pub sent: RecordList<SentActivity>,
    pub deliveries: RecordList<ActivityDelivery>,
    pub downloads: RecordList<AttachmentDownload>,
    pub key_fetches: RecordList<String>,
}

impl TeamsState {
    pub(crate) fn service_url(&self) -> String {
        format!("{}/amer/", self.base_url)
    }

    pub(crate) fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn take_fault(&self) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let fault = faults.first_mut()?;
        fault.remaining -= 1;
        let taken = fault.clone();
        if fault.remaining == 0 {
            faults.remove(0);
        }
        Some(taken)
    }
}

/// A running Teams simulator. Stops when dropped.
pub struct TeamsSimulator {
    state: Arc<TeamsState>,
    addr: SocketAddr,
    server: Option<ServerHandle>,
}

impl TeamsSimulator {
    fn state(options: &TeamsOptions, addr: SocketAddr) -> Result<TeamsState, SimError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(SimError::HttpClient)?;
        let bots = options
            .bots
            .iter()
            .map(|(id, password, name)| {
                (
                    id.clone(),
                    Bot {
                        password: password.clone(),
                        name: name.clone(),
                        webhook: None,
                    },
                )
            })
            .collect();
        Ok(TeamsState {
            bots: Mutex::new(bots),
            keys: Mutex::new(vec![Arc::new(SigningKey::generate(
                "bf-key-1",
                &[CHANNEL_ID, "webchat"],
            )?)]),
            webchat_key: Arc::new(SigningKey::generate("bf-webchat", &["webchat"])?),
            unpublished_key: Arc::new(SigningKey::generate("bf-unpublished", &[CHANNEL_ID])?),
            tokens: Mutex::new(HashMap::new()),
            token_ttl: options.token_ttl,
            conversations: Mutex::new(HashMap::new()),
            attachments: Mutex::new(HashMap::new()),
            faults: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1_700_000_000_000),
            base_url: format!("http://{addr}"),
            http,
            token_requests: RecordList::new(),
            sent: RecordList::new(),
            deliveries: RecordList::new(),
            downloads: RecordList::new(),
            key_fetches: RecordList::new(),
        })
    }

    pub async fn start(options: TeamsOptions) -> Result<Self, SimError> {
        crate::server::ensure_loopback(options.listen)?;
        let addr = {
            let probe =
                std::net::TcpListener::bind(options.listen).map_err(|source| SimError::Bind {
                    addr: options.listen,
                    source,
                })?;
            probe.local_addr().map_err(SimError::LocalAddr)?
        };
        let state = Arc::new(Self::state(&options, addr)?);
        let server = ServerHandle::serve(addr, router(state.clone())).await?;
        Ok(Self {
            state,
            addr: server.addr(),
            server: Some(server),
        })
    }

    /// The simulator and its router, for a host that serves it on `addr`.
    pub fn unserved(options: TeamsOptions, addr: SocketAddr) -> Result<(Self, Router), SimError> {
        let state = Arc::new(Self::state(&options, addr)?);
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

    /// `http://127.0.0.1:PORT`: the connector's `api_base_url` (OpenID
    /// metadata and token endpoint).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `serviceUrl` of every activity: `{base}/amer/`.
    pub fn service_url(&self) -> String {
        self.state.service_url()
    }

    pub async fn shutdown(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }

    /// Registers a bot (as an Azure Bot resource would).
    pub fn add_bot(&self, app_id: &str, password: &str, name: &str) {
        lock(&self.state.bots).insert(
            app_id.to_owned(),
            Bot {
                password: password.to_owned(),
                name: name.to_owned(),
                webhook: None,
            },
        );
    }

    /// The messaging endpoint of a bot (Azure Bot registration).
    pub fn set_messaging_endpoint(&self, app_id: &str, url: &str) {
        if let Some(bot) = lock(&self.state.bots).get_mut(app_id) {
            bot.webhook = Some(url.to_owned());
        }
    }

    /// Publishes a new signing key and signs with it from now on; the old
    /// key stays published until [`Self::retire_old_keys`].
    pub fn rotate_keys(&self) -> Result<String, SimError> {
        let number = lock(&self.state.keys).len() + 1;
        let key = SigningKey::generate(&format!("bf-key-{number}"), &[CHANNEL_ID, "webchat"])?;
        let kid = key.kid.clone();
        lock(&self.state.keys).push(Arc::new(key));
        Ok(kid)
    }

    pub fn retire_old_keys(&self) {
        let mut keys = lock(&self.state.keys);
        let len = keys.len();
        keys.drain(..len - 1);
    }

    /// The user blocked the bot: sends to this conversation answer 403.
    pub fn block_conversation(&self, conversation_id: &str) {
        lock(&self.state.conversations).insert(conversation_id.to_owned(), true);
    }

    /// The next `count` sends answer `status` (429 with `Retry-After`).
    pub fn inject_fault(&self, status: u16, retry_after: Option<u64>, count: u32) {
        lock(&self.state.faults).push(Fault {
            status,
            retry_after,
            remaining: count,
        });
    }

    /// An inline image a user pastes: its `contentUrl` needs the bot token.
    pub fn upload_inline_image(&self, bytes: impl Into<Bytes>, mime: &str) -> Value {
        let id = format!("0-wus-d1-{}", uuid::Uuid::new_v4().simple());
        lock(&self.state.attachments).insert(
            id.clone(),
            StoredAttachment {
                bytes: bytes.into(),
                mime: mime.to_owned(),
                tempauth: None,
            },
        );
        json!({"contentType": mime,
               "contentUrl": format!("{}v3/attachments/{id}/views/original", self.service_url())})
    }

    /// A file a user shares: a `file.download.info` attachment whose
    /// `downloadUrl` is pre-authenticated.
    pub fn upload_file(&self, bytes: impl Into<Bytes>, mime: &str, name: &str) -> Value {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let tempauth = uuid::Uuid::new_v4().simple().to_string();
        lock(&self.state.attachments).insert(
            id.clone(),
            StoredAttachment {
                bytes: bytes.into(),
                mime: mime.to_owned(),
                tempauth: Some(tempauth.clone()),
            },
        );
        let file_type = name.rsplit_once('.').map_or("", |(_, ext)| ext);
        json!({"contentType": "application/vnd.microsoft.teams.file.download.info",
               "name": name,
               "contentUrl": format!("https://contoso.sharepoint.com/personal/files/{name}"),
               "content": {"downloadUrl": format!("{}/files/{id}?tempauth={tempauth}", self.base_url()),
                           "uniqueId": id, "fileType": file_type}})
    }

    /// Signs and posts an activity to the bot's messaging endpoint.
    pub async fn send_activity(
        &self,
        app_id: &str,
        spec: ActivitySpec,
    ) -> Result<ActivityDelivery, SimError> {
        self.send_activity_with(app_id, spec, TokenFault::None)
            .await
    }

    pub async fn send_activity_with(
        &self,
        app_id: &str,
        spec: ActivitySpec,
        fault: TokenFault,
    ) -> Result<ActivityDelivery, SimError> {
        channel::send_activity(&self.state, app_id, spec, fault).await
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.token_requests.snapshot()
    }

    pub fn sent_activities(&self) -> Vec<SentActivity> {
        self.state.sent.snapshot()
    }

    /// Activities accepted for one conversation.
    pub fn sent_to(&self, conversation_id: &str) -> Vec<SentActivity> {
        self.sent_activities()
            .into_iter()
            .filter(|s| s.conversation_id == conversation_id && (200..300).contains(&s.status))
            .collect()
    }

    pub fn deliveries(&self) -> Vec<ActivityDelivery> {
        self.state.deliveries.snapshot()
    }

    pub fn downloads(&self) -> Vec<AttachmentDownload> {
        self.state.downloads.snapshot()
    }

    /// Requests of the OpenID metadata or the key set, by path.
    pub fn key_fetches(&self) -> Vec<String> {
        self.state.key_fetches.snapshot()
    }

    /// Waits (without polling) until `count` sends were answered.
    pub async fn wait_for_sent(&self, count: usize, timeout: Duration) -> bool {
        self.state.sent.wait_len(count, timeout).await
    }

    pub fn clear_records(&self) {
        self.state.token_requests.clear();
        self.state.sent.clear();
        self.state.deliveries.clear();
        self.state.downloads.clear();
        self.state.key_fetches.clear();
    }
}

fn router(state: Arc<TeamsState>) -> Router {
    Router::new()
        .route(
            "/v1/.well-known/openidconfiguration",
            get(channel::openid_metadata),
        )
        .route("/v1/.well-known/keys", get(channel::keys))
        .route("/{authority}/oauth2/v2.0/token", post(channel::token))
        .route(
            "/amer/v3/conversations/{conversation}/activities",
            post(channel::post_activity),
        )
        .route(
            "/amer/v3/attachments/{id}/views/original",
            get(channel::inline_attachment),
        )
        .route("/files/{id}", get(channel::file))
        .layer(DefaultBodyLimit::max(1024 * 1024))
        .with_state(state)
}
