//! Runs one messaging platform generically: its webhook and media routes,
//! its outbound consumer, and its reaction to tenant changes. See
//! [`crate::platform`] for the contract.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use um_config::TenantConfig;

use crate::machinery::bus::{EnvelopeHandler, HandlerError, Publisher, Route};
use crate::machinery::config_watch::{TenantChange, diff_tenants};
use crate::machinery::envelope::{Body, Direction, Envelope, ReasonCode, Receipt, ReceiptStatus};
use crate::machinery::media::MediaUrlError;
use crate::machinery::runtime::Runtime;
use crate::machinery::server::{ApiError, read_body, tenant_or_404};
use crate::machinery::store::{Claim, DEFAULT_CLAIM_TTL, DEFAULT_DEDUP_TTL, Store};
use crate::platform::{
    DeliveryError, InboundEvent, MediaError, MessagingPlatform, PlatformContext, Rejection,
    WebhookReply, WebhookRequest,
};

/// What the webhook and media routes share.
#[derive(Clone)]
pub struct WebhookState {
    pub platform: Arc<dyn MessagingPlatform>,
    pub ctx: PlatformContext,
    pub publisher: Publisher,
}

impl WebhookState {
    pub fn new(runtime: &Runtime, platform: Arc<dyn MessagingPlatform>) -> Self {
        Self {
            platform,
            ctx: runtime.platform_context(),
            // A platform waits for our answer: give up sooner than the
            // consumers do, so it hears 503 and redelivers.
            publisher: runtime
                .publisher
                .clone()
                .with_timeout(WEBHOOK_PUBLISH_TIMEOUT),
        }
    }
}

/// Longest a webhook waits for the bus before answering 503.
pub const WEBHOOK_PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// `POST|GET /<platform>/{tenant}` and `GET /<platform>/{tenant}/media/{*ref}`.
pub fn platform_routes(state: WebhookState) -> Router {
    let base = format!("/{}", state.platform.platform().as_str());
    Router::new()
        .route(&format!("{base}/{{tenant}}"), get(webhook).post(webhook))
        .route(
            &format!("{base}/{{tenant}}/media/{{*media_ref}}"),
            get(media),
        )
        .with_state(state)
}

fn rejection(rejection: Rejection) -> ApiError {
    if let Rejection::Unavailable(_) = rejection {
        return ApiError::unavailable(rejection.to_string());
    }
    ApiError::new(rejection.status(), rejection.code(), rejection.to_string())
}

