//! `POST /openmessaging/{tenant}`: Genesys' outbound webhook.
//!
//! 404 for an unknown tenant, 413 over the body limit, 401 when
//! `X-Hub-Signature-256` does not verify with this tenant's token, 400 for
//! a body that is not an Open Messaging message; otherwise 200 once the
//! envelope is confirmed by the broker. Anything that later fails to reach
//! the guest becomes a Failed receipt instead of an error answer here,
//! because a non-2xx disrupts the conversation on the Genesys side.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use serde_json::json;

use super::api::OutboundMessage;
use super::from_genesys::{FromGenesysError, WebhookMeaning, from_genesys};
use super::signature::{self, SIGNATURE_HEADER};
use crate::machinery::bus::Publisher;
use crate::machinery::config_watch::ConfigWatcher;
use crate::machinery::envelope::{
    Body, Conversation, Direction, ENVELOPE_VERSION, Envelope, Guest, ReasonCode, Receipt,
    ReceiptStatus,
};
use crate::machinery::metrics::Metrics;
use crate::machinery::server::{ApiError, read_body};

/// Genesys messages are small; attachments travel by URL.
pub const BODY_LIMIT: usize = 512 * 1024;

#[derive(Clone)]
pub struct WebhookState {
    pub config: ConfigWatcher,
    pub publisher: Publisher,
    pub metrics: Metrics,
}

pub fn routes(state: WebhookState) -> Router {
    Router::new()
        .route("/openmessaging/{tenant}", post(webhook))
        .with_state(state)
}

async fn webhook(
    State(state): State<WebhookState>,
    Path(tenant_key): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let started = std::time::Instant::now();
    state.metrics.webhook_received();
    let response = match accept(&state, &tenant_key, &headers, body).await {
        Ok(()) => axum::Json(json!({"ok": true})).into_response(),
        Err(error) => {
            state.metrics.webhook_rejected(error.code);
            tracing::info!(tenant = %tenant_key, status = error.status.as_u16(), error = %error.message, "Genesys webhook refused");
            error.into_response()
        }
    };
    state
        .metrics
        .webhook_duration(response.status().as_u16(), started.elapsed());
    response
}

async fn accept(
    state: &WebhookState,
    tenant_key: &str,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<(), ApiError> {
    // Genesys calls this URL only because the operator registered it for a
    // Tenant: a Tenant unknown here is one whose configuration has not
    // reached this pod yet (or was just deleted). 503 makes Genesys retry
    // (5xx, 5 times over about 85 s), so an agent's message written during
    // a configuration lag is not lost; a deleted Tenant costs Genesys its
    // five retries.
    let tenant = state.config.tenant(tenant_key).ok_or_else(|| {
        ApiError::tenant_not_ready(format!(
            "no tenant {tenant_key:?} on this service (yet); retry later"
        ))
    })?;
    let Some(genesys) = &tenant.genesys else {
        return Err(ApiError::not_found(format!(
            "tenant {tenant_key:?} has no Genesys Cloud configuration"
        )));
    };
    let body = read_body(headers, body, BODY_LIMIT).await?;
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !signature::verify(genesys.webhook_token.expose().as_bytes(), &body, header) {
        return Err(ApiError::unauthorized(
            "X-Hub-Signature-256 is missing or does not verify",
        ));
    }
    let message: OutboundMessage = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("not an Open Messaging message: {e}")))?;
    let envelope = match from_genesys(&message, &tenant, Utc::now()) {
        Ok(WebhookMeaning::Deliver(envelope)) => *envelope,
        Ok(WebhookMeaning::Ignore) => return Ok(()),
        Err(error @ FromGenesysError::NoRecipient { .. }) => {
            return Err(ApiError::bad_request(error.to_string()));
        }
        Err(error @ FromGenesysError::Unsupported { .. }) => {
            // Authenticated, addressed, but nothing to deliver: tell the
            // agent through a receipt, like any other failed delivery.
            unsupported_receipt(&message, &tenant.key, tenant.platform, &error.to_string())
        }
    };
    let published = if envelope.direction == Direction::AgentToGuest {
        state.publisher.to_guest(&envelope).await
    } else {
        state.publisher.to_cx(&envelope).await
    };
    // 503 makes Genesys retry (5xx); the envelope id is stable, so a
    // message that did get through once is not delivered twice.
    published.map_err(|error| ApiError::not_published(&error))
}

fn unsupported_receipt(
    message: &OutboundMessage,
    tenant: &str,
    platform: um_config::Platform,
    detail: &str,
) -> Envelope {
    let guest = message.channel.to.id.clone();
    Envelope {
        v: ENVELOPE_VERSION,
        id: format!(
            "{}.receipt",
            super::from_genesys::envelope_id(tenant, &message.id)
        ),
        tenant: tenant.to_owned(),
        platform,
        direction: Direction::GuestToAgent,
        time: Utc::now(),
        conversation: Conversation {
            id: guest.clone(),
            guest: Guest {
                id: guest,
                ..Guest::default()
            },
            cx_conversation_id: message.conversation_id.clone(),
        },
        body: Body::Receipt(Receipt {
            message_id: message.id.clone(),
            status: ReceiptStatus::Failed,
            reason: Some(ReasonCode::UnsupportedMessage),
            detail: Some(detail.to_owned()),
        }),
        custom_data: Default::default(),
        origin_id: None,
        traceparent: None,
    }
}
