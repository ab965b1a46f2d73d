//! The HTTP server every service runs: health, metrics, JSON errors, body
//! limits, tenant lookup. Services add their own routes with
//! [`ServerBuilder::merge`].
//!
//! # What an unauthenticated request can cost
//!
//! A webhook is authenticated on its raw body, so the body is read before
//! anyone knows who sent it. Two bounds keep that cheap:
//!
//! - [`read_body`] reads at most the platform's body limit
//!   ([`crate::platform::MessagingPlatform::body_limit`]): a larger
//!   `Content-Length` is refused (413) before a byte is read, and a body
//!   without one is refused as soon as it grows past the limit.
//! - At most `UM_MAX_INFLIGHT_REQUESTS` requests run on the service's own
//!   routes at once ([`ServerBuilder::with_max_inflight`]). One more is
//!   answered 503 with `Retry-After` and `{"error": "overloaded"}` at once,
//!   before its body is read, and counted as a rejected webhook with reason
//!   `overloaded`; platforms redeliver on 503. It is not queued: a waiting
//!   request would hold its connection and its buffers while it waits, and
//!   the platform could not tell a slow answer from a lost one.
//!
//! So whatever arrives, at most `UM_MAX_INFLIGHT_REQUESTS` bodies, each
//! within its platform's limit, are in memory at once (64 × 256 KiB = 16
//! MiB for Telegram with the defaults). Health and metrics are outside the
//! limit: a flood does not make the pod look dead.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use um_config::TenantConfig;

use crate::machinery::bus::{Bus, BusError};
use crate::machinery::config_watch::ConfigWatcher;
use crate::machinery::metrics::Metrics;
use crate::machinery::store::Store;

/// Longest a request may take (webhooks wait for broker confirms).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests handled at once on a service's own routes unless
/// `UM_MAX_INFLIGHT_REQUESTS` says otherwise. Above the 40 connections
/// Telegram opens per bot by default, so one busy bot does not meet 503s
/// from a healthy pod; a webhook takes a few milliseconds (a Redis claim
/// and a broker confirm), so 64 at once carry far more than the CPU a
/// connector is given.
pub const DEFAULT_MAX_INFLIGHT_REQUESTS: usize = 64;
/// The largest `UM_MAX_INFLIGHT_REQUESTS` accepted.
pub const MAX_INFLIGHT_REQUESTS_LIMIT: usize = 10_000;

