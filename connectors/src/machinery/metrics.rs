//! Prometheus metrics of a connector service, served on `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

struct Inner {
    registry: Registry,
    webhooks_received: Family<Labels, Counter>,
    webhooks_rejected: Family<Labels, Counter>,
    webhooks_duplicate: Family<Labels, Counter>,
    webhook_duration: HistogramFamily,
    published: Family<Labels, Counter>,
    publish_duration: HistogramFamily,
    consumed: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    dead_lettered: Family<Labels, Counter>,
    parked: Family<Labels, Counter>,
    released: Family<Labels, Counter>,
    parked_conversations: Family<Labels, Gauge>,
    deliveries: Family<Labels, Counter>,
    delivery_duration: HistogramFamily,
    bus_reconnects: Counter,
    bus_connected: Gauge,
}

/// Cheap to clone; every clone feeds the same registry.
#[derive(Clone)]
pub struct Metrics {
    service: Arc<str>,
    inner: Arc<Inner>,
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let mut registry = Registry::with_prefix("um");
        let webhooks_received = Family::<Labels, Counter>::default();
        let webhooks_rejected = Family::<Labels, Counter>::default();
        let webhooks_duplicate = Family::<Labels, Counter>::default();
        let webhook_duration =
            HistogramFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        let published = Family::<Labels, Counter>::default();
        let publish_duration =
            HistogramFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        let consumed = Family::<Labels, Counter>::default();
        let retries = Family::<Labels, Counter>::default();
        let dead_lettered = Family::<Labels, Counter>::default();
        let parked = Family::<Labels, Counter>::default();
        let released = Family::<Labels, Counter>::default();
        let parked_conversations = Family::<Labels, Gauge>::default();
        let deliveries = Family::<Labels, Counter>::default();
        let delivery_duration =
            HistogramFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        let bus_reconnects = Counter::default();
        let bus_connected = Gauge::default();
        registry.register(
            "webhooks_received",
            "Webhook requests received",
            webhooks_received.clone(),
        );
        registry.register(
            "webhooks_rejected",
            "Webhook requests refused, by reason",
            webhooks_rejected.clone(),
        );
        registry.register(
            "webhooks_duplicate",
            "Platform redeliveries recognised by event id and not published again",
            webhooks_duplicate.clone(),
        );
        registry.register(
            "webhook_duration_seconds",
            "Time from webhook request to answer (includes broker confirms)",
            webhook_duration.clone(),
        );
        registry.register(
            "bus_published",
            "Envelopes published and confirmed by the broker",
            published.clone(),
        );
        registry.register(
            "bus_publish_duration_seconds",
            "Time from publish to broker confirm",
            publish_duration.clone(),
        );
        registry.register(
            "bus_consumed",
            "Envelopes taken from the bus",
            consumed.clone(),
        );
        registry.register(
            "bus_retries",
            "Handler attempts retried in place",
            retries.clone(),
        );
        registry.register(
            "bus_dead_lettered",
            "Envelopes moved to a dead-letter queue",
            dead_lettered.clone(),
        );
        registry.register(
            "bus_parked",
            "Envelopes parked in Redis behind a failing delivery of their conversation",
            parked.clone(),
        );
        registry.register(
            "bus_released",
            "Parked envelopes delivered",
            released.clone(),
        );
        registry.register(
            "bus_parked_conversations",
            "Conversations of a route waiting in the parking lot",
            parked_conversations.clone(),
        );
        registry.register(
            "deliveries",
            "Delivery attempts by outcome",
            deliveries.clone(),
        );
        registry.register(
            "delivery_duration_seconds",
            "Time of one delivery attempt",
            delivery_duration.clone(),
        );
        registry.register(
            "bus_reconnects",
            "Broker connections re-established",
            bus_reconnects.clone(),
        );
        registry.register(
            "bus_connected",
            "1 while the broker connection is open",
            bus_connected.clone(),
        );
        Self {
            service: Arc::from(service),
            inner: Arc::new(Inner {
                registry,
                webhooks_received,
                webhooks_rejected,
                webhooks_duplicate,
                webhook_duration,
                published,
                publish_duration,
                consumed,
                retries,
                dead_lettered,
                parked,
                released,
                parked_conversations,
                deliveries,
                delivery_duration,
                bus_reconnects,
                bus_connected,
            }),
        }
    }

    fn labels(&self, extra: &[(&'static str, &str)]) -> Labels {
        let mut labels = vec![("service", self.service.to_string())];
        labels.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        labels
    }

    pub fn webhook_received(&self) {
        self.inner
            .webhooks_received
            .get_or_create(&self.labels(&[]))
            .inc();
    }

    pub fn webhook_rejected(&self, reason: &str) {
        self.inner
            .webhooks_rejected
            .get_or_create(&self.labels(&[("reason", reason)]))
            .inc();
    }

    pub fn webhook_duplicate(&self) {
        self.inner
            .webhooks_duplicate
            .get_or_create(&self.labels(&[]))
            .inc();
    }

    pub fn webhook_duration(&self, status: u16, elapsed: Duration) {
        let status = status.to_string();
        self.inner
            .webhook_duration
            .get_or_create(&self.labels(&[("status", &status)]))
            .observe(elapsed.as_secs_f64());
    }

    pub fn published(&self, exchange: &str, elapsed: Duration) {
        let labels = self.labels(&[("exchange", exchange)]);
        self.inner.published.get_or_create(&labels).inc();
        self.inner
            .publish_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn consumed(&self, queue_group: &str) {
        self.inner
            .consumed
            .get_or_create(&self.labels(&[("queue", queue_group)]))
            .inc();
    }

    pub fn retried(&self, queue_group: &str) {
        self.inner
            .retries
            .get_or_create(&self.labels(&[("queue", queue_group)]))
            .inc();
    }

    pub fn dead_lettered(&self, queue_group: &str, reason: &str) {
        self.inner
            .dead_lettered
            .get_or_create(&self.labels(&[("queue", queue_group), ("reason", reason)]))
            .inc();
    }

    pub fn parked(&self, queue_group: &str) {
        self.inner
            .parked
            .get_or_create(&self.labels(&[("queue", queue_group)]))
            .inc();
    }

    pub fn released(&self, queue_group: &str) {
        self.inner
            .released
            .get_or_create(&self.labels(&[("queue", queue_group)]))
            .inc();
    }

    pub fn parked_conversations(&self, queue_group: &str, count: usize) {
        self.inner
            .parked_conversations
            .get_or_create(&self.labels(&[("queue", queue_group)]))
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// `outcome`: `delivered`, `retry`, `failed`, `duplicate`.
    pub fn delivery(&self, outcome: &str, elapsed: Duration) {
        let labels = self.labels(&[("outcome", outcome)]);
        self.inner.deliveries.get_or_create(&labels).inc();
        self.inner
            .delivery_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn bus_reconnected(&self) {
        self.inner.bus_reconnects.inc();
    }

    pub fn bus_connected(&self, connected: bool) {
        self.inner.bus_connected.set(i64::from(connected));
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.inner.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let metrics = Metrics::new("telegram");
        metrics.webhook_received();
        metrics.webhook_rejected("unauthorized");
        metrics.webhook_rejected("unauthorized");
        metrics.delivery("delivered", Duration::from_millis(3));
        let text = metrics.render();
        assert!(
            text.contains(r#"um_webhooks_received_total{service="telegram"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"um_webhooks_rejected_total{service="telegram",reason="unauthorized"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains("um_delivery_duration_seconds_bucket"),
            "{text}"
        );
    }
}