fn reply_response(reply: WebhookReply) -> Response {
    (
        reply.status,
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}

async fn webhook(
    State(state): State<WebhookState>,
    Path(tenant_key): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let started = Instant::now();
    let metrics = state.ctx.metrics.clone();
    metrics.webhook_received();
    let span = tracing::info_span!("request", tenant = %tenant_key, method = %method);
    let result = handle_webhook(
        &state,
        &tenant_key,
        &method,
        query.as_deref(),
        &headers,
        body,
    )
    .instrument(span.clone())
    .await;
    let response = match result {
        Ok(reply) => reply_response(reply),
        Err(error) => {
            metrics.webhook_rejected(error.code);
            span.in_scope(|| {
                if error.status.is_server_error() {
                    tracing::warn!(status = error.status.as_u16(), error = %error.message, "webhook not accepted");
                } else {
                    tracing::info!(status = error.status.as_u16(), error = %error.message, "webhook refused");
                }
            });
            error.into_response()
        }
    };
    metrics.webhook_duration(response.status().as_u16(), started.elapsed());
    response
}

async fn handle_webhook(
    state: &WebhookState,
    tenant_key: &str,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<WebhookReply, ApiError> {
    let platform = state.platform.platform();
    let tenant = tenant_or_404(&state.ctx.config, tenant_key)?;
    if tenant.platform != platform {
        return Err(ApiError::not_found(format!(
            "no {platform} tenant {tenant_key:?}"
        )));
    }
    let body = read_body(headers, body, state.platform.body_limit()).await?;
    let request = WebhookRequest {
        method,
        headers,
        query,
        body: &body,
    };
    state
        .platform
        .verify(&tenant, &request)
        .map_err(rejection)?;
    if let Some(reply) = state.platform.handshake(&tenant, &request) {
        return Ok(reply);
    }
    if method != Method::POST {
        return Err(ApiError::not_found("only POST carries events"));
    }
    let events = state
        .platform
        .parse_webhook(&state.ctx, &tenant, &request)
        .await
        .map_err(rejection)?;
    accept_events(&state.ctx.store, &state.publisher, &tenant, events).await?;
    Ok(state.platform.accepted_reply())
}

/// Publishes every event (de-duplicated by its key), each confirmed by the
/// broker before this returns `Ok`. Events of one conversation are
/// published in their order; different conversations concurrently.
pub async fn accept_events(
    store: &Store,
    publisher: &Publisher,
    tenant: &TenantConfig,
    events: Vec<InboundEvent>,
) -> Result<(), ApiError> {
    let mut by_conversation: Vec<(String, Vec<InboundEvent>)> = Vec::new();
    for mut event in events {
        // The path named the tenant: the envelope cannot say otherwise.
        event.envelope.tenant = tenant.key.clone();
        event.envelope.platform = tenant.platform;
        let key = event.envelope.ordering_key();
        match by_conversation.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(event),
            None => by_conversation.push((key, vec![event])),
        }
    }
    let results =
        futures::future::join_all(by_conversation.into_iter().map(|(_, events)| async move {
            for event in events {
                accept_event(store, publisher, tenant, event).await?;
            }
            Ok::<(), ApiError>(())
        }))
        .await;
    results.into_iter().collect()
}

async fn accept_event(
    store: &Store,
    publisher: &Publisher,
    tenant: &TenantConfig,
    event: InboundEvent,
) -> Result<(), ApiError> {
    let Some(dedup_key) = event.dedup_key else {
        return publish_inbound(publisher, &event.envelope).await;
    };
    let claim = store
        .claim_event(&tenant.key, &dedup_key, DEFAULT_CLAIM_TTL)
        .await
        .map_err(|error| {
            ApiError::unavailable(format!("de-duplication store unavailable: {error}"))
        })?;
    match claim {
        Claim::Duplicate => {
            tracing::debug!(event = %dedup_key, "redelivery of an accepted event, not published again");
            publisher.bus().metrics().webhook_duplicate();
            Ok(())
        }
        Claim::InProgress => Err(ApiError::unavailable(format!(
            "event {dedup_key} is being accepted by another request"
        ))),
        Claim::Claimed(token) => match publish_inbound(publisher, &event.envelope).await {
            Ok(()) => {
                if let Err(error) = store
                    .confirm_event(&tenant.key, &dedup_key, DEFAULT_DEDUP_TTL)
                    .await
                {
                    // Published all the same. A redelivery is then published
                    // again; with an envelope id derived from the event
                    // ([`crate::platform::event_envelope_id`]) the consumer's
                    // done marker absorbs it.
                    tracing::warn!(event = %dedup_key, error = %error, "event published but not remembered");
                }
                Ok(())
            }
            Err(error) => {
                if let Err(release_error) =
                    store.release_event(&tenant.key, &dedup_key, &token).await
                {
                    tracing::warn!(event = %dedup_key, error = %release_error, "claim not released; it expires by itself");
                }
                Err(error)
            }
        },
    }
}

/// 503 unless the broker confirmed: a full shard queue (`queue_full`) or an
/// unreachable broker, either way the platform keeps the event and
/// redelivers it, and its de-duplication claim is released for that.
async fn publish_inbound(publisher: &Publisher, envelope: &Envelope) -> Result<(), ApiError> {
    publisher
        .to_cx(envelope)
        .await
        .map_err(|error| ApiError::not_published(&error))
}

#[derive(Deserialize)]
struct MediaQuery {
    exp: Option<i64>,
    sig: Option<String>,
}

async fn media(
    State(state): State<WebhookState>,
    Path((tenant_key, media_ref)): Path<(String, String)>,
    Query(query): Query<MediaQuery>,
) -> Response {
    match serve_media(&state, &tenant_key, &media_ref, query).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve_media(
    state: &WebhookState,
    tenant_key: &str,
    media_ref: &str,
    query: MediaQuery,
) -> Result<Response, ApiError> {
    let tenant = tenant_or_404(&state.ctx.config, tenant_key)?;
    let (Some(exp), Some(sig)) = (query.exp, query.sig) else {
        return Err(ApiError::unauthorized(
            "media URL is not signed (exp and sig required)",
        ));
    };
    state
        .ctx
        .media
        .verify(&tenant, media_ref, exp, &sig, Utc::now())
        .map_err(|error| match error {
            MediaUrlError::Expired => ApiError::new(StatusCode::GONE, "expired", error.to_string()),
            MediaUrlError::BadSignature => ApiError::unauthorized(error.to_string()),
        })?;
    let media = state
        .platform
        .fetch_media(&state.ctx, &tenant, media_ref)
        .await
        .map_err(|error| match error {
            MediaError::NotFound(_) => ApiError::not_found(error.to_string()),
            MediaError::Upstream(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "upstream", error.to_string())
            }
        })?;
    let mut response = axum::body::Body::from_stream(media.body).into_response();
    crate::machinery::media::safe_headers(response.headers_mut(), &media.mime);
    if let Some(length) = media.length {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, length.into());
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, max-age=300"),
    );
    Ok(response)
}

