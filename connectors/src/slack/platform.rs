//! Slack as a [`MessagingPlatform`]: the I/O around the pure translations
//! of this module.

use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use chrono::Utc;
use um_config::{Platform, Secret, TenantConfig};

use super::client::SlackApi;
use super::inbound::{
    SlackRequest, Workspace, from_event, from_interaction, interaction_workspace, parse_media_ref,
    parse_request, split_conversation_id,
};
use super::outbound::{SlackCall, to_slack};
use super::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::tenant::{SlackTenant, bot_token, load_installation};
use super::types::EventCallback;
use crate::envelope::{Envelope, ReasonCode};
use crate::platform::{
    Delivered, DeliveryError, InboundEvent, Media, MediaError, MessagingPlatform, PlatformContext,
    Rejection, WebhookReply, WebhookRequest,
};

/// Store kind of the per-call markers of a multi-call delivery.
const SENT_PART: &str = "slack-sent-part";
/// Store kind of cached guest profiles (`users.info`), id `<team>/<user>`.
const USER_KIND: &str = "slack-user";
/// How long a cached profile is used before asking Slack again.
const USER_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Longest the webhook waits for `users.info` (Slack wants an answer in 3 s).
const USER_LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

#[derive(Debug, Default)]
pub struct Slack;

fn content_type<'a>(request: &'a WebhookRequest<'_>) -> Option<&'a str> {
    request.header(http::header::CONTENT_TYPE.as_str())
}

/// The workspace of an event: ids from the event, names from its install.
async fn event_workspace(
    ctx: &PlatformContext,
    tenant: &TenantConfig,
    callback: &EventCallback,
) -> Workspace {
    let enterprise_id = callback.enterprise_id.clone().or_else(|| {
        callback
            .authorizations
            .iter()
            .find_map(|a| a.enterprise_id.clone())
    });
    let installation = match load_installation(&ctx.store, &tenant.key, &callback.team_id).await {
        Ok(installation) => installation,
        Err(error) => {
            tracing::warn!(tenant = %tenant.key, error = %error, "Slack install not read; workspace name unknown");
            None
        }
    };
    Workspace {
        team_id: callback.team_id.clone(),
        team_name: installation.as_ref().and_then(|i| i.team_name.clone()),
        enterprise_id: enterprise_id
            .or_else(|| installation.as_ref().and_then(|i| i.enterprise_id.clone())),
        enterprise_name: installation.and_then(|i| i.enterprise_name),
    }
}

async fn token_for(
    ctx: &PlatformContext,
    tenant: &TenantConfig,
    team_id: &str,
) -> Result<Option<Secret>, String> {
    let Some(slack) = SlackTenant::of(tenant) else {
        return Ok(None);
    };
    bot_token(&ctx.store, tenant, &slack, team_id)
        .await
        .map(|found| found.map(|(token, _)| token))
        .map_err(|error| error.to_string())
}

/// The guest's names from `users.info` (cached per team and user), or
/// `None` when Slack cannot be asked: the envelope then keeps the user id.
async fn guest_profile(
    ctx: &PlatformContext,
    tenant: &TenantConfig,
    team_id: &str,
    user_id: &str,
) -> Option<super::inbound::Profile> {
    let cache_id = format!("{team_id}/{user_id}");
    if let Ok(Some(cached)) = ctx.store.get(&tenant.key, USER_KIND, &cache_id).await
        && let Ok(profile) = serde_json::from_str(&cached)
    {
        return Some(profile);
    }
    let slack = SlackTenant::of(tenant)?;
    let token = token_for(ctx, tenant, team_id).await.ok()??;
    let response = ctx
        .http()
        .get(format!("{}/api/users.info", slack.base_url))
        .query(&[("user", user_id)])
        .bearer_auth(token.expose())
        .timeout(USER_LOOKUP_TIMEOUT)
        .send()
        .await
        .ok()?;
    let answer = match super::client::read_answer("users.info", response).await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::info!(tenant = %tenant.key, error = %error, "guest profile not read");
            return None;
        }
    };
    let profile = super::inbound::profile_of(answer.rest.get("user")?)?;
    if let Ok(json) = serde_json::to_string(&profile)
        && let Err(error) = ctx
            .store
            .set(&tenant.key, USER_KIND, &cache_id, &json, Some(USER_TTL))
            .await
    {
        tracing::debug!(error = %error, "guest profile not cached");
    }
    Some(profile)
}

