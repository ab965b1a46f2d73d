//! Throughput of the bus machinery against a real broker and Redis:
//! confirmed publishes (many in flight) and ordered consumption with done
//! markers, end to end, checking per-conversation order on the way.
//!
//! `um-bus-bench [messages] [conversations]` with `UM_TEST_AMQP_URL` and
//! `UM_TEST_REDIS_URL` (see e2e/services.sh). Prints one line per phase.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use um_config::Platform;
use um_connector::machinery::bus::{
    Bus, BusSettings, Consumer, ConsumerOptions, EnvelopeHandler, HandlerError, Publisher, Route,
};
use um_connector::machinery::envelope::{Content, Direction, Envelope};
use um_connector::machinery::metrics::Metrics;
use um_connector::machinery::store::Store;

struct OrderCheck {
    next: Mutex<HashMap<String, u64>>,
    handled: std::sync::atomic::AtomicUsize,
    out_of_order: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl EnvelopeHandler for OrderCheck {
    async fn handle(&self, envelope: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        let seq: u64 = envelope
            .origin_id
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let expected = next.entry(envelope.conversation.id.clone()).or_insert(0);
        if seq != *expected {
            self.out_of_order
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        *expected = seq + 1;
        self.handled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

fn envelope(conversation: usize, seq: usize) -> Envelope {
    Envelope::message(
        "bench.tenant",
        Platform::Telegram,
        Direction::GuestToAgent,
        &format!("conv-{conversation}"),
        Content {
            text: Some(format!("message {seq} of conversation {conversation}")),
            ..Content::default()
        },
    )
    .with_origin_id(seq.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let messages: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let conversations: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(500);
    let amqp = std::env::var("UM_TEST_AMQP_URL")
        .map_err(|_| anyhow::anyhow!("UM_TEST_AMQP_URL not set (e2e/services.sh)"))?;
    let redis = std::env::var("UM_TEST_REDIS_URL")
        .map_err(|_| anyhow::anyhow!("UM_TEST_REDIS_URL not set (e2e/services.sh)"))?;
    let ns = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let shards = 4;
    let bus = |name: &str| {
        Bus::new(
            BusSettings {
                url: amqp.clone(),
                shards,
                connection_name: format!("um-bus-bench-{name}"),
                namespace: ns.clone(),
            },
            Metrics::new("bench"),
        )
    };
    let publisher = Publisher::new(bus("publisher"));
    publisher.bus().declare(&Route::ToCx).await?;

    let per_conversation = messages.div_ceil(conversations);
    let started = Instant::now();
    let tasks: Vec<_> = (0..conversations)
        .map(|c| {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                for s in 0..per_conversation {
                    publisher.publish(&Route::ToCx, &envelope(c, s)).await?;
                }
                Ok::<(), um_connector::machinery::bus::BusError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let total = per_conversation * conversations;
    let publish_time = started.elapsed();
    println!(
        "published {total} envelopes with confirms ({conversations} conversations in parallel, each in order) in {:.2} s: {:.0} msg/s",
        publish_time.as_secs_f64(),
        total as f64 / publish_time.as_secs_f64()
    );

    let check = Arc::new(OrderCheck {
        next: Mutex::new(HashMap::new()),
        handled: Default::default(),
        out_of_order: Default::default(),
    });
    let store = Store::connect(&redis, &ns).await?;
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(
        bus("consumer"),
        Route::ToCx,
        ConsumerOptions {
            prefetch: 512,
            ..ConsumerOptions::default()
        },
    )
    .with_done_markers(store);
    let started = Instant::now();
    let consuming = tokio::spawn(consumer.run(check.clone(), shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(300);
    while check.handled.load(std::sync::atomic::Ordering::Relaxed) < total
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let consume_time = started.elapsed();
    shutdown.cancel();
    consuming.await?;
    let handled = check.handled.load(std::sync::atomic::Ordering::Relaxed);
    let out_of_order = check
        .out_of_order
        .load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "consumed {handled} of {total} (done markers in Redis, finished runs acked together (multiple), {shards} shards, prefetch 512) in {:.2} s: {:.0} msg/s; out of order: {out_of_order}",
        consume_time.as_secs_f64(),
        handled as f64 / consume_time.as_secs_f64()
    );
    if handled != total || out_of_order != 0 {
        anyhow::bail!("lost or reordered messages");
    }
    Ok(())
}
