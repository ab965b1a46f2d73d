//! Telegram as a [`MessagingPlatform`]: the I/O around the pure
//! translations of this module.

use async_trait::async_trait;
use chrono::Utc;
use serde_json::json;
use um_config::{MessagingConfig, Platform, Secret, TenantConfig};

use super::client::{BotApi, BotApiError};
use super::inbound::from_update;
use super::outbound::to_telegram;
use super::types::Update;
use super::webhook_secret::{self, SECRET_HEADER};
use crate::machinery::envelope::{Envelope, ReasonCode};
use crate::machinery::parts::send_parts;
use crate::platform::{
    Delivered, DeliveryError, InboundEvent, Media, MediaError, MessagingPlatform, PlatformContext,
    PlatformError, Rejection, WebhookRequest,
};

/// Largest update we take: Telegram updates are small JSON documents.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Store kind of the per-call markers of a delivery ([`send_parts`]).
const SENT_PART: &str = "tg-sent-part";

/// The update kinds the bridge relays (`allowed_updates` of `setWebhook`).
pub const ALLOWED_UPDATES: [&str; 3] = ["message", "edited_message", "callback_query"];

#[derive(Debug, Default)]
pub struct Telegram;

/// Telegram's Bot API when the Tenant's configuration points nowhere else.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";

fn bot(tenant: &TenantConfig) -> Option<(&Secret, &str)> {
    match &tenant.messaging {
        Some(MessagingConfig::Telegram(telegram)) => Some((
            &telegram.bot_token,
            telegram
                .api_base_url
                .as_deref()
                .filter(|base| !base.is_empty())
                .unwrap_or(DEFAULT_API_BASE),
        )),
        _ => None,
    }
}

/// The `secret_token` Telegram sends back with every update of `tenant`.
fn expected_secret_token(tenant: &TenantConfig) -> Option<String> {
    match &tenant.messaging {
        Some(MessagingConfig::Telegram(telegram)) => Some(webhook_secret::secret_token(
            &telegram.bot_token,
            telegram.webhook_secret_token.as_ref(),
        )),
        _ => None,
    }
}

/// The Bot API of `tenant`, or why there is none.
fn bot_api<'a>(http: &'a reqwest::Client, tenant: &'a TenantConfig) -> Option<BotApi<'a>> {
    bot(tenant).map(|(token, base_url)| BotApi {
        http,
        base_url,
        token,
    })
}

/// The `setWebhook` parameters for a tenant (None without a bot).
pub fn set_webhook_body(tenant: &TenantConfig) -> Option<serde_json::Value> {
    Some(json!({
        "url": tenant.webhook_url,
        "secret_token": expected_secret_token(tenant)?,
        "allowed_updates": ALLOWED_UPDATES,
    }))
}

/// A MIME type for a Telegram `file_path` (`photos/file_1.jpg`); the file
/// server itself answers `application/octet-stream`.
pub fn mime_from_path(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "oga" | "ogg" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "pdf" => "application/pdf",
        "tgs" => "application/x-tgsticker",
        _ => return None,
    })
}

#[async_trait]
impl MessagingPlatform for Telegram {
    fn platform(&self) -> Platform {
        Platform::Telegram
    }

    fn body_limit(&self) -> usize {
        BODY_LIMIT
    }

    fn verify(&self, tenant: &TenantConfig, request: &WebhookRequest<'_>) -> Result<(), Rejection> {
        let Some(expected) = expected_secret_token(tenant) else {
            return Err(Rejection::Unauthorized(format!(
                "tenant {} has no Telegram bot configured",
                tenant.key
            )));
        };
        let header = request.headers.get(SECRET_HEADER).map(|v| v.as_bytes());
        if webhook_secret::verify(&expected, header) {
            Ok(())
        } else {
            Err(Rejection::Unauthorized(
                "X-Telegram-Bot-Api-Secret-Token is missing or wrong".to_owned(),
            ))
        }
    }

    async fn parse_webhook(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        request: &WebhookRequest<'_>,
    ) -> Result<Vec<InboundEvent>, Rejection> {
        let update: Update = serde_json::from_slice(request.body)
            .map_err(|e| Rejection::BadRequest(format!("not a Telegram Update: {e}")))?;
        let media_url = |media: &super::inbound::MediaRef| ctx.media_url(tenant, &media.file_id);
        let inbound = from_update(&update, tenant, Utc::now(), &media_url);
        if let Some(query_id) = inbound.callback_query_id {
            // Stops the spinner on the guest's button; not part of accepting
            // the update, so it does not hold up the answer to Telegram.
            let http = ctx.http();
            let tenant = tenant.clone();
            tokio::spawn(async move {
                let Some(api) = bot_api(&http, &tenant) else {
                    return;
                };
                if let Err(error) = api
                    .call(
                        "answerCallbackQuery",
                        &json!({ "callback_query_id": query_id }),
                    )
                    .await
                {
                    tracing::warn!(tenant = %tenant.key, error = %error, "callback query not answered");
                }
            });
        }
        Ok(inbound
            .envelope
            .map(|envelope| InboundEvent {
                dedup_key: Some(format!("update:{}", update.update_id)),
                envelope,
            })
            .into_iter()
            .collect())
    }

