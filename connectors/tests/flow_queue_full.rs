//! A full shard queue refuses, and the webhook says so: with nobody
//! consuming `to-cx` (gcloudcx down), the shard fills up to its length
//! limit; the Telegram webhooks beyond it are answered 503 with
//! `Retry-After` and `{"error": "queue_full"}` instead of being accepted,
//! every update answered 200 is in the queue, and the refused ones are
//! taken when Telegram redelivers them after the queue drained.
//!
//! The queue is filled to just below the real limit
//! ([`DEFAULT_SHARD_MAX_LENGTH`], a queue argument) by publishing straight
//! to the shard, so the test exercises the limit every installation gets.

mod machinery_common;
mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use serde_json::json;
use support::{Connector, eventually, free_port, services, unique};
use um_config::{MessagingConfig, Platform, Secret, ServiceConfig, TenantConfig};
use um_connector::machinery::bus::{Bus, BusSettings, DEFAULT_SHARD_MAX_LENGTH, Route};
use um_connector::machinery::envelope::{Body, Envelope};
use um_connector::machinery::metrics::Metrics;
use um_connector::platforms::telegram::webhook_secret::derive_secret_token;
use um_simulators::telegram::{TelegramOptions, TelegramSimulator};

/// Room left in the shard before the test's updates arrive.
const ROOM: u64 = 3;
/// Updates posted against the nearly full shard.
const UPDATES: i64 = 10;
const GUEST: i64 = 6161;
const PREFILL_BATCH: u64 = 2_000;

fn update(update_id: i64) -> serde_json::Value {
    json!({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_800_000_000,
        "from": {"id": GUEST, "is_bot": false, "first_name": "Eve"},
        "chat": {"id": GUEST, "type": "private"}, "text": format!("update {update_id}")}})
}

async fn depth(bus: &Bus, queue: &str) -> u64 {
    machinery_common::queue_depth(bus, queue).await.into()
}

