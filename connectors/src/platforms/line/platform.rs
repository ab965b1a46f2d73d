//! LINE as a [`MessagingPlatform`]: the I/O around the pure translations.
//!
//! Redis state (per tenant): the latest reply token of each conversation
//! (short TTL, used once by the first agent answer), users who blocked the
//! account (`unfollow`), cached profiles, issued access tokens, and markers
//! of sent parts (a push whose answer was lost is still made idempotent by
//! its retry key).

use crate::machinery::store::KEPT_TTL;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use um_config::{Platform, Secret, TenantConfig};

use super::channel::{Channel, channel};
use super::client::{LineApi, LineCallError, access_token, forget_token, retry_key};
use super::errors::is_invalid_reply_token;
use super::inbound::{Friendship, from_event};
use super::outbound::{LineDelivery, to_line};
use super::signature::{self, SIGNATURE_HEADER};
use super::switcher;
use super::types::{Profile, WebhookBody};
use crate::machinery::envelope::{Envelope, ReasonCode};
use crate::machinery::parts::send_parts;
use crate::platform::{
    Delivered, DeliveryError, InboundEvent, Media, MediaError, MessagingPlatform, PlatformContext,
    PlatformError, Rejection, WebhookRequest,
};

/// LINE webhook bodies are small JSON; events arrive in batches.
pub const BODY_LIMIT: usize = 512 * 1024;
/// LINE's reply tokens are short-lived; do not try one older than this.
pub const REPLY_TOKEN_TTL: Duration = Duration::from_secs(50);
/// How long a looked-up profile is reused.
pub const PROFILE_TTL: Duration = Duration::from_secs(24 * 3600);
/// A profile lookup must not hold up the webhook answer for long.
pub const PROFILE_TIMEOUT: Duration = Duration::from_secs(2);

const REPLY_TOKEN: &str = "line-reply-token";
const BLOCKED: &str = "line-blocked";
const PROFILE: &str = "line-profile";
/// Markers of the sent parts of a delivery ([`send_parts`]). The name is
/// from when only replies were marked; kept so that markers written before
/// still count for a retry in flight.
const SENT_PART: &str = "line-replied-part";

#[derive(Debug, Default)]
pub struct Line;

fn no_channel(tenant: &TenantConfig) -> String {
    format!("tenant {} has no LINE channel configured", tenant.key)
}

fn store_error(error: crate::machinery::store::StoreError) -> DeliveryError {
    DeliveryError::retry(error.to_string())
}

impl Line {
    /// Profiles of the users behind the events, from Redis or the API; a
    /// failed lookup only costs the display name and locale.
    async fn profiles(
        &self,
        ctx: &PlatformContext,
        line: &Channel<'_>,
        body: &WebhookBody,
    ) -> HashMap<String, Profile> {
        let users: HashSet<&str> = body
            .events
            .iter()
            .filter(|event| matches!(event.kind.as_str(), "message" | "postback"))
            .filter_map(|event| event.source.as_ref()?.user_id.as_deref())
            .collect();
        let mut profiles = HashMap::new();
        if users.is_empty() {
            return profiles;
        }
        let http = ctx.http();
        let mut token: Option<Secret> = None;
        for user in users {
            if let Ok(Some(cached)) = ctx.store.get(line.tenant, PROFILE, user).await
                && let Ok(profile) = serde_json::from_str::<Profile>(&cached)
            {
                profiles.insert(user.to_owned(), profile);
                continue;
            }
            if token.is_none() {
                match access_token(&http, &ctx.store, line).await {
                    Ok(issued) => token = Some(issued),
                    Err(error) => {
                        tracing::warn!(tenant = line.tenant, error = %error, "no LINE token for profiles");
                        return profiles;
                    }
                }
            }
            let Some(token) = &token else { break };
            let api = LineApi {
                http: &http,
                endpoints: &line.endpoints,
                token,
            };
            match api.profile(user, PROFILE_TIMEOUT).await {
                Ok(profile) => {
                    if let Ok(json) = serde_json::to_string(&profile) {
                        let _ = ctx
                            .store
                            .set(line.tenant, PROFILE, user, &json, PROFILE_TTL)
                            .await;
                    }
                    profiles.insert(user.to_owned(), profile);
                }
                Err(error) => {
                    tracing::info!(tenant = line.tenant, error = %error, "LINE profile not available");
                }
            }
        }
        profiles
    }

