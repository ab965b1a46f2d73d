//! Prometheus metrics of the reconcilers, served on `/metrics`.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// One request to the Kubernetes API: its HTTP method, and whether it
/// opens a watch (a GET with `watch=true`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiRequestLabels {
    pub method: String,
    pub watch: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
    pub error: String,
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabels, Counter>,
    failures: Family<ErrorLabels, Counter>,
    duration: Family<KindLabels, Histogram>,
    leader: Gauge,
    api_requests: Family<ApiRequestLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("um_operator");
        let reconciles = Family::<KindLabels, Counter>::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let leader = Gauge::default();
        let api_requests = Family::<ApiRequestLabels, Counter>::default();
        registry.register(
            "kube_api_requests",
            "Requests sent to the Kubernetes API, per method and whether it opens a watch",
            api_requests.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciliations started, per kind",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed, per kind and error",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciliations, per kind",
            duration.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            duration,
            leader,
            api_requests,
        }
    }
}

/// Observes the duration of one reconcile when dropped.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    kind: &'static str,
    started: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .get_or_create(&KindLabels {
                kind: self.kind.to_owned(),
            })
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Metrics {
    pub fn reconcile_started(&self, kind: &'static str) -> ReconcileTimer<'_> {
        self.reconciles
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
        ReconcileTimer {
            metrics: self,
            kind,
            started: Instant::now(),
        }
    }

    pub fn reconcile_failed(&self, kind: &'static str, error: &str) {
        self.failures
            .get_or_create(&ErrorLabels {
                kind: kind.to_owned(),
                error: error.to_owned(),
            })
            .inc();
    }

    /// Counts one request to the Kubernetes API.
    pub fn api_request(&self, method: &http::Method, query: Option<&str>) {
        let watch =
            query.is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
        self.api_requests
            .get_or_create(&ApiRequestLabels {
                method: method.as_str().to_owned(),
                watch: watch.to_string(),
            })
            .inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_errors_and_durations_per_kind() {
        let metrics = Metrics::default();
        drop(metrics.reconcile_started("Tenant"));
        drop(metrics.reconcile_started("Tenant"));
        metrics.reconcile_failed("Tenant", "Genesys");
        metrics.set_leader(true);
        metrics.api_request(&http::Method::GET, Some("labelSelector=a&watch=true"));
        metrics.api_request(&http::Method::PATCH, None);
        let text = metrics.encode();
        assert!(
            text.contains("um_operator_kube_api_requests_total{method=\"GET\",watch=\"true\"} 1")
                && text.contains(
                    "um_operator_kube_api_requests_total{method=\"PATCH\",watch=\"false\"} 1"
                ),
            "{text}"
        );
        assert!(
            text.contains("um_operator_reconciles_total{kind=\"Tenant\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "um_operator_reconcile_errors_total{kind=\"Tenant\",error=\"Genesys\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("um_operator_reconcile_duration_seconds_count{kind=\"Tenant\"} 2"),
            "{text}"
        );
        assert!(text.contains("um_operator_leader 1"), "{text}");
    }
}
