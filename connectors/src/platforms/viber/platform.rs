//! Viber as a [`MessagingPlatform`]: the I/O around the pure translations
//! of this module.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};
use um_config::{MessagingConfig, Platform, Secret, TenantConfig};

use super::client::{DEFAULT_API_BASE, ViberApi, ViberApiError};
use super::inbound::{self, from_callback};
use super::media_ref::MediaRef;
use super::outbound::{Sender, to_viber};
use super::types::{Callback, UserDetails};
use crate::machinery::envelope::{Envelope, ReasonCode};
use crate::machinery::http_client::fetch_failure;
use crate::machinery::parts::send_parts;
use crate::machinery::url_policy::FetchRules;
use crate::machinery::verify::{SignatureEncoding, verify_hmac_sha256};
use crate::platform::{
    Delivered, DeliveryError, InboundEvent, Media, MediaError, MessagingPlatform, PlatformContext,
    PlatformError, Rejection, WebhookReply, WebhookRequest,
};

/// Viber callbacks are small JSON documents.
pub const BODY_LIMIT: usize = 256 * 1024;
pub const SIGNATURE_HEADER: &str = "x-viber-content-signature";
/// The callbacks `set_webhook` subscribes to (`message`, `subscribed` and
/// `unsubscribed` always come).
pub const EVENT_TYPES: [&str; 5] = ["delivered", "seen", "failed", "subscribed", "unsubscribed"];
/// Store kinds: cached `get_user_details`, per-message markers of a
/// delivery ([`send_parts`]).
const USER_DETAILS: &str = "viber-user";
const SENT_PART: &str = "viber-sent-part";
/// Viber allows few `get_user_details` per user; the answer rarely changes.
const USER_DETAILS_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// After a failed lookup, do not ask again for this long.
const USER_DETAILS_FAILURE_TTL: Duration = Duration::from_secs(3600);
/// The lookup holds up the webhook answer; keep it short.
const USER_DETAILS_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
pub struct Viber;

/// A tenant's Viber settings.
pub struct ViberTenant<'a> {
    pub auth_token: &'a Secret,
    pub sender: Sender<'a>,
    pub api_base_url: &'a str,
}

pub fn viber_tenant(tenant: &TenantConfig) -> Option<ViberTenant<'_>> {
    match &tenant.messaging {
        Some(MessagingConfig::Viber(viber)) => Some(ViberTenant {
            auth_token: Some(&viber.auth_token).filter(|t| !t.is_empty())?,
            sender: Sender {
                name: Some(viber.sender_name.as_str())
                    .filter(|n| !n.is_empty())
                    .unwrap_or(tenant.display_name.as_str()),
                avatar: viber.sender_avatar.as_deref(),
            },
            api_base_url: viber
                .api_base_url
                .as_deref()
                .filter(|u| !u.is_empty())
                .unwrap_or(DEFAULT_API_BASE),
        }),
        _ => None,
    }
}

fn api<'a>(http: &'a reqwest::Client, viber: &ViberTenant<'a>) -> ViberApi<'a> {
    ViberApi {
        http,
        base_url: viber.api_base_url,
        token: viber.auth_token,
    }
}

/// The `set_webhook` body of a tenant.
pub fn set_webhook_body(tenant: &TenantConfig) -> Value {
    json!({
        "url": tenant.webhook_url,
        "event_types": EVENT_TYPES,
        "send_name": true,
        "send_photo": true,
    })
}

/// Whether a verified body is Viber's `webhook` check.
fn is_webhook_check(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Event {
        event: String,
    }
    serde_json::from_slice::<Event>(body).is_ok_and(|e| e.event == "webhook")
}

async fn user_details(
    ctx: &PlatformContext,
    tenant: &TenantConfig,
    viber: &ViberTenant<'_>,
    user_id: &str,
) -> Option<UserDetails> {
    match ctx.store.get(&tenant.key, USER_DETAILS, user_id).await {
        Ok(Some(cached)) => return serde_json::from_str(&cached).ok(),
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(tenant = %tenant.key, error = %error, "Viber user details cache unavailable");
            return None;
        }
    }
    let http = ctx.http();
    let answer = api(&http, viber)
        .call(
            "get_user_details",
            &json!({ "id": user_id }),
            Some(USER_DETAILS_TIMEOUT),
        )
        .await;
    let (details, ttl) = match answer {
        Ok(answer) => (answer.user.unwrap_or_default(), USER_DETAILS_TTL),
        Err(error) => {
            tracing::warn!(tenant = %tenant.key, error = %error, "Viber get_user_details failed");
            (UserDetails::default(), USER_DETAILS_FAILURE_TTL)
        }
    };
    if let Ok(text) = serde_json::to_string(&details)
        && let Err(error) = ctx
            .store
            .set(&tenant.key, USER_DETAILS, user_id, &text, ttl)
            .await
    {
        tracing::warn!(tenant = %tenant.key, error = %error, "Viber user details not cached");
    }
    Some(details)
}

