//! Parking over real RabbitMQ and Redis: a conversation whose delivery
//! keeps failing waits in Redis instead of the broker's prefetch window,
//! other conversations go on, its later messages wait behind it, a new
//! consumer process releases it in order, and a spent retry budget
//! dead-letters with the reason, conversation, attempts and last error.

mod machinery_common;

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

/// Fails every message of conversation `a` while `down`; records the texts
/// it delivered, in order.
#[derive(Default)]
struct Flaky {
    down: AtomicBool,
    delivered: Mutex<Vec<String>>,
    attempts: Mutex<Vec<String>>,
}

#[async_trait]
impl EnvelopeHandler for Flaky {
    async fn handle(&self, envelope: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        let text = text_of(envelope);
        self.attempts.lock().unwrap().push(text.clone());
        if envelope.conversation.id == "a" && self.down.load(Ordering::SeqCst) {
            return Err(HandlerError::retry("the other side answers 503"));
        }
        self.delivered.lock().unwrap().push(text);
        Ok(())
    }
}

fn options() -> ConsumerOptions {
    ConsumerOptions {
        // Far fewer than conversation a's waiting messages: without
        // parking they would fill the window and b would never be seen.
        prefetch: 4,
        park_after: 2,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(300),
        ..ConsumerOptions::default()
    }
}

fn texts(handler: &Flaky, prefix: &str) -> Vec<String> {
    handler
        .delivered
        .lock()
        .unwrap()
        .iter()
        .filter(|t| t.starts_with(prefix))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_conversation_waits_in_the_lot_and_others_go_on() {
    let ns = unique("t-park");
    let bus = bus(&ns, 1);
    let route = Route::ToCx;
    let publisher = Publisher::new(bus.clone());
    let a: Vec<String> = (1..=20).map(|i| format!("a{i:02}")).collect();
    let b: Vec<String> = (1..=20).map(|i| format!("b{i:02}")).collect();
    // All of a first, then all of b, on one shard.
    for text in a.iter().chain(&b) {
        publisher
            .publish(&route, &envelope("shop.acme", &text[..1], text))
            .await
            .unwrap();
    }

    let first = Arc::new(Flaky::default());
    first.down.store(true, Ordering::SeqCst);
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(bus.clone(), route, options()).with_done_markers(store(&ns).await);
    let task = tokio::spawn(consumer.run(first.clone(), shutdown.clone()));
    assert!(
        eventually(Duration::from_secs(30), || texts(&first, "b").len() == 20).await,
        "conversation b was held up behind a: {:?}",
        first.delivered.lock().unwrap()
    );
    // Everything of a left the broker for the lot.
    assert_eq!(
        wait_for_depth(&bus, &route.shard_queue(&ns, 0), 0, Duration::from_secs(10)).await,
        0
    );
    assert!(texts(&first, "a").is_empty());
    // The first process stops while a is still failing.
    shutdown.cancel();
    task.await.unwrap();
    assert!(
        first
            .attempts
            .lock()
            .unwrap()
            .iter()
            .all(|t| t == "a01" || t.starts_with('b')),
        "only the head of a was tried: {:?}",
        first.attempts.lock().unwrap()
    );

    // Another process, with the other side back, releases a in order.
    let second = Arc::new(Flaky::default());
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(bus.clone(), route, options()).with_done_markers(store(&ns).await);
    let task = tokio::spawn(consumer.run(second.clone(), shutdown.clone()));
    assert!(
        eventually(Duration::from_secs(30), || texts(&second, "a").len() == 20).await,
        "{:?}",
        second.delivered.lock().unwrap()
    );
    assert_eq!(texts(&second, "a"), a, "in order, once each");
    assert!(texts(&second, "b").is_empty(), "b was not delivered again");
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(queue_depth(&bus, &route.dead_letter_queue(&ns)).await, 0);
}

fn header(delivery: &lapin::message::Delivery, name: &str) -> Option<lapin::types::AMQPValue> {
    delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(name).cloned())
}