#[async_trait]
impl MessagingPlatform for Slack {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    fn verify(&self, tenant: &TenantConfig, request: &WebhookRequest<'_>) -> Result<(), Rejection> {
        let Some(secret) = SlackTenant::of(tenant).and_then(|slack| slack.signing_secret) else {
            return Err(Rejection::Unauthorized(format!(
                "tenant {} has no Slack signing secret configured",
                tenant.key
            )));
        };
        signature::verify(
            secret.expose(),
            request.header(TIMESTAMP_HEADER),
            request.header(SIGNATURE_HEADER),
            request.body,
            Utc::now(),
        )
        .map_err(|error| Rejection::Unauthorized(error.to_string()))
    }

    fn handshake(
        &self,
        _tenant: &TenantConfig,
        request: &WebhookRequest<'_>,
    ) -> Option<WebhookReply> {
        match parse_request(content_type(request), request.body) {
            Ok(SlackRequest::UrlVerification { challenge }) => Some(WebhookReply::text(challenge)),
            _ => None,
        }
    }

    async fn parse_webhook(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        request: &WebhookRequest<'_>,
    ) -> Result<Vec<InboundEvent>, Rejection> {
        let parsed = parse_request(content_type(request), request.body)
            .map_err(|error| Rejection::BadRequest(error.to_string()))?;
        if let Some(retry) = request.header("x-slack-retry-num") {
            tracing::debug!(
                retry,
                reason = request.header("x-slack-retry-reason").unwrap_or(""),
                "Slack redelivery"
            );
        }
        let now = Utc::now();
        match parsed {
            SlackRequest::Event(callback) => {
                let workspace = event_workspace(ctx, tenant, &callback).await;
                let own_app = SlackTenant::of(tenant).and_then(|slack| slack.app_id);
                let media_url = |reference: &str| ctx.media_url(tenant, reference);
                let mut event = from_event(&callback, tenant, &workspace, own_app, now, &media_url)
                    .map_err(|error| Rejection::BadRequest(error.to_string()))?;
                if let Some(event) = event.as_mut() {
                    let guest = &mut event.envelope.conversation.guest;
                    if let Some(profile) =
                        guest_profile(ctx, tenant, &workspace.team_id, &guest.id).await
                    {
                        profile.apply(guest);
                    }
                }
                Ok(event.into_iter().collect())
            }
            SlackRequest::Interaction(payload) => {
                let Some(workspace) = interaction_workspace(&payload) else {
                    return Err(Rejection::BadRequest(
                        "interaction payload without team".to_owned(),
                    ));
                };
                Ok(from_interaction(&payload, tenant, &workspace, now))
            }
            SlackRequest::UrlVerification { .. } => Ok(Vec::new()),
            SlackRequest::Ignored(what) => {
                tracing::info!(tenant = %tenant.key, what, "Slack request not relayed");
                Ok(Vec::new())
            }
        }
    }

    fn accepted_reply(&self) -> WebhookReply {
        // Interactivity wants an empty 200; the Events API reads no body.
        WebhookReply::text("")
    }

