//! Slack as a [`MessagingPlatform`]: the I/O around the pure translations
//! of this module.

use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use chrono::Utc;
use um_config::{Platform, TenantConfig};

use super::client::SlackApi;
use super::files::{self, FileRefusal};
use super::inbound::{
    Lifecycle, SlackRequest, Workspace, from_event, from_interaction, interaction_thread,
    interaction_workspace, lifecycle_of, parse_media_ref, parse_request, split_conversation_id,
};
use super::outbound::{Destination, FileUpload, SlackCall, to_slack};
use super::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::tenant::{
    Removal, SlackTenant, WorkspaceToken, bot_token, load_installation, remove_installation,
};
use super::types::EventCallback;
use crate::machinery::envelope::{Envelope, ReasonCode};
use crate::machinery::http_client::{OutsideClient, fetch_failure};
use crate::machinery::parts::send_parts;
use crate::machinery::url_policy::FetchRules;
use crate::platform::{
    Delivered, DeliveryError, InboundEvent, Media, MediaError, MessagingPlatform, PlatformContext,
    Rejection, WebhookReply, WebhookRequest,
};

/// Store kind of the per-call markers of a delivery ([`send_parts`]).
const SENT_PART: &str = "slack-sent-part";
/// Store kind of cached guest profiles (`users.info`), id `<team>/<user>`.
const USER_KIND: &str = "slack-user";
/// How long a cached profile is used before asking Slack again.
const USER_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Longest the webhook waits for `users.info` (Slack wants an answer in 3 s).
const USER_LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);
/// Store kind of the thread a conversation's guest last wrote in (id: the
/// conversation id, value: the thread's parent `ts`).
const THREAD_KIND: &str = "slack-thread";
/// How long a conversation remembers its thread without a guest message.
const THREAD_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// Where Slack keeps files (`url_private`, `url_private_download`): the bot
/// token goes there and nowhere else (but to a configured base URL).
pub const FILE_HOSTS: &[&str] = &["https://files.slack.com"];

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
) -> Result<WorkspaceToken, String> {
    let Some(slack) = SlackTenant::of(tenant) else {
        return Ok(WorkspaceToken::None);
    };
    bot_token(&ctx.store, tenant, &slack, team_id)
        .await
        .map_err(|error| error.to_string())
}

/// Remembers where the guest wrote: in a thread (agent replies follow it
/// there) or in the channel itself (they stop following).
async fn remember_thread(
    ctx: &PlatformContext,
    tenant: &TenantConfig,
    conversation_id: &str,
    thread_ts: Option<&str>,
) -> Result<(), Rejection> {
    let result = match thread_ts {
        Some(thread_ts) => {
            ctx.store
                .set(
                    &tenant.key,
                    THREAD_KIND,
                    conversation_id,
                    thread_ts,
                    THREAD_TTL,
                )
                .await
        }
        None => {
            ctx.store
                .delete(&tenant.key, THREAD_KIND, conversation_id)
                .await
        }
    };
    result.map_err(|error| {
        Rejection::Unavailable(format!("thread of the conversation not stored: {error}"))
    })
}

/// The app left a workspace: its install goes, deliveries there fail with
/// the reason from now on. Logged without any token.
async fn forget_workspace(
    ctx: &PlatformContext,
    tenant: &TenantConfig,
    callback: &EventCallback,
    lifecycle: Lifecycle,
) -> Result<(), Rejection> {
    let Some(slack) = SlackTenant::of(tenant) else {
        return Ok(());
    };
    let at = callback
        .event_time
        .unwrap_or_else(|| Utc::now().timestamp());
    let removal = remove_installation(
        &ctx.store,
        tenant,
        &slack,
        &callback.team_id,
        lifecycle.event_type(),
        at,
    )
    .await
    .map_err(|error| {
        Rejection::Unavailable(format!(
            "{} of workspace {} not recorded: {error}",
            lifecycle.event_type(),
            callback.team_id
        ))
    })?;
    match removal {
        Removal::Removed { had_install } => tracing::info!(
            tenant = %tenant.key,
            team = %callback.team_id,
            event = lifecycle.event_type(),
            had_install,
            "Slack app left a workspace: its bot token is forgotten, agent messages there fail"
        ),
        Removal::Stale => tracing::info!(
            tenant = %tenant.key,
            team = %callback.team_id,
            event = lifecycle.event_type(),
            "Slack uninstall event older than the workspace's current install: ignored"
        ),
    }
    Ok(())
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
    let WorkspaceToken::Token(token, _) = token_for(ctx, tenant, team_id).await.ok()? else {
        return None;
    };
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
            .set(&tenant.key, USER_KIND, &cache_id, &json, USER_TTL)
            .await
    {
        tracing::debug!(error = %error, "guest profile not cached");
    }
    Some(profile)
}