fn header_text(delivery: &lapin::message::Delivery, name: &str) -> String {
    match header(delivery, name) {
        Some(lapin::types::AMQPValue::LongString(s)) => {
            String::from_utf8_lossy(s.as_bytes()).into_owned()
        }
        other => panic!("{name} missing: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spent_retry_budget_dead_letters_with_its_story_in_order() {
    let ns = unique("t-budget");
    let bus = bus(&ns, 1);
    let route = Route::ToCx;
    let publisher = Publisher::new(bus.clone());
    let first = envelope("shop.acme", "a", "a1");
    let second = envelope("shop.acme", "a", "a2");
    publisher.publish(&route, &first).await.unwrap();
    publisher.publish(&route, &second).await.unwrap();

    let handler = Arc::new(Flaky::default());
    handler.down.store(true, Ordering::SeqCst);
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(
        bus.clone(),
        route,
        ConsumerOptions {
            retry_for: Duration::from_millis(1500),
            ..options()
        },
    )
    .with_done_markers(store(&ns).await);
    let task = tokio::spawn(consumer.run(handler.clone(), shutdown.clone()));
    let dead_queue = route.dead_letter_queue(&ns);
    assert_eq!(
        wait_for_depth(&bus, &dead_queue, 2, Duration::from_secs(30)).await,
        2
    );
    shutdown.cancel();
    task.await.unwrap();

    let dead = drain(&bus, &dead_queue).await;
    let ids: Vec<String> = dead
        .iter()
        .map(|d| serde_json::from_slice::<Envelope>(&d.data).unwrap().id)
        .collect();
    assert_eq!(
        ids,
        [first.id.clone(), second.id.clone()],
        "in conversation order"
    );
    for letter in &dead {
        assert_eq!(
            header_text(letter, "x-um-dead-reason"),
            "retry budget spent"
        );
        assert_eq!(
            header_text(letter, "x-um-conversation"),
            first.ordering_key()
        );
        assert_eq!(header_text(letter, "x-um-tenant"), "shop.acme");
        assert!(header_text(letter, "x-um-last-error").contains("503"));
        match header(letter, "x-um-attempts") {
            // Two in place, then at least one from the lot.
            Some(lapin::types::AMQPValue::LongLongInt(n)) => assert!(n >= 3, "{n}"),
            other => panic!("x-um-attempts: {other:?}"),
        }
    }
    // The second waited behind the first: never tried before it was given up.
    let attempts = handler.attempts.lock().unwrap().clone();
    let last_a1 = attempts.iter().rposition(|t| t == "a1").unwrap();
    let first_a2 = attempts.iter().position(|t| t == "a2").unwrap();
    assert!(last_a1 < first_a2, "{attempts:?}");
    assert!(handler.delivered.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_working_delivery_of_the_tenant_makes_its_parked_conversations_due_at_once() {
    let ns = unique("t-hurry");
    let bus = bus(&ns, 1);
    let route = Route::ToCx;
    let publisher = Publisher::new(bus.clone());
    let handler = Arc::new(Flaky::default());
    handler.down.store(true, Ordering::SeqCst);
    let shutdown = CancellationToken::new();
    // The first retry of a parked conversation would come after 20 s.
    let consumer = Consumer::new(
        bus.clone(),
        route,
        ConsumerOptions {
            backoff_initial: Duration::from_secs(20),
            backoff_max: Duration::from_secs(20),
            ..options()
        },
    )
    .with_done_markers(store(&ns).await);
    let task = tokio::spawn(consumer.run(handler.clone(), shutdown.clone()));
    publisher
        .publish(&route, &envelope("shop.acme", "a", "a1"))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || !handler
            .attempts
            .lock()
            .unwrap()
            .is_empty())
        .await
    );
    // Parked (it left the broker) after its first failure.
    assert_eq!(
        wait_for_depth(&bus, &route.shard_queue(&ns, 0), 0, Duration::from_secs(10)).await,
        0
    );
    handler.down.store(false, Ordering::SeqCst);
    let back = std::time::Instant::now();
    // Another conversation of the same Tenant goes through ...
    publisher
        .publish(&route, &envelope("shop.acme", "b", "b1"))
        .await
        .unwrap();
    // ... so the parked one is tried at once, not 20 s later.
    assert!(
        eventually(Duration::from_secs(10), || texts(&handler, "a") == ["a1"]).await,
        "{:?}",
        handler.delivered.lock().unwrap()
    );
    assert!(back.elapsed() < Duration::from_secs(10));
    shutdown.cancel();
    task.await.unwrap();
}