/// The receipt that tells the contact center what became of `envelope`,
/// or `None` for envelopes that get no receipt (typing, receipts). Its id is
/// derived from the envelope's, so a re-published receipt is recognised.
pub fn receipt_for(
    envelope: &Envelope,
    status: ReceiptStatus,
    reason: Option<ReasonCode>,
    detail: Option<String>,
) -> Option<Envelope> {
    if matches!(envelope.body, Body::Typing { .. } | Body::Receipt(_)) {
        return None;
    }
    Some(Envelope {
        v: envelope.v,
        id: format!("{}.receipt", envelope.id),
        tenant: envelope.tenant.clone(),
        platform: envelope.platform,
        direction: Direction::GuestToAgent,
        time: Utc::now(),
        conversation: envelope.conversation.clone(),
        body: Body::Receipt(Receipt {
            message_id: envelope
                .origin_id
                .clone()
                .unwrap_or_else(|| envelope.id.clone()),
            status,
            reason,
            detail,
        }),
        custom_data: Default::default(),
        origin_id: None,
        traceparent: envelope.traceparent.clone(),
    })
}

/// Delivers agent → guest envelopes through the platform, then reports
/// receipts towards gcloudcx.
pub struct DeliveryHandler {
    pub platform: Arc<dyn MessagingPlatform>,
    pub ctx: PlatformContext,
    pub publisher: Publisher,
}

/// Marks an envelope as sent to the platform, so that a later attempt (the
/// receipt publish failed, or a crash) does not send it again.
const SENT_KIND: &str = "sent";

