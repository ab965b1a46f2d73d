//! Teams as a [`MessagingPlatform`]: the I/O around the pure translations.
//!
//! Redis holds, per tenant: the reference of every conversation an
//! authenticated activity came from (`serviceUrl`, scope, the bot's
//! account), so agent messages can be sent back; the quick replies last
//! offered as suggested actions; where inbound files are; the bot token.

use crate::machinery::store::KEPT_TTL;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use um_config::{Platform, TenantConfig};

use super::auth::{self, AuthError, Expected, KeyCache};
use super::client::{self, Bot};
use super::inbound::{self, MediaSource};
use super::manifest::{self, PackageState};
use super::outbound::to_teams;
use super::types::{Activity, ConversationRef, TEAMS_CHANNEL_ID};
use crate::machinery::envelope::{Body, ButtonKind, Envelope, QuickReply, ReasonCode};
use crate::machinery::http_client::fetch_failure;
use crate::machinery::store::Store;
use crate::machinery::url_policy::FetchRules;
use crate::platform::{
    Delivered, DeliveryError, InboundEvent, Media, MediaError, MessagingPlatform, PlatformContext,
    PlatformError, Rejection, WebhookRequest,
};

/// Largest activity we take.
pub const BODY_LIMIT: usize = 256 * 1024;
const CONVERSATION_KIND: &str = "teams-conversation";
const OFFERED_KIND: &str = "teams-offered";
const MEDIA_KIND: &str = "teams-media";
/// The tenant's app package: `state` ([`PackageState`]) and `zip` (base64).
pub const PACKAGE_KIND: &str = "teams-package";
/// A conversation reference outlives any chat: Teams conversations last.
const CONVERSATION_TTL: Duration = Duration::from_secs(180 * 24 * 3600);
const OFFERED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const MEDIA_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct Teams {
    keys: KeyCache,
    /// Bot Framework channels whose activities are taken ([`CHANNELS_ENV`]).
    channels: Vec<String>,
}

/// Overrides [`auth::DEFAULT_MIN_REFRESH`] (milliseconds): tests that
/// rotate keys right after a fetch set it to 0.
pub const MIN_KEY_REFRESH_ENV: &str = "UM_TEAMS_KEY_REFRESH_MIN_MS";

/// The Bot Framework channels (`channelId`) whose activities the connector
/// takes, comma-separated; `msteams` when unset. An Azure Bot can have
/// other channels enabled (Web Chat, Direct Line): whoever holds such a
/// channel's secret can post activities the Bot Framework signs, with
/// attachment URLs of their choosing, and Teams is what this connector
/// serves. An activity from another channel is answered 403, naming the
/// channel; nothing of it is kept or fetched.
pub const CHANNELS_ENV: &str = "UM_TEAMS_CHANNELS";

impl Default for Teams {
    fn default() -> Self {
        let min_refresh = std::env::var(MIN_KEY_REFRESH_ENV)
            .ok()
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .map_or(auth::DEFAULT_MIN_REFRESH, Duration::from_millis);
        Self::with_key_cache(KeyCache::new(min_refresh))
            .with_channels(channels_from(std::env::var(CHANNELS_ENV).ok().as_deref()))
    }
}

/// The channels a [`CHANNELS_ENV`] value names (`msteams` for none).
pub fn channels_from(value: Option<&str>) -> Vec<String> {
    let channels: Vec<String> = value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    if channels.is_empty() {
        vec![TEAMS_CHANNEL_ID.to_owned()]
    } else {
        channels
    }
}

impl Teams {
    /// With a given least time between key refreshes for unknown key ids
    /// (activities of the `msteams` channel only).
    pub fn with_key_cache(keys: KeyCache) -> Self {
        Self {
            keys,
            channels: vec![TEAMS_CHANNEL_ID.to_owned()],
        }
    }

    /// Taking activities of these Bot Framework channels.
    pub fn with_channels(mut self, channels: Vec<String>) -> Self {
        self.channels = channels;
        self
    }

