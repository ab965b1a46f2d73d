//! Genesys Cloud simulator: OAuth client credentials, Open Messaging
//! integrations, inbound messages/events/receipts/structured responses,
//! the signed outbound webhook with Genesys' retry policy, and Response
//! Management. See `/work/shared/genesys-open-messaging.md` for the facts
//! it follows.

// ErrorBody is the HTTP answer itself and rejections are a normal path
// here; boxing it everywhere would only add noise.
#![allow(clippy::result_large_err)]

mod auth;
mod error_body;
mod faults;
mod inbound;
mod integrations;
mod listing;
mod outbound;
mod responses;
mod state;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;

pub use error_body::ErrorBody;
pub use faults::FaultTarget;
pub use outbound::{
    AttemptResult, Card, CardAction, OriginatingEntity, OutboundContent, OutboundMessageSpec,
    WebhookOutcome, sign_body,
};
pub use responses::{
    CannedResponse, ResponseLibrary, ResponseSeed, ResponseSubstitution, ResponseText,
};

use crate::SimError;
use crate::recording::{RequestRecord, lock};
use crate::server::{DEFAULT_LISTEN, ServerHandle};
use state::GenesysState;

/// When a created integration's `createStatus` leaves `Initiated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateCompletion {
    /// Already `Completed` in the POST answer.
    Immediate,
    /// `Completed` on the Nth GET of the integration (1 = the first GET).
    AfterGets(u32),
    /// `Completed` once this much time has passed since the POST.
    After(Duration),
}

/// Genesys' webhook delivery policy: initial attempt plus `retries` more,
/// `interval` apart, each bounded by `timeout`; retried on timeout, 429, 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookRetryPolicy {
    pub retries: u32,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for WebhookRetryPolicy {
    fn default() -> Self {
        Self {
            retries: 5,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GenesysOptions {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// OAuth clients: client id → client secret.
    pub oauth_clients: BTreeMap<String, String>,
    pub token_lifetime: Duration,
    /// Requests per token per minute on `/api/v2/**`; 0 turns the limit off.
    pub rate_limit_per_minute: u32,
    pub create_completion: CreateCompletion,
    pub webhook_retry: WebhookRetryPolicy,
    /// Response Management libraries and responses served read-only.
    pub response_seed: ResponseSeed,
}

impl Default for GenesysOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(DEFAULT_LISTEN),
            oauth_clients: BTreeMap::new(),
            token_lifetime: Duration::from_secs(86_400),
            rate_limit_per_minute: 300,
            create_completion: CreateCompletion::AfterGets(1),
            webhook_retry: WebhookRetryPolicy::default(),
            response_seed: ResponseSeed::example(),
        }
    }
}

impl GenesysOptions {
    pub fn with_client(mut self, client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.oauth_clients.insert(client_id.into(), secret.into());
        self
    }
}

/// An integration as the simulator holds it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationRecord {
    pub id: String,
    pub name: String,
    pub webhook_url: String,
    pub secret_token: String,
    pub webhook_headers: BTreeMap<String, String>,
    /// `Initiated`, `Completed` or `Error`.
    pub create_status: String,
    pub supported_content_id: Option<String>,
    pub messaging_setting_id: Option<String>,
}

/// One accepted inbound request (message, event, receipt or structured
/// response), with the JSON body exactly as received.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundRecord {
    pub integration_id: String,
    /// The id the simulator gave this message in its answer.
    pub message_id: String,
    pub conversation_id: Option<String>,
    pub body: Value,
}

/// One agent message sent to an integration's webhook, with its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundRecord {
    pub integration_id: String,
    pub message_id: String,
    pub conversation_id: String,
    pub body: Value,
    pub outcome: WebhookOutcome,
}

/// One POST to a webhook (an initial attempt or a retry).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAttempt {
    pub integration_id: String,
    pub message_id: String,
    /// 0 for the first attempt.
    pub attempt: u32,
    pub result: AttemptResult,
}

/// What `wait_for` and the `um-sim` control API count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenesysRecordKind {
    InboundMessage,
    InboundEvent,
    Receipt,
    StructuredResponse,
    Outbound,
    WebhookAttempt,
    Request,
}