    async fn send_batches(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        line: &Channel<'_>,
        envelope: &Envelope,
        batches: &[Vec<serde_json::Value>],
    ) -> Result<Delivered, DeliveryError> {
        let to = envelope.conversation.id.as_str();
        if ctx
            .store
            .get(&tenant.key, BLOCKED, to)
            .await
            .map_err(store_error)?
            .is_some()
        {
            return Err(DeliveryError::permanent(
                ReasonCode::RecipientOptedOut,
                "the guest blocked the LINE account (unfollow)",
            ));
        }
        let http = ctx.http();
        let token = access_token(&http, &ctx.store, line)
            .await
            .map_err(LineCallError::into_delivery_error)?;
        let api = LineApi {
            http: &http,
            endpoints: &line.endpoints,
            token: &token,
        };
        let api = &api;
        let last_id = send_parts(
            &ctx.store,
            &tenant.key,
            SENT_PART,
            &envelope.id,
            batches,
            |index, messages| async move {
                if index == 0
                    && let Some(sent) = self.try_reply(ctx, tenant, api, to, messages).await?
                {
                    return Ok(sent.last_id());
                }
                match api
                    .push(to, messages, &retry_key(&envelope.id, index))
                    .await
                {
                    Ok(sent) => Ok(sent.last_id()),
                    Err(LineCallError::Status { status: 401, .. })
                        if line.access_token.is_none() =>
                    {
                        forget_token(&ctx.store, line).await;
                        Err(DeliveryError::retry(
                            "LINE refused the issued access token; issuing a new one",
                        ))
                    }
                    Err(error) => Err(error.into_delivery_error()),
                }
            },
        )
        .await?;
        Ok(Delivered {
            platform_message_id: last_id,
        })
    }

    /// The first part goes as a reply while the guest's reply token is
    /// fresh. The token is taken out of Redis before use: it is one-use,
    /// and a retry after an unclear failure pushes instead (a push after a
    /// reply that did go through would repeat the part; LINE offers no
    /// retry key for replies).
    async fn try_reply(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        api: &LineApi<'_>,
        to: &str,
        messages: &[serde_json::Value],
    ) -> Result<Option<super::client::Sent>, DeliveryError> {
        let Some(reply_token) = ctx
            .store
            .get(&tenant.key, REPLY_TOKEN, to)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        ctx.store
            .delete(&tenant.key, REPLY_TOKEN, to)
            .await
            .map_err(store_error)?;
        match api.reply(&reply_token, messages).await {
            Ok(sent) => Ok(Some(sent)),
            Err(LineCallError::Status { status, body, .. })
                if is_invalid_reply_token(status, &body) =>
            {
                Ok(None)
            }
            Err(error) => Err(error.into_delivery_error()),
        }
    }
}

#[async_trait]
impl MessagingPlatform for Line {
    fn platform(&self) -> Platform {
        Platform::Line
    }

    fn body_limit(&self) -> usize {
        BODY_LIMIT
    }

    fn verify(&self, tenant: &TenantConfig, request: &WebhookRequest<'_>) -> Result<(), Rejection> {
        let Some(line) = channel(tenant) else {
            return Err(Rejection::Unauthorized(no_channel(tenant)));
        };
        if signature::verify(
            line.channel_secret.expose(),
            request.body,
            request.header(SIGNATURE_HEADER),
        ) {
            Ok(())
        } else {
            Err(Rejection::Unauthorized(
                "X-Line-Signature is missing or does not match the body".to_owned(),
            ))
        }
    }

    async fn parse_webhook(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        request: &WebhookRequest<'_>,
    ) -> Result<Vec<InboundEvent>, Rejection> {
        let body: WebhookBody = serde_json::from_slice(request.body)
            .map_err(|e| Rejection::BadRequest(format!("not a LINE webhook body: {e}")))?;
        let Some(line) = channel(tenant) else {
            return Err(Rejection::Unauthorized(no_channel(tenant)));
        };
        let profiles = self.profiles(ctx, &line, &body).await;
        let media_url = |message_id: &str| ctx.media_url(tenant, message_id);
        let now = Utc::now();
        let mut events = Vec::new();
        for event in &body.events {
            let inbound = from_event(event, tenant, now, &profiles, &media_url);
            let redelivered = event
                .delivery_context
                .as_ref()
                .is_some_and(|context| context.is_redelivery);
            // A redelivered event's reply token is stale by the time it
            // arrives again.
            if let Some((conversation, token)) = &inbound.reply_token
                && !redelivered
                && let Err(error) = ctx
                    .store
                    .set(
                        &tenant.key,
                        REPLY_TOKEN,
                        conversation,
                        token,
                        REPLY_TOKEN_TTL,
                    )
                    .await
            {
                tracing::warn!(tenant = %tenant.key, error = %error, "reply token not kept; answers will be pushed");
            }
            match &inbound.friendship {
                Some((user, Friendship::Blocked)) => {
                    if let Err(error) = ctx
                        .store
                        .set(&tenant.key, BLOCKED, user, "1", KEPT_TTL)
                        .await
                    {
                        tracing::warn!(tenant = %tenant.key, error = %error, "unfollow not recorded");
                    }
                }
                Some((user, Friendship::Following)) => {
                    if let Err(error) = ctx.store.delete(&tenant.key, BLOCKED, user).await {
                        tracing::warn!(tenant = %tenant.key, error = %error, "follow not recorded");
                    }
                }
                None => {}
            }
            if let Some(envelope) = inbound.envelope {
                events.push(InboundEvent {
                    dedup_key: inbound.dedup_key,
                    envelope,
                });
            }
        }
        Ok(events)
    }