/// `Retry-After` of a request refused because too many are in flight.
const OVERLOADED_RETRY_AFTER_SECONDS: u64 = 2;
/// `Retry-After` of an event refused because its shard queue is full: the
/// queue drains only as fast as its consumer (and the contact center
/// behind it) recovers, so asking again at once would only repeat the 503.
const QUEUE_FULL_RETRY_AFTER_SECONDS: u64 = 30;

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

    /// `limit` requests are in flight already: 503, the platform retries.
    pub fn overloaded(limit: usize) -> Self {
        Self {
            retry_after: Some(OVERLOADED_RETRY_AFTER_SECONDS),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                format!(
                    "{limit} requests are being handled already (UM_MAX_INFLIGHT_REQUESTS); try again later"
                ),
            )
        }
    }

    /// A publish that did not get the broker's confirm: 503 in every case,
    /// so the platform keeps the message and redelivers it. A full queue
    /// says so (`queue_full`) and asks for a longer pause.
    /// A Tenant this service does not know (yet) on a path only the
    /// installation hands out: the caller is asked to retry.
    pub fn tenant_not_ready(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(10),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "tenant_not_ready", message)
        }
    }

    pub fn not_published(error: &BusError) -> Self {
        let message = format!("message not accepted by the bus: {error}");
        match error {
            BusError::QueueFull { .. } => Self {
                retry_after: Some(QUEUE_FULL_RETRY_AFTER_SECONDS),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "queue_full", message)
            },
            _ => Self::unavailable(message),
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
/// or the stream turns out longer, without buffering past the limit. The
/// body is copied into one buffer as it arrives, so a request holds about
/// its body's size, not its frames and then a copy of them.
pub async fn read_body(
    headers: &HeaderMap,
    mut body: axum::body::Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            ApiError::bad_request(format!("cannot read the request body: {error}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > limit {
                return Err(ApiError::payload_too_large(limit));
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

/// The in-flight bound of a service's own routes.
#[derive(Clone)]
struct InflightLimit {
    permits: Arc<Semaphore>,
    limit: usize,
    metrics: Metrics,
    /// Seconds after `since` before which no other warning is logged: a
    /// flood is reported once in a while, not once per refused request.
    next_warning: Arc<AtomicU64>,
    since: Instant,
}

/// Seconds between two "overloaded" warnings.
const OVERLOAD_WARNING_EVERY_SECONDS: u64 = 10;

impl InflightLimit {
    fn new(limit: usize, metrics: Metrics) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            metrics,
            next_warning: Arc::new(AtomicU64::new(0)),
            since: Instant::now(),
        }
    }

    fn refused(&self) -> Response {
        self.metrics.webhook_rejected("overloaded");
        let now = self.since.elapsed().as_secs();
        let next = self.next_warning.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_warning
                .compare_exchange(
                    next,
                    now + OVERLOAD_WARNING_EVERY_SECONDS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            tracing::warn!(
                limit = self.limit,
                "too many requests in flight (UM_MAX_INFLIGHT_REQUESTS): answering 503 until some finish"
            );
        }
        ApiError::overloaded(self.limit).into_response()
    }
}

/// Runs the request if a permit is free, else answers 503 without reading
/// its body. The permit is held until the response is ready.
async fn within_inflight_limit(
    State(limit): State<InflightLimit>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = limit.permits.clone().try_acquire_owned() else {
        return limit.refused();
    };
    next.run(request).await
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
    /// Health and metrics: outside the in-flight limit.
    base: Router,
    /// The service's own routes.
    routes: Router,
    metrics: Metrics,
    max_inflight: usize,
}

impl ServerBuilder {
    pub fn new(health: Health, metrics: Metrics) -> Self {
        let base = Router::new()
            .route("/healthz/liveness", get(liveness))
            .route("/healthz/readiness", get(readiness))
            .route("/metrics", get(metrics_handler))
            .with_state(BaseState {
                health,
                metrics: metrics.clone(),
            });
        Self {
            base,
            routes: Router::new(),
            metrics,
            max_inflight: DEFAULT_MAX_INFLIGHT_REQUESTS,
        }
    }

    /// Adds a service's routes (already given their state).
    pub fn merge(mut self, routes: Router) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// How many requests the service's routes handle at once
    /// (`UM_MAX_INFLIGHT_REQUESTS`, at least 1); more are refused with 503.
    pub fn with_max_inflight(mut self, limit: usize) -> Self {
        self.max_inflight = limit.max(1);
        self
    }

    pub fn into_router(self) -> Router {
        let limit = InflightLimit::new(self.max_inflight, self.metrics);
        let routes = self.routes.layer(axum::middleware::from_fn_with_state(
            limit,
            within_inflight_limit,
        ));
        self.base.merge(routes).fallback(not_found).layer(
            tower_http::timeout::TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                REQUEST_TIMEOUT,
            ),
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use tower::ServiceExt;

    fn stream_of(chunks: usize, size: usize) -> axum::body::Body {
        let chunks =
            (0..chunks).map(move |_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; size])));
        axum::body::Body::from_stream(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn read_body_stops_at_the_limit() {
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, 1_000_000.into());
        // Refused from the header: the body is never polled.
        let never = axum::body::Body::from_stream(futures::stream::pending::<
            Result<Bytes, std::io::Error>,
        >());
        let refused = read_body(&declared, never, 1024).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
        // Without a length: refused once it grows past the limit.
        let refused = read_body(&HeaderMap::new(), stream_of(5, 300), 1024)
            .await
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
        let body = read_body(&HeaderMap::new(), stream_of(4, 256), 1024)
            .await
            .unwrap();
        assert_eq!(body.len(), 1024);
    }

    #[tokio::test]
    async fn requests_beyond_the_inflight_limit_are_refused_at_once_and_health_stays_up() {
        let release = Arc::new(tokio::sync::Notify::new());
        let entered = Arc::new(tokio::sync::Notify::new());
        let routes = Router::new().route(
            "/slow",
            post({
                let (release, entered) = (release.clone(), entered.clone());
                move || async move {
                    entered.notify_one();
                    release.notified().await;
                    "done"
                }
            }),
        );
        let router = ServerBuilder::new(Health::default(), Metrics::new("test"))
            .with_max_inflight(1)
            .merge(routes)
            .into_router();
        let request = || {
            axum::http::Request::post("/slow")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let first = tokio::spawn(router.clone().oneshot(request()));
        entered.notified().await;

        let refused = router.clone().oneshot(request()).await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "2");
        let body = refused.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "overloaded");
        let health = router
            .clone()
            .oneshot(
                axum::http::Request::get("/healthz/liveness")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);

        release.notify_one();
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
        // The slot is free again.
        let again = tokio::spawn(router.clone().oneshot(request()));
        entered.notified().await;
        release.notify_one();
        assert_eq!(again.await.unwrap().unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn a_full_queue_is_a_503_with_a_longer_pause() {
        let full = ApiError::not_published(&BusError::QueueFull {
            exchange: "um.to-cx".into(),
            message_id: "m1".into(),
        });
        assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(full.code, "queue_full");
        assert_eq!(full.retry_after, Some(QUEUE_FULL_RETRY_AFTER_SECONDS));
        let down = ApiError::not_published(&BusError::Timeout {
            exchange: "um.to-cx".into(),
            message_id: "m1".into(),
            seconds: 10,
            last_error: "connection refused".into(),
        });
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.code, "unavailable");
        assert!(down.retry_after.is_some());
    }
}