/// Publishes `count` filler messages straight to `queue`, confirmed.
async fn prefill(bus: &Bus, queue: &str, count: u64) {
    let channel = bus.channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let mut published = 0;
    while published < count {
        let batch = PREFILL_BATCH.min(count - published);
        let mut confirms = Vec::new();
        for _ in 0..batch {
            confirms.push(
                channel
                    .basic_publish(
                        "",
                        queue,
                        BasicPublishOptions::default(),
                        b"filler",
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await
                    .expect("basic.publish"),
            );
        }
        for confirmation in futures::future::join_all(confirms).await {
            assert!(
                matches!(confirmation.expect("confirm"), Confirmation::Ack(None)),
                "the broker refused a filler message below the limit"
            );
        }
        published += batch;
    }
    let _ = channel.close(200, "done").await;
}

/// Takes every message of `queue`; the texts of the envelopes among them.
async fn drain_texts(bus: &Bus, queue: &str, expected: u64) -> Vec<String> {
    let channel = bus.channel().await.expect("channel");
    channel
        .basic_qos(1_000, BasicQosOptions::default())
        .await
        .expect("basic.qos");
    let mut consumer = channel
        .basic_consume(
            queue,
            &unique("drain"),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("basic.consume");
    let mut texts = Vec::new();
    for taken in 1..=expected {
        let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .expect("a waiting message arrives")
            .expect("consumer open")
            .expect("delivery");
        if let Ok(envelope) = serde_json::from_slice::<Envelope>(&delivery.data)
            && let Body::Message(content) = &envelope.body
        {
            texts.push(content.text.clone().unwrap_or_default());
        }
        if taken % 500 == 0 || taken == expected {
            delivery
                .acker
                .ack(BasicAckOptions { multiple: true })
                .await
                .expect("ack");
        }
    }
    let _ = channel.close(200, "done").await;
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_beyond_a_full_shard_are_refused_and_nothing_accepted_is_lost() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bot_token = format!("4343:{}", unique("AAF"));
    let telegram = TelegramSimulator::start(TelegramOptions::default().with_bot(bot_token.clone()))
        .await
        .expect("Telegram simulator");
    let tenant_key = format!("flow.{}", unique("t"));
    let port = free_port();
    let webhook_url = format!("http://127.0.0.1:{port}/telegram/{tenant_key}");
    let mut config = ServiceConfig::new("telegram");
    config.tenants.insert(
        tenant_key.clone(),
        TenantConfig::new(
            tenant_key.clone(),
            "Full",
            Platform::Telegram,
            webhook_url.clone(),
        )
        .with_messaging(MessagingConfig::Telegram(um_config::TelegramConfig {
            bot_token: Secret::new(bot_token.clone()),
            webhook_secret_token: None,
            api_base_url: Some(telegram.base_url()),
        })),
    );
    // One shard, so every update goes to the queue the test fills; no
    // gcloudcx, so nothing consumes it.
    let namespace = unique("umt-");
    let connector = Connector::start(
        "telegram",
        &config,
        port,
        &amqp,
        &redis,
        &[
            ("UM_BUS_NAMESPACE", namespace.as_str()),
            ("UM_BUS_SHARDS", "1"),
        ],
    )
    .await;
    assert!(
        eventually(Duration::from_secs(15), || telegram
            .webhook_url(&bot_token)
            .is_some())
        .await,
        "setWebhook was not called"
    );

    let bus = Bus::new(
        BusSettings {
            url: amqp.clone(),
            shards: 1,
            connection_name: format!("flow-queue-full-{namespace}"),
            namespace: namespace.clone(),
        },
        Metrics::new("flow-queue-full"),
    );
    bus.declare(&Route::ToCx).await.expect("topology declared");
    let shard = Route::ToCx.shard_queue(&namespace, 0);
    let limit = DEFAULT_SHARD_MAX_LENGTH as u64;
    let started = Instant::now();
    prefill(&bus, &shard, limit - ROOM).await;
    eprintln!(
        "{} filler messages published in {:?}",
        limit - ROOM,
        started.elapsed()
    );
    assert_eq!(depth(&bus, &shard).await, limit - ROOM);

    let client = reqwest::Client::new();
    let secret = derive_secret_token(&bot_token);
    let post = |update_id: i64| {
        let client = client.clone();
        let url = webhook_url.clone();
        let secret = secret.clone();
        async move {
            let response = client
                .post(url)
                .header("X-Telegram-Bot-Api-Secret-Token", secret)
                .json(&update(update_id))
                .send()
                .await
                .expect("webhook request");
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.text().await.unwrap_or_default();
            (status, retry_after, body)
        }
    };
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for update_id in 1..=UPDATES {
        let started = Instant::now();
        let (status, retry_after, body) = post(update_id).await;
        match status {
            200 => {
                assert!(
                    refused.is_empty(),
                    "update {update_id} was accepted after an earlier one was refused"
                );
                accepted.push(update_id);
            }
            503 => {
                let error: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
                assert_eq!(error["error"], "queue_full", "{body}");
                assert_eq!(retry_after.as_deref(), Some("30"), "{body}");
                // Refused at the broker's nack, not after the publish timeout.
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "refusing took {:?}",
                    started.elapsed()
                );
                refused.push(update_id);
            }
            other => panic!("update {update_id}: unexpected {other}: {body}"),
        }
    }
    eprintln!("accepted {accepted:?}, refused {refused:?}");
    // The room, and perhaps the one publish that crossed the limit (a
    // quorum queue notices only after it).
    assert!(
        (ROOM as usize..=ROOM as usize + 1).contains(&accepted.len()),
        "accepted {accepted:?} with room for {ROOM}"
    );
    assert!(
        !refused.is_empty(),
        "nothing was refused: is the queue limited?"
    );

    // Every accepted update is in the queue, once, and nothing else of ours.
    let held = depth(&bus, &shard).await;
    assert_eq!(held, limit - ROOM + accepted.len() as u64);
    let started = Instant::now();
    let texts = drain_texts(&bus, &shard, held).await;
    eprintln!("{held} messages drained in {:?}", started.elapsed());
    let expected: Vec<String> = accepted.iter().map(|id| format!("update {id}")).collect();
    assert_eq!(texts, expected);

    // Telegram redelivers the refused updates: with room again, each is taken.
    for &update_id in &refused {
        let (status, _, body) = post(update_id).await;
        assert_eq!(status, 200, "redelivered update {update_id}: {body}");
    }
    assert_eq!(depth(&bus, &shard).await, refused.len() as u64);
    let texts = drain_texts(&bus, &shard, refused.len() as u64).await;
    let expected: Vec<String> = refused.iter().map(|id| format!("update {id}")).collect();
    assert_eq!(texts, expected);

    // The broker run is shared: leave no large queue behind.
    drop(connector);
    let channel = bus.channel().await.expect("channel");
    let _ = channel
        .queue_delete(&shard, QueueDeleteOptions::default())
        .await;
    bus.close().await;
}

/// A shard queue left by a version without the length limit is not
/// silently used without one: declaring the topology fails, naming what to
/// do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_declared_without_the_limit_is_refused_with_what_to_do() {
    let Some((amqp, _redis)) = services() else {
        return;
    };
    let namespace = unique("umt-");
    let bus = Bus::new(
        BusSettings {
            url: amqp,
            shards: 1,
            connection_name: format!("flow-queue-full-{namespace}"),
            namespace: namespace.clone(),
        },
        Metrics::new("flow-queue-full"),
    );
    let shard = Route::ToCx.shard_queue(&namespace, 0);
    let channel = bus.channel().await.expect("channel");
    let mut old_arguments = FieldTable::default();
    old_arguments.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(
            &shard,
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            old_arguments,
        )
        .await
        .expect("old shard declared");
    let error = bus
        .declare(&Route::ToCx)
        .await
        .expect_err("a shard with other arguments is refused");
    let message = error.to_string();
    assert!(
        message.contains("exists with other arguments") && message.contains("Queue length"),
        "{message}"
    );
    let channel = bus.channel().await.expect("channel");
    let _ = channel
        .queue_delete(&shard, QueueDeleteOptions::default())
        .await;
    bus.close().await;
}