    async fn deliver(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        envelope: &Envelope,
    ) -> Result<Delivered, DeliveryError> {
        let Some((team, channel)) = split_conversation_id(&envelope.conversation.id) else {
            return Err(DeliveryError::permanent(
                ReasonCode::InvalidDestination,
                format!(
                    "{:?} is not a Slack conversation (team:channel)",
                    envelope.conversation.id
                ),
            ));
        };
        let Some(slack) = SlackTenant::of(tenant) else {
            return Err(DeliveryError::permanent(
                ReasonCode::GeneralError,
                format!("tenant {} has no Slack settings", tenant.key),
            ));
        };
        let calls = to_slack(envelope, channel, &tenant.options)
            .map_err(|refused| DeliveryError::permanent(refused.reason, refused.to_string()))?;
        if calls.is_empty() {
            return Ok(Delivered::default());
        }
        let token = token_for(ctx, tenant, team)
            .await
            .map_err(DeliveryError::retry)?
            .ok_or_else(|| {
                DeliveryError::permanent(
                    ReasonCode::GeneralError,
                    format!("no bot token for workspace {team}: install the app there"),
                )
            })?;
        let http = ctx.http();
        let api = SlackApi {
            http: &http,
            base_url: &slack.base_url,
            token: &token,
        };
        let several = calls.len() > 1;
        let mut last_id = None;
        for (index, call) in calls.iter().enumerate() {
            // A retry after a partial success must not repeat what went through.
            let part = format!("{}#{index}", envelope.id);
            if several
                && ctx
                    .store
                    .get(&tenant.key, SENT_PART, &part)
                    .await
                    .map_err(|e| DeliveryError::retry(e.to_string()))?
                    .is_some()
            {
                continue;
            }
            last_id = Some(match call {
                SlackCall::PostMessage(body) => {
                    let answer = api.call_json("chat.postMessage", body).await?;
                    answer
                        .rest
                        .get("ts")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                }
                SlackCall::UploadFile {
                    channel,
                    url,
                    filename,
                    title,
                    ..
                } => {
                    let response = http.get(url).send().await.map_err(|error| {
                        crate::http_client::transport_error("attachment download", &error)
                    })?;
                    crate::http_client::classify_response(
                        response.status(),
                        response.headers(),
                        "attachment download",
                    )?;
                    let bytes = response.bytes().await.map_err(|error| {
                        crate::http_client::transport_error("attachment download", &error)
                    })?;
                    api.upload_file(channel, filename, title.as_deref(), bytes)
                        .await?
                }
            });
            if several
                && let Err(error) = ctx
                    .store
                    .set(
                        &tenant.key,
                        SENT_PART,
                        &part,
                        "1",
                        Some(crate::store::DEFAULT_DONE_TTL),
                    )
                    .await
            {
                tracing::warn!(error = %error, "sent-part marker not written");
            }
        }
        Ok(Delivered {
            platform_message_id: last_id.filter(|id| !id.is_empty()),
        })
    }

    async fn fetch_media(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        media_ref: &str,
    ) -> Result<Media, MediaError> {
        let Some((team, url)) = parse_media_ref(media_ref) else {
            return Err(MediaError::NotFound(media_ref.to_owned()));
        };
        let token = token_for(ctx, tenant, &team)
            .await
            .map_err(MediaError::Upstream)?
            .ok_or_else(|| MediaError::NotFound(format!("no bot token for workspace {team}")))?;
        let response = ctx
            .http()
            .get(&url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|error| {
                MediaError::Upstream(
                    crate::http_client::transport_error("file download", &error).to_string(),
                )
            })?;
        match response.status().as_u16() {
            200..=299 => Ok(Media::from_response(response, None)),
            404 | 410 => Err(MediaError::NotFound(format!(
                "Slack file of workspace {team}"
            ))),
            status => Err(MediaError::Upstream(format!(
                "Slack file download: HTTP {status}"
            ))),
        }
    }

    fn extra_routes(&self, ctx: PlatformContext) -> Option<Router> {
        Some(
            Router::new()
                .route("/slack/register", get(super::manifest::register))
                .route(
                    "/slack/{tenant}/manifest",
                    get(super::manifest::manifest_route),
                )
                .route("/slack/{tenant}/install", get(super::install::install))
                .route(
                    "/slack/{tenant}/oauth/callback",
                    get(super::install::callback),
                )
                .with_state(ctx),
        )
    }
}