async fn post_message(
    api: &SlackApi<'_>,
    body: &serde_json::Value,
) -> Result<String, DeliveryError> {
    let answer = api.call_json("chat.postMessage", body).await?;
    Ok(answer
        .rest
        .get("ts")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned())
}

/// Streams an agent's attachment from its URL into Slack's upload, never
/// held whole ([`files::stream_upload`]). When the install may not upload
/// (no `files:write`), an image is posted as an image block by URL
/// instead; other files fail with that reason.
async fn upload_attachment(
    outside: &OutsideClient,
    api: &SlackApi<'_>,
    team: &str,
    upload: &FileUpload,
) -> Result<String, DeliveryError> {
    let limit = files::max_file_bytes();
    files::check_size(&upload.filename, upload.size_bytes, limit)
        .map_err(FileRefusal::into_delivery_error)?;
    // The attachment's URL came from Genesys: judged before it is fetched.
    let http = outside
        .client_for(&upload.url, FetchRules::default())
        .await
        .map_err(|refused| {
            DeliveryError::permanent(
                ReasonCode::MessageNotAllowed,
                format!("download of {}: {refused}", upload.filename),
            )
        })?;
    let source = files::open_attachment(
        &http,
        &upload.url,
        &upload.filename,
        upload.size_bytes,
        limit,
    )
    .await?;
    match files::stream_upload(api, upload, source).await {
        Ok(file_id) => Ok(file_id),
        Err(error) if error.is_not_permitted() => match &upload.fallback {
            Some(image_message) => {
                tracing::warn!(
                    team,
                    file = %upload.filename,
                    "the app may not upload files in this workspace (files:write missing): image posted by URL instead"
                );
                post_message(api, image_message).await
            }
            None => Err(DeliveryError::permanent(
                ReasonCode::MessageNotAllowed,
                format!(
                    "{} not sent: the app's install in workspace {team} may not upload files \
                     ({}); add the files:write scope and install the app again",
                    upload.filename, error.outcome
                ),
            )),
        },
        Err(error) => Err(error.into()),
    }
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
                if let Some(lifecycle) = lifecycle_of(&callback) {
                    forget_workspace(ctx, tenant, &callback, lifecycle).await?;
                    return Ok(Vec::new());
                }
                let workspace = event_workspace(ctx, tenant, &callback).await;
                let own_app = SlackTenant::of(tenant).and_then(|slack| slack.app_id);
                let media_url = |reference: &str| ctx.media_url(tenant, reference);
                let Some(message) =
                    from_event(&callback, tenant, &workspace, own_app, now, &media_url)
                        .map_err(|error| Rejection::BadRequest(error.to_string()))?
                else {
                    return Ok(Vec::new());
                };
                let mut event = message.event;
                remember_thread(
                    ctx,
                    tenant,
                    &event.envelope.conversation.id,
                    message.thread_ts.as_deref(),
                )
                .await?;
                let guest = &mut event.envelope.conversation.guest;
                if let Some(profile) =
                    guest_profile(ctx, tenant, &workspace.team_id, &guest.id).await
                {
                    profile.apply(guest);
                }
                Ok(vec![event])
            }
            SlackRequest::Interaction(payload) => {
                let Some(workspace) = interaction_workspace(&payload) else {
                    return Err(Rejection::BadRequest(
                        "interaction payload without team".to_owned(),
                    ));
                };
                let events = from_interaction(&payload, tenant, &workspace, now);
                if let Some(first) = events.first() {
                    // The tap answers a message in a thread or in the
                    // channel: replies go to the same place.
                    remember_thread(
                        ctx,
                        tenant,
                        &first.envelope.conversation.id,
                        interaction_thread(&payload).as_deref(),
                    )
                    .await?;
                }
                Ok(events)
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
        let thread_ts = ctx
            .store
            .get(&tenant.key, THREAD_KIND, &envelope.conversation.id)
            .await
            .map_err(|error| DeliveryError::retry(format!("thread lookup: {error}")))?;
        let destination = Destination {
            channel,
            thread_ts: thread_ts.as_deref(),
        };
        let calls = to_slack(envelope, destination, &tenant.options)
            .map_err(|refused| DeliveryError::permanent(refused.reason, refused.to_string()))?;
        if calls.is_empty() {
            return Ok(Delivered::default());
        }
        let token = match token_for(ctx, tenant, team)
            .await
            .map_err(DeliveryError::retry)?
        {
            WorkspaceToken::Token(token, _) => token,
            WorkspaceToken::Uninstalled(note) => {
                return Err(DeliveryError::permanent(
                    ReasonCode::MessageNotAllowed,
                    note.describe(team),
                ));
            }
            WorkspaceToken::None => {
                return Err(DeliveryError::permanent(
                    ReasonCode::GeneralError,
                    format!("no bot token for workspace {team}: install the app there"),
                ));
            }
        };
        let http = ctx.http();
        let api = SlackApi {
            http: &http,
            base_url: &slack.base_url,
            token: &token,
        };
        let outside = ctx.http.outside();
        let (outside, api) = (&outside, &api);
        let last_id = send_parts(
            &ctx.store,
            &tenant.key,
            SENT_PART,
            &envelope.id,
            &calls,
            |_, call| async move {
                let id = match call {
                    SlackCall::PostMessage(body) => post_message(api, body).await?,
                    SlackCall::UploadFile(upload) => {
                        upload_attachment(outside, api, team, upload).await?
                    }
                };
                Ok(Some(id).filter(|id| !id.is_empty()))
            },
        )
        .await?;
        Ok(Delivered {
            platform_message_id: last_id,
        })
    }

    async fn fetch_media(
        &self,
        ctx: &PlatformContext,
        tenant: &TenantConfig,
        media_ref: &str,
    ) -> Result<Media, MediaError> {
        let Some(file) = parse_media_ref(media_ref) else {
            return Err(MediaError::NotFound(media_ref.to_owned()));
        };
        let slack =
            SlackTenant::of(tenant).ok_or_else(|| MediaError::NotFound(media_ref.to_owned()))?;
        // Judged before the bot token is even looked up.
        let rules = FetchRules {
            configured_base: slack.configured_base(),
            file_hosts: FILE_HOSTS,
        };
        let http = ctx
            .http
            .outside()
            .client_for(&file.url, rules)
            .await
            .map_err(|refused| MediaError::Upstream(format!("Slack file: {refused}")))?;
        let team = &file.team_id;
        let token = match token_for(ctx, tenant, team)
            .await
            .map_err(MediaError::Upstream)?
        {
            WorkspaceToken::Token(token, _) => token,
            WorkspaceToken::Uninstalled(note) => {
                return Err(MediaError::NotFound(note.describe(team)));
            }
            WorkspaceToken::None => {
                return Err(MediaError::NotFound(format!(
                    "no bot token for workspace {team}"
                )));
            }
        };
        let what = format!("a Slack file of workspace {team}");
        let response = http
            .get(&file.url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|error| MediaError::Upstream(fetch_failure("file download", &error)))?;
        match response.status().as_u16() {
            200..=299 => {
                let content_type = response
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                let limit = files::max_file_bytes();
                if let Err(refusal) = files::check_private_file(
                    &what,
                    content_type,
                    file.mime.as_deref(),
                    response.content_length(),
                    limit,
                ) {
                    if matches!(refusal, FileRefusal::SignInPage { .. }) {
                        tracing::warn!(tenant = %tenant.key, team = %team, "Slack served its sign-in page instead of a guest's file");
                    }
                    return Err(MediaError::Upstream(refusal.to_string()));
                }
                let mut media = Media::from_response(response, None);
                media.body = files::capped(media.body, what, limit);
                Ok(media)
            }
            404 | 410 => Err(MediaError::NotFound(what)),
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
