//! The HTTP server every service runs: health, metrics, JSON errors, body
//! limits, tenant lookup. Services add their own routes with
//! [`ServerBuilder::merge`].

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use um_config::TenantConfig;

use crate::machinery::bus::Bus;
use crate::machinery::config_watch::ConfigWatcher;
use crate::machinery::metrics::Metrics;
use crate::machinery::store::Store;

/// Longest a request may take (webhooks wait for broker confirms).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An error answer: status plus `{"error": code, "message": text}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (503 while the bus is down).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body larger than {limit} bytes"),
        )
    }

    /// Temporarily unable (broker or Redis down): the platform retries.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.code, "message": self.message});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Reads a body of at most `limit` bytes: 413 if `Content-Length` says more
/// or the stream turns out longer, without buffering past the limit.
pub async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::payload_too_large(limit))
        }
        Err(error) => Err(ApiError::bad_request(format!(
            "cannot read the request body: {error}"
        ))),
    }
}

/// The tenant named in the path, or 404.
pub fn tenant_or_404(config: &ConfigWatcher, key: &str) -> Result<TenantConfig, ApiError> {
    config
        .tenant(key)
        .ok_or_else(|| ApiError::not_found(format!("no tenant {key:?} on this service")))
}

/// What readiness checks: each dependency that is present must answer.
#[derive(Clone, Default)]
pub struct Health {
    pub bus: Option<Bus>,
    pub store: Option<Store>,
}

#[derive(Clone)]
struct BaseState {
    health: Health,
    metrics: Metrics,
}

async fn liveness() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn readiness(State(state): State<BaseState>) -> Response {
    let mut problems = Vec::new();
    if let Some(bus) = &state.health.bus {
        match tokio::time::timeout(Duration::from_secs(3), bus.check()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => problems.push(format!("broker: {error}")),
            Err(_) => problems.push("broker: connection check timed out".to_owned()),
        }
    }
    if let Some(store) = &state.health.store {
        match tokio::time::timeout(Duration::from_secs(3), store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => problems.push(format!("redis: {error}")),
            Err(_) => problems.push("redis: PING timed out".to_owned()),
        }
    }
    if problems.is_empty() {
        axum::Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "not ready", "problems": problems})),
        )
            .into_response()
    }
}

async fn metrics_handler(State(state): State<BaseState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Builds the service's router around the common routes.
pub struct ServerBuilder {
    router: Router,
}

impl ServerBuilder {
    pub fn new(health: Health, metrics: Metrics) -> Self {
        let base = Router::new()
            .route("/healthz/liveness", get(liveness))
            .route("/healthz/readiness", get(readiness))
            .route("/metrics", get(metrics_handler))
            .with_state(BaseState { health, metrics });
        Self { router: base }
    }

    /// Adds a service's routes (already given their state).
    pub fn merge(mut self, routes: Router) -> Self {
        self.router = self.router.merge(routes);
        self
    }

    pub fn into_router(self) -> Router {
        self.router
            .fallback(not_found)
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                REQUEST_TIMEOUT,
            ))
    }

    /// Binds `addr` (port 0: any free port) and serves until `shutdown`.
    /// Returns the bound address and the server task.
    pub async fn serve(
        self,
        addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let router = self.into_router();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
        });
        Ok((bound, task))
    }
}