    /// Refuses an authenticated activity from a channel not taken.
    fn check_channel(&self, activity: &Activity) -> Result<(), Rejection> {
        if self.channels.contains(&activity.channel_id) {
            return Ok(());
        }
        Err(Rejection::Forbidden(format!(
            "activity from Bot Framework channel {:?}: this connector takes activities of {} only ({CHANNELS_ENV})",
            activity.channel_id,
            self.channels.join(", ")
        )))
    }

    async fn authenticate(
        &self,
        ctx: &PlatformContext,
        bot: &Bot,
        request: &WebhookRequest<'_>,
        activity: &Activity,
    ) -> Result<(), AuthError> {
        let token = auth::bearer(request.header("authorization"))?;
        let kid = auth::key_id(token)?;
        let key = self
            .keys
            .key(&ctx.http(), &bot.openid_metadata_url, &kid)
            .await?;
        auth::validate(
            token,
            &key,
            Expected {
                app_id: &bot.app_id,
                service_url: &activity.service_url,
                channel_id: &activity.channel_id,
            },
        )
    }
}

async fn load<T: serde::de::DeserializeOwned>(
    store: &Store,
    tenant: &str,
    kind: &str,
    id: &str,
) -> Result<Option<T>, String> {
    match store.get(tenant, kind, id).await {
        Ok(Some(text)) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{kind} {id}: {e}")),
        Ok(None) => Ok(None),
        Err(error) => Err(error.to_string()),
    }
}

async fn save<T: serde::Serialize>(
    store: &Store,
    tenant: &str,
    kind: &str,
    id: &str,
    value: &T,
    ttl: Duration,
) {
    let text = match serde_json::to_string(value) {
        Ok(text) => text,
        Err(error) => {
            tracing::warn!(kind, error = %error, "not serialisable");
            return;
        }
    };
    if let Err(error) = store.set(tenant, kind, id, &text, ttl).await {
        tracing::warn!(kind, error = %error, "not stored");
    }
}

#[async_trait]
impl MessagingPlatform for Teams {
    fn platform(&self) -> Platform {
        Platform::Teams
    }

    fn body_limit(&self) -> usize {
        BODY_LIMIT
    }

    /// Only what needs no key fetch: a bot is configured and a Bearer token
    /// is there. The token itself is validated in `parse_webhook`, which
    /// may have to fetch the signing keys, before anything is published.
    fn verify(&self, tenant: &TenantConfig, request: &WebhookRequest<'_>) -> Result<(), Rejection> {
        Bot::of(tenant).map_err(Rejection::Unauthorized)?;
        auth::bearer(request.header("authorization"))
            .map(|_| ())
            .map_err(|e| Rejection::Unauthorized(e.to_string()))
    }