#[async_trait]
impl MessagingPlatform for Viber {
    fn platform(&self) -> Platform {
        Platform::Viber
    }

    fn body_limit(&self) -> usize {
        BODY_LIMIT
    }

    fn verify(&self, tenant: &TenantConfig, request: &WebhookRequest<'_>) -> Result<(), Rejection> {
        let Some(viber) = viber_tenant(tenant) else {
            return Err(Rejection::Unauthorized(format!(
                "tenant {} has no Viber auth token configured",
                tenant.key
            )));
        };
        let signature = request.header(SIGNATURE_HEADER).unwrap_or_default();
        if verify_hmac_sha256(
            viber.auth_token.expose().as_bytes(),
            request.body,
            signature,
            "",
            SignatureEncoding::Hex,
        ) {
            Ok(())
        } else {
            Err(Rejection::Unauthorized(
                "X-Viber-Content-Signature is missing or wrong".to_owned(),
            ))
        }
    }

    fn handshake(
        &self,
        _tenant: &TenantConfig,
        request: &WebhookRequest<'_>,
    ) -> Option<WebhookReply> {
        is_webhook_check(request.body).then(|| WebhookReply::json(&json!({"status": 0})))
    }

    async fn parse_webhook(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        request: &WebhookRequest<'_>,
    ) -> Result<Vec<InboundEvent>, Rejection> {
        let callback: Callback = serde_json::from_slice(request.body)
            .map_err(|e| Rejection::BadRequest(format!("not a Viber callback: {e}")))?;
        if callback.event != inbound::MESSAGE_EVENT {
            // subscribed, unsubscribed, conversation_started, delivered,
            // seen, failed: acknowledged, not relayed.
            tracing::debug!(tenant = %tenant.key, event = %callback.event, "Viber event not relayed");
            return Ok(Vec::new());
        }
        let (Some(sender), Some(token)) = (callback.sender.as_ref(), callback.token()) else {
            return Err(Rejection::BadRequest(
                "Viber message callback without sender or message_token".to_owned(),
            ));
        };
        let details = match viber_tenant(tenant) {
            Some(viber) => user_details(ctx, tenant, &viber, &sender.id).await,
            None => None,
        };
        let media_url = |media: &MediaRef| ctx.media_url(tenant, &media.encode());
        let envelope = from_callback(&callback, tenant, details.as_ref(), Utc::now(), &media_url);
        Ok(envelope
            .map(|envelope| InboundEvent {
                dedup_key: Some(inbound::dedup_key(&token)),
                envelope,
            })
            .into_iter()
            .collect())
    }

    fn accepted_reply(&self) -> WebhookReply {
        WebhookReply::json(&json!({"status": 0}))
    }

    async fn deliver(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        envelope: &Envelope,
    ) -> Result<Delivered, DeliveryError> {
        let Some(viber) = viber_tenant(tenant) else {
            return Err(DeliveryError::permanent(
                ReasonCode::GeneralError,
                format!("tenant {} has no Viber auth token configured", tenant.key),
            ));
        };
        let messages = to_viber(envelope, viber.sender, &tenant.options)
            .map_err(|refused| DeliveryError::permanent(refused.reason, refused.to_string()))?;
        let http = ctx.http();
        let api = api(&http, &viber);
        let api = &api;
        let last_token = send_parts(
            &ctx.store,
            &tenant.key,
            SENT_PART,
            &envelope.id,
            &messages,
            |_, message| async move {
                let answer = api
                    .call("send_message", message, None)
                    .await
                    .map_err(ViberApiError::into_delivery_error)?;
                Ok(answer.message_token.map(|t| match t {
                    Value::String(text) => text,
                    other => other.to_string(),
                }))
            },
        )
        .await?;
        Ok(Delivered {
            platform_message_id: last_token,
        })
    }

    async fn tenant_changed(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        previous: Option<&TenantConfig>,
    ) -> Result<(), PlatformError> {
        let error = |detail: String| PlatformError {
            step: "set_webhook",
            tenant: tenant.key.clone(),
            detail,
        };
        let Some(viber) = viber_tenant(tenant) else {
            return Err(error("no Viber auth token configured".to_owned()));
        };
        let unchanged = previous.is_some_and(|previous| {
            previous.webhook_url == tenant.webhook_url
                && viber_tenant(previous).is_some_and(|old| {
                    old.auth_token == viber.auth_token && old.api_base_url == viber.api_base_url
                })
        });
        if unchanged {
            return Ok(());
        }
        let http = ctx.http();
        // Viber checks the URL with a `webhook` callback before it answers.
        api(&http, &viber)
            .call("set_webhook", &set_webhook_body(tenant), None)
            .await
            .map_err(|e| error(e.to_string()))?;
        tracing::info!(tenant = %tenant.key, url = %tenant.webhook_url, "Viber webhook set");
        Ok(())
    }

