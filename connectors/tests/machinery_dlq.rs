//! `um dlq` end to end over real RabbitMQ and Redis: messages whose retry
//! budget is spent are listed with their story, replayed (delivered this
//! time, in the order they died, although the consumer finished them once
//! as dead) and purged.

mod machinery_common;

use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use machinery_common::*;
use tokio_util::sync::CancellationToken;
use um_connector::machinery::bus::{
    Consumer, ConsumerOptions, EnvelopeHandler, HandlerError, Publisher, Route,
};
use um_connector::machinery::envelope::Envelope;

/// Fails every message while `down`.
#[derive(Default)]
struct Switch {
    down: AtomicBool,
    delivered: Mutex<Vec<String>>,
}

#[async_trait]
impl EnvelopeHandler for Switch {
    async fn handle(&self, envelope: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(HandlerError::retry("Genesys answers 503"));
        }
        self.delivered.lock().unwrap().push(text_of(envelope));
        Ok(())
    }
}

async fn um(ns: &str, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_um"));
    command
        .env("UM_AMQP_URL", amqp_url())
        .args(["--instance", ns])
        .args(args);
    command.output().await.expect("um runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "um failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_are_listed_replayed_in_order_and_purged() {
    let ns = unique("t-dlq");
    let bus = bus(&ns, 2);
    let route = Route::ToCx;
    let handler = Arc::new(Switch::default());
    handler.down.store(true, Ordering::SeqCst);
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(
        bus.clone(),
        route,
        ConsumerOptions {
            retry_for: Duration::from_millis(500),
            park_after: 2,
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_millis(200),
            ..ConsumerOptions::default()
        },
    )
    .with_done_markers(store(&ns).await);
    let task = tokio::spawn(consumer.run(handler.clone(), shutdown.clone()));

    let publisher = Publisher::new(bus.clone());
    let a1 = envelope("shop.acme", "a", "a1");
    let a2 = envelope("shop.acme", "a", "a2");
    let other = envelope("shop.other", "z", "z1");
    for e in [&a1, &a2, &other] {
        publisher.publish(&route, e).await.unwrap();
    }
    let dead_queue = route.dead_letter_queue(&ns);
    assert_eq!(
        wait_for_depth(&bus, &dead_queue, 3, Duration::from_secs(30)).await,
        3
    );

    // ls: one line each, with the story; listing takes nothing away.
    let listed: Vec<serde_json::Value> = stdout(&um(&ns, &["dlq", "ls", "--json"]).await)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let first = listed
        .iter()
        .find(|l| l["messageId"] == a1.id.as_str())
        .expect("a1 listed");
    let position = |id: &str| listed.iter().position(|l| l["messageId"] == id).unwrap();
    assert!(
        position(&a1.id) < position(&a2.id),
        "in the order they died"
    );
    assert_eq!(first["route"], "to-cx");
    assert_eq!(first["tenant"], "shop.acme");
    assert_eq!(first["conversation"], a1.ordering_key().as_str());
    assert_eq!(first["reason"], "retry budget spent");
    assert!(first["lastError"].as_str().unwrap().contains("503"));
    assert!(first["attempts"].as_i64().unwrap() >= 2);
    assert_eq!(queue_depth(&bus, &dead_queue).await, 3);
    let table = stdout(&um(&ns, &["dlq", "ls", "--tenant", "shop.other"]).await);
    assert!(
        table.contains(&other.id) && !table.contains(&a1.id),
        "{table}"
    );
    let shown = stdout(&um(&ns, &["dlq", "show", &a2.id]).await);
    assert!(shown.contains("\"a2\"") || shown.contains("a2"), "{shown}");
    assert!(
        !um(&ns, &["dlq", "show", "no-such-id"])
            .await
            .status
            .success()
    );

    // The other side is back; a later message of the conversation went on.
    handler.down.store(false, Ordering::SeqCst);
    let a3 = envelope("shop.acme", "a", "a3");
    publisher.publish(&route, &a3).await.unwrap();
    assert!(
        eventually(Duration::from_secs(20), || handler
            .delivered
            .lock()
            .unwrap()
            .len()
            == 1)
        .await
    );

    // replay --tenant: both of shop.acme, in the order they died, delivered
    // although the consumer finished them once (as dead).
    let out = stdout(&um(&ns, &["dlq", "replay", "--tenant", "shop.acme"]).await);
    assert!(out.contains("2 replayed"), "{out}");
    assert!(
        eventually(Duration::from_secs(20), || handler
            .delivered
            .lock()
            .unwrap()
            .len()
            == 3)
        .await,
        "{:?}",
        handler.delivered.lock().unwrap()
    );
    assert_eq!(*handler.delivered.lock().unwrap(), ["a3", "a1", "a2"]);
    assert_eq!(queue_depth(&bus, &dead_queue).await, 1);

    // purge by id: nothing left, nothing delivered.
    let out = stdout(&um(&ns, &["dlq", "purge", &other.id]).await);
    assert!(out.contains("1 purged"), "{out}");
    assert_eq!(queue_depth(&bus, &dead_queue).await, 0);
    assert!(
        stdout(&um(&ns, &["dlq", "ls", "--json"]).await)
            .trim()
            .is_empty()
    );
    // Neither a selection nor --all: refused.
    assert!(!um(&ns, &["dlq", "purge"]).await.status.success());

    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(handler.delivered.lock().unwrap().len(), 3);
}