impl DeliveryHandler {
    async fn publish_receipt(&self, receipt: Option<Envelope>) -> Result<(), HandlerError> {
        match receipt {
            Some(receipt) => self
                .publisher
                .to_cx(&receipt)
                .await
                .map_err(|error| HandlerError::retry(format!("receipt not published: {error}"))),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl EnvelopeHandler for DeliveryHandler {
    async fn handle(&self, envelope: &Envelope, attempt: u32) -> Result<(), HandlerError> {
        let Some(tenant) = self.ctx.config.tenant(&envelope.tenant) else {
            return Err(HandlerError::tenant_unknown(&envelope.tenant));
        };
        let store = &self.ctx.store;
        let already_sent = attempt > 1
            && store
                .get(&tenant.key, SENT_KIND, &envelope.id)
                .await
                .map_err(|error| HandlerError::retry(error.to_string()))?
                .is_some();
        if !already_sent {
            let started = Instant::now();
            let result = self.platform.deliver(&self.ctx, &tenant, envelope).await;
            match result {
                Ok(_delivered) => {
                    self.ctx.metrics.delivery("delivered", started.elapsed());
                    if let Err(error) = store
                        .set(
                            &tenant.key,
                            SENT_KIND,
                            &envelope.id,
                            "1",
                            crate::machinery::store::DEFAULT_DONE_TTL,
                        )
                        .await
                    {
                        tracing::warn!(error = %error, "sent marker not written");
                    }
                }
                Err(DeliveryError::Retry { after, detail }) => {
                    self.ctx.metrics.delivery("retry", started.elapsed());
                    return Err(HandlerError::Retry { after, detail });
                }
                Err(DeliveryError::Permanent { reason, detail }) => {
                    self.ctx.metrics.delivery("failed", started.elapsed());
                    return Err(HandlerError::Permanent {
                        reason: Some(reason),
                        detail,
                    });
                }
            }
        }
        self.publish_receipt(receipt_for(envelope, ReceiptStatus::Delivered, None, None))
            .await
    }

    async fn given_up(
        &self,
        envelope: &Envelope,
        error: &HandlerError,
    ) -> Result<(), HandlerError> {
        let (reason, detail) = match error {
            HandlerError::Permanent { reason, detail } => {
                (reason.unwrap_or(ReasonCode::GeneralError), detail.clone())
            }
            HandlerError::Retry { detail, .. } => (ReasonCode::ServerError, detail.clone()),
        };
        self.publish_receipt(receipt_for(
            envelope,
            ReceiptStatus::Failed,
            Some(reason),
            Some(detail),
        ))
        .await
    }
}

/// Calls `tenant_changed` for every tenant at start and for every tenant
/// added or changed later; failures are retried every `retry_every`.
pub async fn watch_tenants(
    platform: Arc<dyn MessagingPlatform>,
    ctx: PlatformContext,
    retry_every: Duration,
    shutdown: CancellationToken,
) {
    let mut changes = ctx.config.subscribe();
    let mut current = changes.borrow_and_update().clone();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let initial: Vec<TenantConfig> = current.tenants.values().cloned().collect();
    for tenant in initial {
        notify_tenant(&*platform, &ctx, &tenant, None, &mut failed).await;
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() { return; }
                let next = changes.borrow_and_update().clone();
                for change in diff_tenants(&current, &next) {
                    match change {
                        TenantChange::Added(tenant) => notify_tenant(&*platform, &ctx, &tenant, None, &mut failed).await,
                        TenantChange::Changed { previous, current } => {
                            notify_tenant(&*platform, &ctx, &current, Some(&previous), &mut failed).await
                        }
                        TenantChange::Removed(tenant) => {
                            failed.remove(&tenant.key);
                            tracing::info!(tenant = %tenant.key, "tenant removed");
                        }
                    }
                }
                current = next;
            }
            _ = tokio::time::sleep(retry_every), if !failed.is_empty() => {
                let retry: Vec<String> = std::mem::take(&mut failed).into_iter().collect();
                for key in retry {
                    if let Some(tenant) = current.tenants.get(&key).cloned() {
                        notify_tenant(&*platform, &ctx, &tenant, None, &mut failed).await;
                    }
                }
            }
        }
    }
}

async fn notify_tenant(
    platform: &dyn MessagingPlatform,
    ctx: &PlatformContext,
    tenant: &TenantConfig,
    previous: Option<&TenantConfig>,
    failed: &mut BTreeSet<String>,
) {
    match platform.tenant_changed(ctx, tenant, previous).await {
        Ok(()) => {
            failed.remove(&tenant.key);
            tracing::info!(tenant = %tenant.key, "tenant set up");
        }
        Err(error) => {
            failed.insert(tenant.key.clone());
            tracing::error!(tenant = %tenant.key, error = %error, "tenant set-up failed, will retry");
        }
    }
}

/// Runs a platform service until `runtime.shutdown`: HTTP server, outbound
/// consumer, tenant watcher.
pub async fn run_platform(
    runtime: Runtime,
    platform: Arc<dyn MessagingPlatform>,
) -> anyhow::Result<()> {
    let shutdown = runtime.shutdown.clone();
    let ctx = runtime.platform_context();
    let mut routes = platform_routes(WebhookState::new(&runtime, platform.clone()));
    if let Some(extra) = platform.extra_routes(ctx.clone()) {
        routes = routes.merge(extra);
    }
    let (bound, server) = runtime
        .server()
        .with_max_inflight(runtime.settings.max_inflight_requests)
        .merge(routes)
        .serve(runtime.settings.listen, shutdown.clone())
        .await?;
    tracing::info!(address = %bound, platform = %platform.platform(), "listening");

    let handler = Arc::new(DeliveryHandler {
        platform: platform.clone(),
        ctx: ctx.clone(),
        publisher: runtime.publisher.clone(),
    });
    let consumer = runtime.consumer(Route::ToGuest(platform.platform()));
    let consuming = tokio::spawn(consumer.run(handler, shutdown.clone()));
    let watching = tokio::spawn(watch_tenants(
        platform,
        ctx,
        Duration::from_secs(30),
        shutdown.clone(),
    ));

    let served = server.await;
    shutdown.cancel();
    let _ = consuming.await;
    let _ = watching.await;
    runtime.bus.close().await;
    served??;
    Ok(())
}