    async fn deliver(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        envelope: &Envelope,
    ) -> Result<Delivered, DeliveryError> {
        let http = ctx.http();
        let Some(api) = bot_api(&http, tenant) else {
            return Err(DeliveryError::permanent(
                ReasonCode::GeneralError,
                format!("tenant {} has no Telegram bot configured", tenant.key),
            ));
        };
        let calls = to_telegram(envelope, &tenant.options)
            .map_err(|error| DeliveryError::permanent(error.reason(), error.to_string()))?;
        let api = &api;
        let last_message_id = send_parts(
            &ctx.store,
            &tenant.key,
            SENT_PART,
            &envelope.id,
            &calls,
            |_, call| async move {
                let result = api
                    .call(call.method, &call.body)
                    .await
                    .map_err(BotApiError::into_delivery_error)?;
                Ok(result
                    .get("message_id")
                    .and_then(serde_json::Value::as_i64)
                    .map(|id| id.to_string()))
            },
        )
        .await?;
        Ok(Delivered {
            platform_message_id: last_message_id,
        })
    }

    async fn tenant_changed(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        previous: Option<&TenantConfig>,
    ) -> Result<(), PlatformError> {
        let error = |detail: String| PlatformError {
            step: "setWebhook",
            tenant: tenant.key.clone(),
            detail,
        };
        let (Some((token, base_url)), Some(body)) = (bot(tenant), set_webhook_body(tenant)) else {
            return Err(error("no Telegram bot configured".to_owned()));
        };
        // A new bot token, secret token, API base or URL: register again.
        let unchanged = previous.is_some_and(|previous| {
            previous.messaging == tenant.messaging && previous.webhook_url == tenant.webhook_url
        });
        if unchanged {
            return Ok(());
        }
        let http = ctx.http();
        let api = BotApi {
            http: &http,
            base_url,
            token,
        };
        api.call("setWebhook", &body)
            .await
            .map_err(|e| error(e.to_string()))?;
        tracing::info!(tenant = %tenant.key, url = %tenant.webhook_url, "Telegram webhook set");
        Ok(())
    }

    async fn fetch_media(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        media_ref: &str,
    ) -> Result<Media, MediaError> {
        let http = ctx.http();
        let Some(api) = bot_api(&http, tenant) else {
            return Err(MediaError::NotFound(media_ref.to_owned()));
        };
        let file = api.get_file(media_ref).await.map_err(|error| match error {
            BotApiError::Rejected { status: 400, .. } => MediaError::NotFound(media_ref.to_owned()),
            other => MediaError::Upstream(other.to_string()),
        })?;
        let Some(path) = file.file_path else {
            // Files over 20 MB have no download path for bots.
            return Err(MediaError::NotFound(format!(
                "{media_ref} (no download path)"
            )));
        };
        let response = api
            .download(&path)
            .await
            .map_err(|error| MediaError::Upstream(error.to_string()))?;
        Ok(Media::from_response(
            response,
            mime_from_path(&path).map(str::to_owned),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types_from_paths() {
        assert_eq!(mime_from_path("photos/file_1.jpg"), Some("image/jpeg"));
        assert_eq!(mime_from_path("voice/file_2.OGA"), Some("audio/ogg"));
        assert_eq!(mime_from_path("documents/file_3"), None);
    }

    #[test]
    fn the_bot_api_is_telegrams_unless_the_tenant_points_elsewhere() {
        let mut tenant = super::super::inbound::tests::tenant();
        assert_eq!(bot(&tenant).map(|(_, base)| base), Some(DEFAULT_API_BASE));
        if let Some(MessagingConfig::Telegram(telegram)) = &mut tenant.messaging {
            telegram.api_base_url = Some("http://127.0.0.1:4001".into());
        }
        assert_eq!(
            bot(&tenant).map(|(_, base)| base),
            Some("http://127.0.0.1:4001")
        );
    }

    #[test]
    fn set_webhook_carries_url_and_derived_secret_only() {
        let tenant = super::super::inbound::tests::tenant();
        let body = set_webhook_body(&tenant).expect("a bot");
        assert_eq!(body["url"], "https://um.example/telegram/shop.acme");
        assert_eq!(
            body["secret_token"],
            webhook_secret::derive_secret_token("123:ABC")
        );
        assert!(!body.to_string().contains("123:ABC"));
    }

    fn with_header(tenant: &TenantConfig, token: &str) -> Result<(), Rejection> {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(SECRET_HEADER, token.parse().expect("header value"));
        let body = bytes::Bytes::new();
        Telegram.verify(
            tenant,
            &WebhookRequest {
                method: &axum::http::Method::POST,
                headers: &headers,
                query: None,
                body: &body,
            },
        )
    }

    #[test]
    fn the_tenant_secret_token_is_registered_and_required() {
        let mut tenant = super::super::inbound::tests::tenant();
        if let Some(MessagingConfig::Telegram(telegram)) = &mut tenant.messaging {
            telegram.webhook_secret_token = Some(Secret::new("acme_own-token-2026"));
        }
        let body = set_webhook_body(&tenant).expect("a bot");
        assert_eq!(body["secret_token"], "acme_own-token-2026");
        assert_eq!(with_header(&tenant, "acme_own-token-2026"), Ok(()));
        let derived = webhook_secret::derive_secret_token("123:ABC");
        assert!(matches!(
            with_header(&tenant, &derived),
            Err(Rejection::Unauthorized(_))
        ));
    }
}
