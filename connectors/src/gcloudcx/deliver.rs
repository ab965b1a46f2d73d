//! The consumer of `um.to-cx`: guest messages, typing, button answers and
//! receipts, posted to Genesys in conversation order.

use std::sync::Arc;

use async_trait::async_trait;

use super::genesys_api::GenesysApi;
use super::oauth::SharedTokens;
use super::to_genesys::to_genesys;
use crate::machinery::bus::{EnvelopeHandler, HandlerError};
use crate::machinery::config_watch::ConfigWatcher;
use crate::machinery::envelope::{Body, Envelope, ReasonCode};
use crate::machinery::metrics::Metrics;
use crate::machinery::store::{DEFAULT_DONE_TTL, Store};

/// Store kind of the per-request markers of an envelope that takes several
/// Genesys requests (several attachments).
const SENT_PART: &str = "gc-sent-part";

/// Requests to Genesys in flight at once per process. The consumer works on
/// many conversations concurrently (up to the prefetch of every shard);
/// without a bound each would hold its own connection and buffers, which
/// costs memory and buys nothing against one API host.
pub const MAX_CONCURRENT_REQUESTS: usize = 64;

pub struct ToGenesysHandler {
    pub config: ConfigWatcher,
    pub http: crate::machinery::http_client::HttpClients,
    pub store: Store,
    pub tokens: SharedTokens,
    pub metrics: Metrics,
    in_flight: tokio::sync::Semaphore,
}

impl ToGenesysHandler {
    pub fn new(
        config: ConfigWatcher,
        http: crate::machinery::http_client::HttpClients,
        store: Store,
        metrics: Metrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            http,
            store,
            tokens: SharedTokens::default(),
            metrics,
            in_flight: tokio::sync::Semaphore::new(MAX_CONCURRENT_REQUESTS),
        })
    }
}

#[async_trait]
impl EnvelopeHandler for ToGenesysHandler {
    async fn handle(&self, envelope: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        let started = std::time::Instant::now();
        // Borrowed from the current configuration, not cloned per message.
        let config = self.config.current();
        let Some(tenant) = config.tenants.get(&envelope.tenant) else {
            return Err(HandlerError::tenant_unknown(&envelope.tenant));
        };
        let Some(genesys) = &tenant.genesys else {
            return Err(HandlerError::permanent(format!(
                "tenant {} has no Genesys Cloud configuration",
                tenant.key
            )));
        };
        let Some(integration_id) = genesys.integration_id.as_deref() else {
            // The operator registers the integration shortly; wait for it.
            return Err(HandlerError::retry(format!(
                "tenant {} has no Open Messaging integration yet",
                tenant.key
            )));
        };
        let requests = to_genesys(envelope, &genesys.custom_data).map_err(|error| {
            HandlerError::Permanent {
                reason: Some(ReasonCode::UnsupportedMessage),
                detail: error.to_string(),
            }
        })?;
        let http = self.http.client();
        let api = GenesysApi {
            http: &http,
            store: &self.store,
            tokens: &self.tokens,
            tenant: &tenant.key,
            genesys,
            integration_id,
        };
        let several = requests.len() > 1;
        for (index, request) in requests.iter().enumerate() {
            let part = format!("{}#{index}", envelope.id);
            if several
                && self
                    .store
                    .get(&tenant.key, SENT_PART, &part)
                    .await
                    .map_err(|e| HandlerError::retry(e.to_string()))?
                    .is_some()
            {
                continue;
            }
            let posted = {
                let _permit = self
                    .in_flight
                    .acquire()
                    .await
                    .map_err(|_| HandlerError::retry("shutting down"))?;
                api.post(request).await
            };
            if let Err(error) = posted {
                self.metrics.delivery(
                    if matches!(error, HandlerError::Retry { .. }) {
                        "retry"
                    } else {
                        "failed"
                    },
                    started.elapsed(),
                );
                return Err(error);
            }
            if several
                && let Err(error) = self
                    .store
                    .set(&tenant.key, SENT_PART, &part, "1", DEFAULT_DONE_TTL)
                    .await
            {
                tracing::warn!(error = %error, "sent-part marker not written");
            }
        }
        self.metrics.delivery("delivered", started.elapsed());
        Ok(())
    }

    async fn given_up(
        &self,
        envelope: &Envelope,
        error: &HandlerError,
    ) -> Result<(), HandlerError> {
        // Nobody to tell on the guest's side; the dead-letter queue (for
        // retries) and this log line (for refusals) are where it shows.
        let kind = match &envelope.body {
            Body::Message(_) => "message",
            Body::ButtonResponse(_) => "button response",
            Body::Typing { .. } => "typing",
            Body::Receipt(_) => "receipt",
        };
        tracing::error!(tenant = %envelope.tenant, envelope = %envelope.id, kind, error = %error, "not delivered to Genesys");
        Ok(())
    }
}