impl std::str::FromStr for GenesysRecordKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "inbound" | "message" | "messages" => Self::InboundMessage,
            "event" | "events" => Self::InboundEvent,
            "receipt" | "receipts" => Self::Receipt,
            "structured" | "structured_response" => Self::StructuredResponse,
            "outbound" => Self::Outbound,
            "webhook_attempt" | "attempts" => Self::WebhookAttempt,
            "request" | "requests" => Self::Request,
            other => return Err(format!("unknown genesys record kind '{other}'")),
        })
    }
}

/// A running Genesys Cloud simulator. Stops when dropped.
pub struct GenesysSimulator {
    state: Arc<GenesysState>,
    addr: SocketAddr,
    /// None when the router is served by someone else (the `um-sim` host).
    server: Option<ServerHandle>,
}

impl GenesysSimulator {
    pub async fn start(options: GenesysOptions) -> Result<Self, SimError> {
        let listen = options.listen;
        let state = Arc::new(GenesysState::new(options)?);
        let server = ServerHandle::serve(listen, router(state.clone())).await?;
        Ok(Self {
            state,
            addr: server.addr(),
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`: API and `/oauth/token` on the same listener.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn shutdown(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }

    /// The simulator and its router, for a host that serves it on `addr`.
    pub(crate) fn unserved(
        options: GenesysOptions,
        addr: SocketAddr,
    ) -> Result<(Self, Router), SimError> {
        let state = Arc::new(GenesysState::new(options)?);
        let router = router(state.clone());
        Ok((
            Self {
                state,
                addr,
                server: None,
            },
            router,
        ))
    }

    pub fn add_oauth_client(&self, client_id: impl Into<String>, secret: impl Into<String>) {
        lock(&self.state.clients).insert(client_id.into(), secret.into());
    }

    /// Changes the per-token rate limit (0 = off) at run time.
    pub fn set_rate_limit_per_minute(&self, limit: u32) {
        lock(&self.state.config).rate_limit_per_minute = limit;
    }

    pub fn set_webhook_retry(&self, policy: WebhookRetryPolicy) {
        lock(&self.state.config).webhook_retry = policy;
    }

    pub fn set_create_completion(&self, completion: CreateCompletion) {
        lock(&self.state.config).create_completion = completion;
    }

    /// Revokes one OAuth client: its tokens stop working (401) and it gets
    /// no new ones (401 `invalid_client`) until [`Self::add_oauth_client`]
    /// adds it again. Other clients are untouched.
    pub fn remove_oauth_client(&self, client_id: &str) {
        lock(&self.state.clients).remove(client_id);
        lock(&self.state.tokens).retain(|_, token| token.client_id != client_id);
    }

    /// Ends every injected fault (an outage started with `fail_next(..,
    /// u32::MAX)` ends here).
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Every issued token stops working: the next call with one gets 401.
    pub fn revoke_tokens(&self) {
        lock(&self.state.tokens).clear();
    }

    /// The next `count` requests matching `target` are answered with
    /// `status` and a matching ErrorBody (429 carries `Retry-After: 1`).
    pub fn fail_next(&self, target: impl Into<FaultTarget>, status: u16, count: u32) {
        self.state
            .faults
            .add(target.into(), status, count, (status == 429).then_some(1));
    }

    /// Like `fail_next` with an explicit `Retry-After` in seconds.
    pub fn fail_next_with_retry_after(
        &self,
        target: impl Into<FaultTarget>,
        status: u16,
        count: u32,
        retry_after_secs: u64,
    ) {
        self.state
            .faults
            .add(target.into(), status, count, Some(retry_after_secs));
    }

    /// The next integration created ends in `createStatus: Error` with
    /// this message in `createError`.
    pub fn fail_next_integration_creation(&self, message: impl Into<String>) {
        lock(&self.state.create_failures).push_back(ErrorBody::new(
            400,
            "integration.create.failed",
            message,
        ));
    }

    /// Integrations that exist now, in creation order.
    pub fn integrations(&self) -> Vec<IntegrationRecord> {
        lock(&self.state.integrations)
            .iter()
            .map(|integration| integration.record())
            .collect()
    }

    pub fn integration(&self, id: &str) -> Option<IntegrationRecord> {
        lock(&self.state.integrations)
            .iter()
            .find(|integration| integration.id == id)
            .map(|integration| integration.record())
    }

    pub fn deleted_integration_ids(&self) -> Vec<String> {
        lock(&self.state.deleted).clone()
    }

    pub fn inbound_messages(&self) -> Vec<InboundRecord> {
        self.state.inbound_messages.snapshot()
    }

    pub fn inbound_events(&self) -> Vec<InboundRecord> {
        self.state.inbound_events.snapshot()
    }

    pub fn receipts(&self) -> Vec<InboundRecord> {
        self.state.receipts.snapshot()
    }

    pub fn structured_responses(&self) -> Vec<InboundRecord> {
        self.state.structured_responses.snapshot()
    }

    pub fn outbound_messages(&self) -> Vec<OutboundRecord> {
        self.state.outbound.snapshot()
    }

    pub fn webhook_attempts(&self) -> Vec<WebhookAttempt> {
        self.state.webhook_attempts.snapshot()
    }

    /// Every answered request: method, path (no query), status.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.requests.snapshot()
    }

    /// How many requests had this method and a path starting with `path_prefix`.
    pub fn count_requests(&self, method: &str, path_prefix: &str) -> usize {
        self.state
            .requests
            .snapshot()
            .iter()
            .filter(|request| {
                request.method.eq_ignore_ascii_case(method) && request.path.starts_with(path_prefix)
            })
            .count()
    }

    /// The conversation the simulator assigned to a guest (integration + from.id).
    pub fn conversation_id(&self, integration_id: &str, guest_id: &str) -> Option<String> {
        lock(&self.state.guests)
            .get(&(integration_id.to_owned(), guest_id.to_owned()))
            .map(|guest| guest.conversation_id.clone())
    }

    /// Number of records of a kind.
    pub fn count(&self, kind: GenesysRecordKind) -> usize {
        self.state.record_len(kind)
    }

    /// Waits (without polling) until at least `count` records of `kind`
    /// exist; false on timeout.
    pub async fn wait_for(&self, kind: GenesysRecordKind, count: usize, timeout: Duration) -> bool {
        self.state.wait_for(kind, count, timeout).await
    }

    /// Forgets all recordings (not integrations, tokens or conversations).
    pub fn clear_records(&self) {
        self.state.clear_records();
    }

    /// Replaces the Response Management data.
    pub fn set_response_seed(&self, seed: ResponseSeed) {
        *lock(&self.state.responses) = seed;
    }

    /// Sends an agent message to the integration's webhook (signed, with
    /// retries) and returns once it was delivered or given up.
    pub async fn send_agent_message(
        &self,
        integration_id: &str,
        spec: OutboundMessageSpec,
    ) -> Result<WebhookOutcome, SimError> {
        outbound::send_agent_message(&self.state, integration_id, spec).await
    }

    /// Participant data of a conversation: every inbound
    /// `channel.metadata.customAttributes`, later values winning.
    pub fn participant_data(
        &self,
        conversation_id: &str,
    ) -> std::collections::HashMap<String, String> {
        inbound::participant_data(&self.state.inbound_messages.snapshot(), conversation_id)
    }
}

fn router(state: Arc<GenesysState>) -> Router {
    let api = Router::new()
        .route(
            "/api/v2/conversations/messaging/integrations/open",
            get(integrations::list).post(integrations::create),
        )
        .route(
            "/api/v2/conversations/messaging/integrations/open/{id}",
            get(integrations::get_one)
                .patch(integrations::update)
                .delete(integrations::delete),
        )
        .route(
            "/api/v2/conversations/messages/{id}/inbound/open/message",
            post(inbound::message),
        )
        .route(
            "/api/v2/conversations/messages/{id}/inbound/open/event",
            post(inbound::event),
        )
        .route(
            "/api/v2/conversations/messages/{id}/inbound/open/receipt",
            post(inbound::receipt),
        )
        .route(
            "/api/v2/conversations/messages/{id}/inbound/open/structured/response",
            post(inbound::structured_response),
        )
        .route(
            "/api/v2/conversations/messages/agentless",
            post(outbound::agentless),
        )
        .route(
            "/api/v2/responsemanagement/libraries",
            get(responses::list_libraries),
        )
        .route(
            "/api/v2/responsemanagement/libraries/{id}",
            get(responses::get_library),
        )
        .route(
            "/api/v2/responsemanagement/responses",
            get(responses::list_responses),
        )
        .route(
            "/api/v2/responsemanagement/responses/query",
            post(responses::query),
        )
        .route(
            "/api/v2/responsemanagement/responses/{id}",
            get(responses::get_response),
        )
        .fallback(faults::not_found)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_bearer,
        ));
    Router::new()
        .route("/oauth/token", post(auth::token))
        .merge(api)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            faults::inject,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            faults::record_request,
        ))
        .with_state(state)
}
