//! The one door through which a messaging platform enters the machinery.
//!
//! A platform is one module implementing [`MessagingPlatform`] plus one line
//! in [`crate::registry`]. The machinery ([`crate::machinery::service`]) then runs it:
//!
//! - `POST /<platform>/{tenant}`: 404 for an unknown tenant, 413 over
//!   [`MessagingPlatform::body_limit`], [`MessagingPlatform::verify`] on the
//!   raw body (401), [`MessagingPlatform::handshake`], then
//!   [`MessagingPlatform::parse_webhook`] (400), de-duplication of each
//!   [`InboundEvent::dedup_key`] in Redis (claim, then confirm once the broker
//!   confirmed), publication of every envelope towards gcloudcx with publisher
//!   confirms, and only then [`MessagingPlatform::accepted_reply`].
//! - `GET /<platform>/{tenant}`: verify + handshake only (WeChat `echostr`).
//! - the consumer of `um.to-guest.<platform>`: [`MessagingPlatform::deliver`]
//!   per envelope, one conversation strictly in order, retried in place on
//!   [`DeliveryError::Retry`], then a [`Body::Receipt`](crate::machinery::envelope::Body)
//!   envelope back towards gcloudcx (Delivered or Failed with the reason).
//! - `GET /<platform>/{tenant}/media/{ref}?exp=&sig=`: signed, expiring media
//!   URLs ([`PlatformContext::media_url`]) served by
//!   [`MessagingPlatform::fetch_media`], so a credential-bearing platform URL
//!   never leaves the connector.
//! - on configuration reload, [`MessagingPlatform::tenant_changed`] for every
//!   tenant that appeared or changed (e.g. Telegram `setWebhook`).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use http::{HeaderMap, Method, StatusCode};
use um_config::{Platform, TenantConfig};

use crate::machinery::config_watch::ConfigWatcher;
use crate::machinery::envelope::{Envelope, ReasonCode};
use crate::machinery::http_client::HttpClients;
use crate::machinery::media::MediaSigner;
use crate::machinery::metrics::Metrics;
use crate::machinery::store::Store;

/// Default largest webhook body: generous for JSON events, small enough that
/// a flood of oversized posts cannot exhaust memory.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// A webhook request as received, before anything trusted it.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// Raw query string without `?`, if any (WeChat signs its query).
    pub query: Option<&'a str>,
    /// The raw body, exactly as received: verify signatures on these bytes.
    pub body: &'a Bytes,
}

impl WebhookRequest<'_> {
    /// A header as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// One query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query?;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// Why a webhook is refused. The machinery answers with the status and a
/// JSON body `{"error": <code>, "message": <text>}`; the text must never
/// contain a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The signature is missing or does not verify: 401.
    #[error("signature rejected: {0}")]
    Unauthorized(String),
    /// The body is not what the platform sends: 400.
    #[error("malformed webhook: {0}")]
    BadRequest(String),
    /// Verified and well-formed but of a kind this connector does not take
    /// (e.g. an unknown GET): 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// Authentic, but from a sender this connector does not take (e.g. a
    /// Bot Framework channel other than Teams): 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Cannot be judged now (e.g. the platform's signing keys cannot be
    /// fetched): 503 with `Retry-After`, so the platform redelivers
    /// instead of the sender being told its credentials are wrong.
    #[error("cannot verify now: {0}")]
    Unavailable(String),
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Rejection::BadRequest(_) => StatusCode::BAD_REQUEST,
            Rejection::NotFound(_) => StatusCode::NOT_FOUND,
            Rejection::Forbidden(_) => StatusCode::FORBIDDEN,
            Rejection::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Stable code for the JSON body and the `reason` metric label.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Unauthorized(_) => "unauthorized",
            Rejection::BadRequest(_) => "bad_request",
            Rejection::NotFound(_) => "not_found",
            Rejection::Forbidden(_) => "forbidden",
            Rejection::Unavailable(_) => "unavailable",
        }
    }
}

/// A synchronous answer the machinery sends as is (handshakes, and the body
/// a platform expects after an accepted webhook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl WebhookReply {
    pub fn json(value: &serde_json::Value) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: "application/json",
            body: Bytes::from(value.to_string()),
        }
    }

    pub fn text(text: impl Into<String>) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from(text.into()),
        }
    }
}

/// One envelope a webhook produced, with the key that identifies the
/// platform event across redeliveries (Telegram `update_id`, LINE
/// `webhookEventId`, ...). `None`: the platform does not redeliver, or has
/// no id; the envelope is then published without de-duplication.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    pub dedup_key: Option<String>,
    pub envelope: Envelope,
}

/// A deterministic envelope id for a platform event, so that a redelivered
/// event yields the same id and every downstream done marker and
/// idempotency key recognises it.
pub fn event_envelope_id(platform: Platform, tenant_key: &str, event_id: &str) -> String {
    let digest = crate::machinery::verify::hmac_sha256(
        b"um-event-id",
        format!("{platform}\n{tenant_key}\n{event_id}").as_bytes(),
    );
    let hex = hex::encode(&digest[..16]);
    // UUID-shaped (version nibble 5-like) for readers that expect UUIDs.
    format!(
        "{}-{}-5{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A message the platform accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The platform's id of the sent message, when it returns one.
    pub platform_message_id: Option<String>,
}

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Transient (429, 5xx, timeout, connection): retried in place with
    /// back-off; `after` (from `Retry-After`) overrides the back-off.
    #[error("retryable delivery failure: {detail}")]
    Retry {
        after: Option<Duration>,
        detail: String,
    },
    /// Will never succeed as is: reported to Genesys as a Failed receipt with
    /// `reason`, not retried.
    #[error("permanent delivery failure ({reason:?}): {detail}")]
    Permanent { reason: ReasonCode, detail: String },
}

