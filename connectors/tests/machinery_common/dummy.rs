//! A messaging platform of the tests' own, implementing the trait the way a
//! real one does: HMAC signature on the raw body, JSON events, a handshake,
//! deliveries that fail as told, media served from memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use um_config::{LineConfig, MessagingConfig, Platform, Secret, TenantConfig};
use um_connector::machinery::envelope::{Body, Content, Direction, Envelope, ReasonCode};
use um_connector::machinery::verify::{SignatureEncoding, hmac_sha256, verify_hmac_sha256};
use um_connector::platform::{
    Delivered, DeliveryError, InboundEvent, Media, MediaError, MessagingPlatform, PlatformContext,
    PlatformError, Rejection, WebhookReply, WebhookRequest, event_envelope_id,
};

pub const PLATFORM: Platform = Platform::Line;
pub const SIGNATURE_HEADER: &str = "x-dummy-signature";
pub const BODY_LIMIT: usize = 4096;

pub fn tenant(key: &str, secret: &str) -> TenantConfig {
    TenantConfig::new(
        key.to_owned(),
        key.to_owned(),
        PLATFORM,
        format!("https://um.example.com/line/{key}"),
    )
    .with_messaging(MessagingConfig::Line(LineConfig {
        channel_id: None,
        channel_secret: Secret::new(secret),
        channel_access_token: None,
        switcher: None,
        api_base_url: None,
    }))
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), body))
}

fn channel_secret(tenant: &TenantConfig) -> Option<&str> {
    match &tenant.messaging {
        Some(MessagingConfig::Line(line)) => Some(line.channel_secret.expose()),
        _ => None,
    }
}

#[derive(Deserialize)]
struct Events {
    #[serde(default)]
    challenge: Option<String>,
    #[serde(default)]
    events: Vec<EventJson>,
}

#[derive(Deserialize)]
struct EventJson {
    id: String,
    conversation: String,
    text: String,
}

/// What `deliver` answers for a text: fail with Retry this many times, or
/// permanently.
#[derive(Debug, Clone, Copy)]
pub enum Plan {
    RetryTimes(u32),
    Permanent(ReasonCode),
}

#[derive(Default)]
pub struct DummyPlatform {
    pub plans: Mutex<HashMap<String, Plan>>,
    pub attempts: Mutex<HashMap<String, u32>>,
    /// Texts delivered, in order.
    pub delivered: Mutex<Vec<String>>,
    pub tenants_changed: Mutex<Vec<(String, bool)>>,
    pub media: Mutex<HashMap<String, (String, Bytes)>>,
}

#[async_trait]
impl MessagingPlatform for DummyPlatform {
    fn platform(&self) -> Platform {
        PLATFORM
    }

    fn body_limit(&self) -> usize {
        BODY_LIMIT
    }

    fn verify(&self, tenant: &TenantConfig, request: &WebhookRequest<'_>) -> Result<(), Rejection> {
        let secret = channel_secret(tenant)
            .ok_or_else(|| Rejection::Unauthorized("no channel secret".into()))?;
        let signature = request
            .header(SIGNATURE_HEADER)
            .ok_or_else(|| Rejection::Unauthorized(format!("{SIGNATURE_HEADER} missing")))?;
        if verify_hmac_sha256(
            secret.as_bytes(),
            request.body,
            signature,
            "",
            SignatureEncoding::Hex,
        ) {
            Ok(())
        } else {
            Err(Rejection::Unauthorized(
                "signature does not match the body".into(),
            ))
        }
    }

    fn handshake(
        &self,
        _tenant: &TenantConfig,
        request: &WebhookRequest<'_>,
    ) -> Option<WebhookReply> {
        let events: Events = serde_json::from_slice(request.body).ok()?;
        events.challenge.map(WebhookReply::text)
    }

    async fn parse_webhook(
        &self,
        _ctx: &PlatformContext,
        tenant: &TenantConfig,
        request: &WebhookRequest<'_>,
    ) -> Result<Vec<InboundEvent>, Rejection> {
        let events: Events = serde_json::from_slice(request.body)
            .map_err(|e| Rejection::BadRequest(e.to_string()))?;
        Ok(events
            .events
            .into_iter()
            .map(|event| InboundEvent {
                envelope: Envelope::message(
                    &tenant.key,
                    PLATFORM,
                    Direction::GuestToAgent,
                    &event.conversation,
                    Content {
                        text: Some(event.text),
                        ..Content::default()
                    },
                )
                .with_id(event_envelope_id(PLATFORM, &tenant.key, &event.id))
                .with_origin_id(event.id.clone()),
                dedup_key: Some(event.id),
            })
            .collect())
    }

    async fn deliver(
        &self,
        _ctx: &PlatformContext,
        _tenant: &TenantConfig,
        envelope: &Envelope,
    ) -> Result<Delivered, DeliveryError> {
        let text = match &envelope.body {
            Body::Message(content) => content.text.clone().unwrap_or_default(),
            _ => String::new(),
        };
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(text.clone()).or_default();
            *n += 1;
            *n
        };
        match self.plans.lock().unwrap().get(&text).copied() {
            Some(Plan::RetryTimes(n)) if attempt <= n => {
                return Err(DeliveryError::Retry {
                    after: Some(Duration::from_millis(50)),
                    detail: format!("HTTP 429 for {text}"),
                });
            }
            Some(Plan::Permanent(reason)) => {
                return Err(DeliveryError::permanent(reason, format!("refused {text}")));
            }
            _ => {}
        }
        self.delivered.lock().unwrap().push(text);
        Ok(Delivered {
            platform_message_id: Some(format!("p-{attempt}")),
        })
    }

    async fn tenant_changed(
        &self,
        _ctx: &PlatformContext,
        tenant: &TenantConfig,
        previous: Option<&TenantConfig>,
    ) -> Result<(), PlatformError> {
        self.tenants_changed
            .lock()
            .unwrap()
            .push((tenant.key.clone(), previous.is_some()));
        Ok(())
    }

    async fn fetch_media(
        &self,
        _ctx: &PlatformContext,
        _tenant: &TenantConfig,
        media_ref: &str,
    ) -> Result<Media, MediaError> {
        match self.media.lock().unwrap().get(media_ref) {
            Some((mime, bytes)) => Ok(Media::from_bytes(mime.clone(), bytes.clone())),
            None => Err(MediaError::NotFound(media_ref.to_owned())),
        }
    }
}