    async fn parse_webhook(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        request: &WebhookRequest<'_>,
    ) -> Result<Vec<InboundEvent>, Rejection> {
        let bot = Bot::of(tenant).map_err(Rejection::Unauthorized)?;
        let activity: Activity = serde_json::from_slice(request.body)
            .map_err(|e| Rejection::BadRequest(format!("not a Bot Framework activity: {e}")))?;
        self.authenticate(ctx, &bot, request, &activity)
            .await
            .map_err(|error| match error {
                // The keys could not be fetched: nothing says the token is
                // bad, and the Bot Framework retries a 503.
                AuthError::KeysUnreachable(_) => Rejection::Unavailable(error.to_string()),
                _ => Rejection::Unauthorized(error.to_string()),
            })?;
        self.check_channel(&activity)?;

        let store = &ctx.store;
        let conversation_id = activity.conversation.id.clone();
        let offered: Vec<QuickReply> = if activity.text.is_some() {
            load(store, &tenant.key, OFFERED_KIND, &conversation_id)
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(error = %error, "offered quick replies not read");
                    None
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let media_url = |reference: &str| ctx.media_url(tenant, reference);
        let inbound = inbound::from_activity(&activity, tenant, &offered, &media_url, Utc::now());
        for source in &inbound.media {
            save(
                store,
                &tenant.key,
                MEDIA_KIND,
                &source.media_ref,
                source,
                MEDIA_TTL,
            )
            .await;
        }
        if let Some(reference) = &inbound.conversation {
            save(
                store,
                &tenant.key,
                CONVERSATION_KIND,
                &conversation_id,
                reference,
                CONVERSATION_TTL,
            )
            .await;
        }
        let answered_offer = inbound.events.iter().any(|event| {
            matches!(&event.envelope.body, Body::ButtonResponse(r) if r.kind == ButtonKind::QuickReply)
        });
        if answered_offer
            && !offered.is_empty()
            && let Err(error) = store
                .delete(&tenant.key, OFFERED_KIND, &conversation_id)
                .await
        {
            tracing::warn!(error = %error, "answered quick replies not forgotten");
        }
        Ok(inbound.events)
    }

    async fn deliver(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        envelope: &Envelope,
    ) -> Result<Delivered, DeliveryError> {
        let bot = Bot::of(tenant)
            .map_err(|detail| DeliveryError::permanent(ReasonCode::GeneralError, detail))?;
        let conversation_id = &envelope.conversation.id;
        let conversation: ConversationRef =
            load(&ctx.store, &tenant.key, CONVERSATION_KIND, conversation_id)
                .await
                .map_err(DeliveryError::retry)?
                .ok_or_else(|| {
                    DeliveryError::permanent(
                        ReasonCode::InvalidDestination,
                        format!("no activity ever came from Teams conversation {conversation_id}"),
                    )
                })?;
        let outbound = to_teams(envelope, &conversation, &tenant.options)
            .map_err(|error| DeliveryError::permanent(error.reason(), error.to_string()))?;
        let token = client::access_token(ctx, &tenant.key, &bot).await?;
        let sent = client::send_activity(&ctx.http(), &conversation, &token, &outbound.activity)
            .await
            .map_err(|refused| refused.error);
        let id = match sent {
            Ok(id) => id,
            Err(error) => {
                if matches!(error, DeliveryError::Retry { after: None, .. }) {
                    // A 401 (or an outage): a retry must not reuse the token.
                    client::forget_token(ctx, &tenant.key, &bot).await;
                }
                return Err(error);
            }
        };
        if matches!(envelope.body, Body::Message(_)) {
            if outbound.offered.is_empty() {
                // Teams shows suggested actions of the latest message only.
                if let Err(error) = ctx
                    .store
                    .delete(&tenant.key, OFFERED_KIND, conversation_id)
                    .await
                {
                    tracing::warn!(error = %error, "stale quick replies not forgotten");
                }
            } else {
                save(
                    &ctx.store,
                    &tenant.key,
                    OFFERED_KIND,
                    conversation_id,
                    &outbound.offered,
                    OFFERED_TTL,
                )
                .await;
            }
        }
        Ok(Delivered {
            platform_message_id: id,
        })
    }

    /// Builds the tenant's app package and keeps it with its version in
    /// Redis ([`PACKAGE_KIND`]); the version moves only when the package's
    /// content (name, color, icons, bot) changed.
    async fn tenant_changed(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        _previous: Option<&TenantConfig>,
    ) -> Result<(), PlatformError> {
        let error = |step: &'static str, detail: String| PlatformError {
            step,
            tenant: tenant.key.clone(),
            detail,
        };
        let bot = Bot::of(tenant).map_err(|e| error("Teams bot", e))?;
        let settings = match &tenant.messaging {
            Some(um_config::MessagingConfig::Teams(teams)) => teams.app.clone(),
            _ => Default::default(),
        };
        let app = manifest::definition_for(
            &tenant.display_name,
            &bot.app_id,
            &settings,
            &tenant.webhook_url,
        )
        .map_err(|e| error("Teams app package", e.to_string()))?;
        let previous: Option<PackageState> = load(&ctx.store, &tenant.key, PACKAGE_KIND, "state")
            .await
            .map_err(|e| error("Teams app package state", e))?;
        let state = manifest::next_state(previous.as_ref(), &app);
        if previous.as_ref() != Some(&state) {
            use base64::Engine;
            let zip = manifest::package(&app, &state.version)
                .map_err(|e| error("Teams app package", e.to_string()))?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(zip);
            for (id, value) in [
                ("zip", encoded),
                ("state", serde_json::to_string(&state).unwrap_or_default()),
            ] {
                ctx.store
                    .set(&tenant.key, PACKAGE_KIND, id, &value, KEPT_TTL)
                    .await
                    .map_err(|e| error("Teams app package store", e.to_string()))?;
            }
        }
        tracing::info!(tenant = %tenant.key, version = %state.version, messaging_endpoint = %tenant.webhook_url,
            "Teams app package ready; register the messaging endpoint on the Azure Bot");
        Ok(())
    }