    async fn deliver(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        envelope: &Envelope,
    ) -> Result<Delivered, DeliveryError> {
        let Some(line) = channel(tenant) else {
            return Err(DeliveryError::permanent(
                ReasonCode::GeneralError,
                no_channel(tenant),
            ));
        };
        let delivery = to_line(envelope, &tenant.options)
            .map_err(|refused| DeliveryError::permanent(refused.reason, refused.to_string()))?;
        match delivery {
            LineDelivery::Messages(batches) if batches.is_empty() => Ok(Delivered::default()),
            LineDelivery::Messages(batches) => {
                self.send_batches(ctx, tenant, &line, envelope, &batches)
                    .await
            }
            LineDelivery::Switch { note } => {
                let Some(settings) = &line.switcher else {
                    return Err(DeliveryError::permanent(
                        ReasonCode::GeneralError,
                        format!("tenant {} has no LINE Switcher configured", tenant.key),
                    ));
                };
                switcher::switch(
                    &ctx.http(),
                    &line.endpoints.api,
                    settings,
                    &envelope.conversation.guest.id,
                    note.as_deref(),
                )
                .await
                .map_err(LineCallError::into_delivery_error)?;
                Ok(Delivered::default())
            }
        }
    }

    async fn tenant_changed(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        previous: Option<&TenantConfig>,
    ) -> Result<(), PlatformError> {
        let error = |detail: String| PlatformError {
            step: "set LINE webhook endpoint",
            tenant: tenant.key.clone(),
            detail,
        };
        let Some(line) = channel(tenant) else {
            return Err(error(no_channel(tenant)));
        };
        let unchanged = previous.is_some_and(|previous| {
            previous.webhook_url == tenant.webhook_url && previous.messaging == tenant.messaging
        });
        if unchanged {
            return Ok(());
        }
        // Another channel or token may be another bot: ask LINE again.
        super::friend_routes::forget_bot_info(ctx, &tenant.key).await;
        let http = ctx.http();
        let token = access_token(&http, &ctx.store, &line)
            .await
            .map_err(|e| error(e.to_string()))?;
        let api = LineApi {
            http: &http,
            endpoints: &line.endpoints,
            token: &token,
        };
        api.set_webhook_endpoint(&tenant.webhook_url)
            .await
            .map_err(|e| error(e.to_string()))?;
        tracing::info!(tenant = %tenant.key, url = %tenant.webhook_url, "LINE webhook endpoint set");
        Ok(())
    }

    /// The add-friend QR code and link of the tenant's LINE Official Account.
    fn extra_routes(&self, ctx: PlatformContext) -> Option<axum::Router> {
        use super::friend_routes::{friend_link_json, qr_png, qr_svg};
        use axum::routing::get;
        Some(
            axum::Router::new()
                .route("/line/{tenant}/qr.svg", get(qr_svg))
                .route("/line/{tenant}/qr.png", get(qr_png))
                .route("/line/{tenant}/friend-link", get(friend_link_json))
                .with_state(ctx),
        )
    }

    async fn fetch_media(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        media_ref: &str,
    ) -> Result<Media, MediaError> {
        let Some(line) = channel(tenant) else {
            return Err(MediaError::NotFound(media_ref.to_owned()));
        };
        let http = ctx.http();
        let token = access_token(&http, &ctx.store, &line)
            .await
            .map_err(|e| MediaError::Upstream(e.to_string()))?;
        let api = LineApi {
            http: &http,
            endpoints: &line.endpoints,
            token: &token,
        };
        match api.content(media_ref).await {
            Ok(response) => Ok(Media::from_response(response, None)),
            Err(LineCallError::Status { status: 404, .. }) => {
                Err(MediaError::NotFound(media_ref.to_owned()))
            }
            Err(other) => Err(MediaError::Upstream(other.to_string())),
        }
    }
}