    async fn fetch_media(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        media_ref: &str,
    ) -> Result<Media, MediaError> {
        let media = MediaRef::decode(media_ref)
            .ok_or_else(|| MediaError::NotFound("not a Viber media reference".to_owned()))?;
        // The URL came in a callback: judged before it is fetched.
        let configured_base = match &tenant.messaging {
            Some(MessagingConfig::Viber(viber)) => viber.api_base_url.as_deref(),
            _ => None,
        };
        let rules = FetchRules {
            configured_base: configured_base.filter(|base| !base.is_empty()),
            file_hosts: &[],
        };
        let response = ctx
            .http
            .outside()
            .get(&media.url, rules)
            .await
            .map_err(|refused| MediaError::Upstream(format!("Viber media: {refused}")))?
            .send()
            .await
            .map_err(|e| MediaError::Upstream(fetch_failure("Viber media", &e)))?;
        let status = response.status();
        if matches!(status.as_u16(), 403 | 404 | 410) {
            // Viber's media URLs expire.
            return Err(MediaError::NotFound(format!(
                "Viber media answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(MediaError::Upstream(format!(
                "Viber media answered HTTP {}",
                status.as_u16()
            )));
        }
        let announced = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|mime| !mime.starts_with("application/octet-stream"))
            .map(str::to_owned);
        let mime = announced.unwrap_or_else(|| media.default_mime().to_owned());
        Ok(Media::from_response(response, Some(mime)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platforms::viber::inbound::tests::tenant;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method};

    fn request<'a>(headers: &'a HeaderMap, body: &'a Bytes) -> WebhookRequest<'a> {
        WebhookRequest {
            method: &Method::POST,
            headers,
            query: None,
            body,
        }
    }

    fn signed(body: &Bytes, key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let signature = hex::encode(crate::machinery::verify::hmac_sha256(key.as_bytes(), body));
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&signature).unwrap());
        headers
    }

    const TOKEN: &str = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9";

    #[test]
    fn verifies_the_hex_hmac_of_the_raw_body_with_the_auth_token() {
        let body = Bytes::from_static(
            br#"{"event":"webhook","timestamp":1457764197627,"message_token":241256543215}"#,
        );
        let tenant = tenant();
        assert!(
            Viber
                .verify(&tenant, &request(&signed(&body, TOKEN), &body))
                .is_ok()
        );
        let wrong = Viber
            .verify(&tenant, &request(&signed(&body, "other"), &body))
            .unwrap_err();
        assert!(matches!(wrong, Rejection::Unauthorized(_)));
        assert!(!wrong.to_string().contains(TOKEN));
        let tampered = Bytes::from_static(
            br#"{"event":"webhook","timestamp":1457764197628,"message_token":241256543215}"#,
        );
        assert!(
            Viber
                .verify(&tenant, &request(&signed(&body, TOKEN), &tampered))
                .is_err()
        );
        assert!(
            Viber
                .verify(&tenant, &request(&HeaderMap::new(), &body))
                .is_err()
        );
    }

    #[test]
    fn webhook_check_is_a_handshake_and_messages_are_not() {
        let tenant = tenant();
        let check = Bytes::from_static(
            br#"{"event":"webhook","timestamp":1,"chat_hostname":"SN-376_","message_token":1}"#,
        );
        let reply = Viber
            .handshake(&tenant, &request(&HeaderMap::new(), &check))
            .unwrap();
        assert_eq!(reply.status, http::StatusCode::OK);
        let message = Bytes::from_static(br#"{"event":"message","message_token":2}"#);
        assert!(
            Viber
                .handshake(&tenant, &request(&HeaderMap::new(), &message))
                .is_none()
        );
    }

    #[test]
    fn tenant_settings_and_set_webhook_body() {
        let tenant = tenant();
        let viber = viber_tenant(&tenant).unwrap();
        assert_eq!(viber.sender.name, "ACME Support");
        assert_eq!(viber.sender.avatar, Some("https://acme.example/a.png"));
        assert_eq!(viber.api_base_url, DEFAULT_API_BASE);
        let body = set_webhook_body(&tenant);
        assert_eq!(body["url"], "https://um.example/viber/shop.acme");
        assert_eq!(body["send_name"], true);
        assert!(
            body["event_types"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "failed")
        );
        assert!(!body.to_string().contains(TOKEN));
    }
}