    fn extra_routes(&self, ctx: PlatformContext) -> Option<axum::Router> {
        use axum::routing::get;
        Some(
            axum::Router::new()
                .route("/teams/{tenant}/register", get(super::register::page))
                .route(
                    "/teams/{tenant}/app-package.zip",
                    get(super::register::package),
                )
                .with_state(ctx),
        )
    }

    async fn fetch_media(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        media_ref: &str,
    ) -> Result<Media, MediaError> {
        let source: MediaSource = load(&ctx.store, &tenant.key, MEDIA_KIND, media_ref)
            .await
            .map_err(MediaError::Upstream)?
            .ok_or_else(|| MediaError::NotFound(media_ref.to_owned()))?;
        let bot = Bot::of(tenant).map_err(|_| MediaError::NotFound(media_ref.to_owned()))?;
        // The URL came in an activity: judged before anything, the bot
        // token included, is sent to it.
        let rules = FetchRules {
            configured_base: bot.api_base_url.as_deref(),
            file_hosts: &[],
        };
        let mut request = ctx
            .http
            .outside()
            .get(&source.url, rules)
            .await
            .map_err(|refused| MediaError::Upstream(format!("media {media_ref}: {refused}")))?;
        if source.with_bot_token && client::same_origin(&source.url, &source.service_url) {
            let token = client::access_token(ctx, &tenant.key, &bot)
                .await
                .map_err(|e| MediaError::Upstream(e.to_string()))?;
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(|error| {
            MediaError::Upstream(fetch_failure(&format!("media {media_ref}"), &error))
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::FORBIDDEN {
            return Err(MediaError::NotFound(format!("{media_ref} (HTTP {status})")));
        }
        if !status.is_success() {
            return Err(MediaError::Upstream(format!(
                "media {media_ref}: HTTP {status}"
            )));
        }
        Ok(Media::from_response(response, Some(source.mime)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(channel: &str) -> Activity {
        Activity {
            kind: "message".into(),
            service_url: "https://smba.trafficmanager.net/amer/".into(),
            channel_id: channel.into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_teams_activities_unless_configured() {
        let teams = Teams::with_key_cache(KeyCache::new(Duration::ZERO));
        assert_eq!(teams.check_channel(&activity("msteams")), Ok(()));
        let refused = teams.check_channel(&activity("webchat")).unwrap_err();
        assert_eq!(refused.status(), http::StatusCode::FORBIDDEN);
        let text = refused.to_string();
        assert!(
            text.contains("\"webchat\"") && text.contains(CHANNELS_ENV),
            "{text}"
        );
        let both = teams.with_channels(channels_from(Some("msteams, webchat")));
        assert_eq!(both.check_channel(&activity("webchat")), Ok(()));
        assert!(both.check_channel(&activity("directline")).is_err());
    }

    #[test]
    fn channels_default_to_msteams() {
        assert_eq!(channels_from(None), ["msteams"]);
        assert_eq!(channels_from(Some(" , ")), ["msteams"]);
        assert_eq!(channels_from(Some("webchat")), ["webchat"]);
    }
}
