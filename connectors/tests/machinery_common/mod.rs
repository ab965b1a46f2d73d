//! Shared parts of the machinery tests: the real RabbitMQ and Redis started
//! by `e2e/services.sh` (through `e2e/run-tests`), a bus namespace and a
//! Redis service name of each test's own, envelopes, polling.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use um_config::Platform;
use um_connector::machinery::bus::{Bus, BusSettings};
use um_connector::machinery::envelope::{Body, Content, Direction, Envelope};
use um_connector::machinery::metrics::Metrics;
use um_connector::machinery::store::Store;

fn required(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: this test needs a real RabbitMQ and Redis. Run it through e2e/run-tests \
             (stage 10-rust starts them), or: source e2e/services.sh && um_services_start /tmp/um-services"
        ),
    }
}

pub fn amqp_url() -> String {
    required("UM_TEST_AMQP_URL")
}

pub fn redis_url() -> String {
    required("UM_TEST_REDIS_URL")
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub fn bus(namespace: &str, shards: u16) -> Bus {
    Bus::new(
        BusSettings {
            url: amqp_url(),
            shards,
            connection_name: format!("machinery-test-{namespace}"),
            namespace: namespace.to_owned(),
        },
        Metrics::new("test"),
    )
}

pub async fn store(service: &str) -> Store {
    Store::connect(&redis_url(), service)
        .await
        .expect("Redis reachable")
}

pub fn envelope(tenant: &str, conversation: &str, text: &str) -> Envelope {
    Envelope::message(
        tenant,
        Platform::Telegram,
        Direction::AgentToGuest,
        conversation,
        Content {
            text: Some(text.to_owned()),
            ..Content::default()
        },
    )
    .with_origin_id(format!("origin-{text}"))
}

pub fn text_of(envelope: &Envelope) -> String {
    match &envelope.body {
        Body::Message(content) => content.text.clone().unwrap_or_default(),
        other => format!("{other:?}"),
    }
}

/// Polls `check` every 20 ms until true or `timeout`; the result says which.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Messages waiting in a queue (passive declare).
pub async fn queue_depth(bus: &Bus, queue: &str) -> u32 {
    let channel = bus.channel().await.expect("channel");
    let q = channel
        .queue_declare(
            queue,
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue exists");
    let _ = channel.close(200, "done").await;
    q.message_count()
}

/// Polls a queue's depth until it is `depth` or `timeout`; the last seen.
pub async fn wait_for_depth(bus: &Bus, queue: &str, depth: u32, timeout: Duration) -> u32 {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = queue_depth(bus, queue).await;
        if seen == depth || Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Takes every message of a queue, acknowledging them (consume, since
/// quorum queues with single-active-consumer refuse basic.get).
pub async fn drain(bus: &Bus, queue: &str) -> Vec<lapin::message::Delivery> {
    use futures::StreamExt;
    let depth = queue_depth(bus, queue).await as usize;
    let mut out = Vec::new();
    if depth == 0 {
        return out;
    }
    let channel = bus.channel().await.expect("channel");
    let mut consumer = channel
        .basic_consume(
            queue,
            &unique("drain"),
            lapin::options::BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("basic.consume");
    while out.len() < depth {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("a waiting message arrives")
            .expect("consumer open")
            .expect("delivery");
        delivery
            .acker
            .ack(lapin::options::BasicAckOptions::default())
            .await
            .expect("ack");
        out.push(delivery);
    }
    let _ = channel.close(200, "done").await;
    out
}

pub mod dummy;

/// A runtime wired like the binary's, on the test services, with a bus
/// namespace and Redis service name of its own (`ns`), serving on a free
/// loopback port.
pub async fn runtime(
    ns: &str,
    config: um_config::ServiceConfig,
) -> um_connector::machinery::runtime::Runtime {
    runtime_with(ns, config, &amqp_url()).await
}

pub async fn runtime_with(
    ns: &str,
    config: um_config::ServiceConfig,
    amqp: &str,
) -> um_connector::machinery::runtime::Runtime {
    runtime_env(ns, config, amqp, &[]).await
}

/// [`runtime_with`] with more settings (`UM_*` variables) on top.
pub async fn runtime_env(
    ns: &str,
    config: um_config::ServiceConfig,
    amqp: &str,
    extra: &[(&'static str, &str)],
) -> um_connector::machinery::runtime::Runtime {
    let mut env: std::collections::HashMap<&str, String> = std::collections::HashMap::from([
        ("UM_AMQP_URL", amqp.to_owned()),
        ("UM_REDIS_URL", redis_url()),
        ("UM_BUS_NAMESPACE", ns.to_owned()),
        ("UM_BUS_SHARDS", "2".to_owned()),
        ("POD_IP", "127.0.0.1".to_owned()),
        ("UM_HTTP_PORT", "0".to_owned()),
    ]);
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let settings = um_connector::machinery::settings::Settings::from_lookup(
        Some(config.service.clone()),
        &|name| env.get(name).cloned(),
    )
    .expect("test settings");
    um_connector::machinery::runtime::Runtime::assemble(
        settings,
        um_connector::machinery::config_watch::ConfigWatcher::fixed(config),
        store(ns).await,
        Metrics::new(ns),
        tokio_util::sync::CancellationToken::new(),
    )
    .expect("runtime")
}
