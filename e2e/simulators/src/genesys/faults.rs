//! Fault injection and the request log, as middleware around every route.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error_body::{ErrorBody, injected};
use super::state::GenesysState;
use crate::recording::{RequestRecord, lock};

/// Which requests an injected fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultTarget {
    InboundMessage,
    InboundEvent,
    Receipt,
    StructuredResponse,
    OAuth,
    Integrations,
    /// Any request whose path starts with this.
    PathPrefix(String),
}

impl FaultTarget {
    fn matches(&self, path: &str) -> bool {
        match self {
            Self::InboundMessage => path.ends_with("/inbound/open/message"),
            Self::InboundEvent => path.ends_with("/inbound/open/event"),
            Self::Receipt => path.ends_with("/inbound/open/receipt"),
            Self::StructuredResponse => path.ends_with("/inbound/open/structured/response"),
            Self::OAuth => path == "/oauth/token",
            Self::Integrations => path.starts_with("/api/v2/conversations/messaging/integrations"),
            Self::PathPrefix(prefix) => path.starts_with(prefix.as_str()),
        }
    }
}

/// `"inbound"`/`"message"`, `"event"`, `"receipt"`, `"structured"`,
/// `"oauth"`, `"integrations"`, or a path prefix starting with `/`.
impl From<&str> for FaultTarget {
    fn from(text: &str) -> Self {
        match text {
            "inbound" | "message" => Self::InboundMessage,
            "event" => Self::InboundEvent,
            "receipt" => Self::Receipt,
            "structured" => Self::StructuredResponse,
            "oauth" => Self::OAuth,
            "integrations" => Self::Integrations,
            other => Self::PathPrefix(other.to_owned()),
        }
    }
}

struct Fault {
    target: FaultTarget,
    status: u16,
    remaining: u32,
    retry_after: Option<u64>,
}

#[derive(Default)]
pub(crate) struct Faults {
    pending: Mutex<Vec<Fault>>,
}

impl Faults {
    pub fn add(&self, target: FaultTarget, status: u16, count: u32, retry_after: Option<u64>) {
        if count > 0 {
            lock(&self.pending).push(Fault {
                target,
                status,
                remaining: count,
                retry_after,
            });
        }
    }

    pub fn clear(&self) {
        lock(&self.pending).clear();
    }

    /// Consumes one matching fault, if any.
    fn take(&self, path: &str) -> Option<(u16, Option<u64>)> {
        let mut pending = lock(&self.pending);
        if pending.is_empty() {
            return None;
        }
        let index = pending
            .iter()
            .position(|fault| fault.target.matches(path))?;
        let fault = &mut pending[index];
        fault.remaining -= 1;
        let answer = (fault.status, fault.retry_after);
        if fault.remaining == 0 {
            pending.remove(index);
        }
        Some(answer)
    }
}

pub(crate) async fn inject(
    State(state): State<Arc<GenesysState>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    match state.faults.take(request.uri().path()) {
        Some((status, retry_after)) => injected(status).into_response_with_retry(retry_after),
        None => next.run(request).await,
    }
}

pub(crate) async fn record_request(
    State(state): State<Arc<GenesysState>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    state.requests.push(RequestRecord {
        method,
        path,
        status: response.status().as_u16(),
    });
    response
}

pub(crate) async fn not_found() -> Response {
    ErrorBody::not_found("The requested resource was not found.").into_response()
}