impl DeliveryError {
    pub fn retry(detail: impl Into<String>) -> Self {
        DeliveryError::Retry {
            after: None,
            detail: detail.into(),
        }
    }

    pub fn permanent(reason: ReasonCode, detail: impl Into<String>) -> Self {
        DeliveryError::Permanent {
            reason,
            detail: detail.into(),
        }
    }
}

/// A media body streamed to whoever follows a signed media URL.
pub struct Media {
    pub mime: String,
    pub length: Option<u64>,
    pub body: BoxStream<'static, Result<Bytes, std::io::Error>>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("mime", &self.mime)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl Media {
    pub fn from_bytes(mime: impl Into<String>, bytes: Bytes) -> Self {
        Self {
            mime: mime.into(),
            length: Some(bytes.len() as u64),
            body: Box::pin(futures::stream::once(async move { Ok(bytes) })),
        }
    }

    /// Streams an upstream response (its `Content-Type` unless `mime` says).
    pub fn from_response(response: reqwest::Response, mime: Option<String>) -> Self {
        use futures::TryStreamExt;
        let mime = mime
            .or_else(|| {
                response
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        Self {
            mime,
            length: response.content_length(),
            body: Box::pin(response.bytes_stream().map_err(std::io::Error::other)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The reference names nothing (any more): 404.
    #[error("media not found: {0}")]
    NotFound(String),
    /// The platform could not be asked: 502.
    #[error("media upstream failed: {0}")]
    Upstream(String),
}

/// A failure of a platform's own side task (e.g. `tenant_changed`).
#[derive(Debug, thiserror::Error)]
#[error("{step} for tenant {tenant}: {detail}")]
pub struct PlatformError {
    pub step: &'static str,
    pub tenant: String,
    pub detail: String,
}

/// What the machinery lends a platform: shared HTTP client (outbound proxy,
/// timeouts), the Redis store of this service, metrics, signed media URLs,
/// and the current configuration.
#[derive(Clone)]
pub struct PlatformContext {
    pub service: String,
    pub http: HttpClients,
    pub store: Store,
    pub metrics: Metrics,
    pub media: MediaSigner,
    pub config: ConfigWatcher,
}

impl PlatformContext {
    /// The HTTP client to call the platform with (honours the configured
    /// outbound proxy; connect and request timeouts set).
    pub fn http(&self) -> reqwest::Client {
        self.http.client()
    }

    /// A public, signed, expiring URL under which the connector serves the
    /// platform's media `media_ref` (e.g. a Telegram `file_id`) without
    /// exposing the platform's credential-bearing URL.
    pub fn media_url(&self, tenant: &TenantConfig, media_ref: &str) -> String {
        self.media.url(tenant, media_ref)
    }
}

/// A messaging platform. Object safe: the registry holds `Arc<dyn _>`.
#[async_trait]
pub trait MessagingPlatform: Send + Sync + 'static {
    fn platform(&self) -> Platform;

    /// Largest webhook body accepted (413 above).
    fn body_limit(&self) -> usize {
        DEFAULT_BODY_LIMIT
    }

    /// Authenticates the raw request with this tenant's own secret, before
    /// anything parses it. Use [`crate::machinery::verify`] (constant-time).
    fn verify(&self, tenant: &TenantConfig, request: &WebhookRequest<'_>) -> Result<(), Rejection>;

    /// A verified request that must be answered synchronously instead of
    /// being parsed into events (Slack `url_verification`, Viber `webhook`,
    /// WeChat `echostr`). `None`: not a handshake.
    fn handshake(
        &self,
        _tenant: &TenantConfig,
        _request: &WebhookRequest<'_>,
    ) -> Option<WebhookReply> {
        None
    }

    /// Turns a verified webhook into envelopes (direction guest → agent).
    /// An event the connector ignores yields no envelope, not an error.
    async fn parse_webhook(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        request: &WebhookRequest<'_>,
    ) -> Result<Vec<InboundEvent>, Rejection>;

    /// The 2xx answer once every envelope is confirmed by the broker.
    fn accepted_reply(&self) -> WebhookReply {
        WebhookReply::json(&serde_json::json!({"ok": true}))
    }

    /// Sends one agent → guest envelope to the platform. Called at most once
    /// at a time per conversation, in order. The envelope id is the
    /// idempotency key; the machinery skips envelopes already delivered.
    async fn deliver(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        envelope: &Envelope,
    ) -> Result<Delivered, DeliveryError>;

    /// A tenant appeared (`previous` is None) or its configuration changed.
    async fn tenant_changed(
        &self,
        _ctx: &PlatformContext,
        _tenant: &TenantConfig,
        _previous: Option<&TenantConfig>,
    ) -> Result<(), PlatformError> {
        Ok(())
    }

    /// Routes this platform serves besides its webhook and media (e.g.
    /// Slack's OAuth install and registration pages), merged into the
    /// service's server. Default: none.
    fn extra_routes(&self, _ctx: PlatformContext) -> Option<axum::Router> {
        None
    }

    /// Fetches media named by a reference this platform put into a
    /// [`PlatformContext::media_url`].
    async fn fetch_media(
        &self,
        _ctx: &PlatformContext,
        _tenant: &TenantConfig,
        media_ref: &str,
    ) -> Result<Media, MediaError> {
        Err(MediaError::NotFound(media_ref.to_owned()))
    }
}
