//! The bus against a real RabbitMQ (and Redis for done markers): confirmed
//! publishing, acknowledged consuming, retry in place with back-off, dead
//! letters, per-conversation order under retries and with several
//! consumers.

mod machinery_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use machinery_common::*;
use tokio_util::sync::CancellationToken;
use um_connector::machinery::bus::{
    Consumer, ConsumerOptions, EnvelopeHandler, HandlerError, Publisher, Route,
};
use um_connector::machinery::envelope::Envelope;

#[derive(Default)]
struct Recorder {
    /// text -> number of first attempts that fail with Retry (u32::MAX: always).
    failures: HashMap<String, u32>,
    attempts: Mutex<HashMap<String, Vec<Instant>>>,
    /// (conversation, text, when, consumer) of every successful handling.
    handled: Mutex<Vec<(String, String, Instant, usize)>>,
    given_up: Mutex<Vec<(String, HandlerError)>>,
}

struct RecordingHandler {
    recorder: Arc<Recorder>,
    consumer: usize,
    /// Time one handling takes (lets lanes overlap).
    work: Duration,
}

#[async_trait]
impl EnvelopeHandler for RecordingHandler {
    async fn handle(&self, envelope: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        let text = text_of(envelope);
        let attempts_so_far = {
            let mut attempts = self.recorder.attempts.lock().unwrap();
            let list = attempts.entry(text.clone()).or_default();
            list.push(Instant::now());
            list.len() as u32
        };
        tokio::time::sleep(self.work).await;
        if attempts_so_far <= self.recorder.failures.get(&text).copied().unwrap_or(0) {
            return Err(HandlerError::retry(format!("planned failure of {text}")));
        }
        self.recorder.handled.lock().unwrap().push((
            envelope.conversation.id.clone(),
            text,
            Instant::now(),
            self.consumer,
        ));
        Ok(())
    }

    async fn given_up(
        &self,
        envelope: &Envelope,
        error: &HandlerError,
    ) -> Result<(), HandlerError> {
        self.recorder
            .given_up
            .lock()
            .unwrap()
            .push((text_of(envelope), error.clone()));
        Ok(())
    }
}

fn fast_options(max_attempts: u32) -> ConsumerOptions {
    ConsumerOptions {
        prefetch: 64,
        max_attempts,
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        ..ConsumerOptions::default()
    }
}

fn spawn_consumer(
    consumer: Consumer,
    recorder: &Arc<Recorder>,
    index: usize,
    work: Duration,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let handler = Arc::new(RecordingHandler {
        recorder: recorder.clone(),
        consumer: index,
        work,
    });
    let task = tokio::spawn(consumer.run(handler, shutdown.clone()));
    (shutdown, task)
}

fn texts_of(recorder: &Recorder, conversation: &str) -> Vec<String> {
    recorder
        .handled
        .lock()
        .unwrap()
        .iter()
        .filter(|(c, ..)| c == conversation)
        .map(|(_, t, ..)| t.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirmed_envelopes_are_consumed_once_and_acknowledged() {
    let ns = unique("t-ack");
    let bus = bus(&ns, 2);
    let publisher = Publisher::new(bus.clone());
    let route = Route::ToCx;
    let mut published = Vec::new();
    for i in 0..20 {
        let envelope = envelope("shop.acme", &format!("c{}", i % 5), &format!("m{i}"));
        publisher
            .publish(&route, &envelope)
            .await
            .expect("confirmed");
        published.push(envelope.id);
    }
    // Published before any consumer: the broker holds them durably.
    let waiting = queue_depth(&bus, &route.shard_queue(&ns, 0)).await
        + queue_depth(&bus, &route.shard_queue(&ns, 1)).await;
    assert_eq!(waiting, 20);

    let recorder = Arc::new(Recorder::default());
    let consumer =
        Consumer::new(bus.clone(), route, fast_options(3)).with_done_markers(store(&ns).await);
    let (shutdown, task) = spawn_consumer(consumer, &recorder, 0, Duration::ZERO);
    assert!(
        eventually(Duration::from_secs(20), || recorder
            .handled
            .lock()
            .unwrap()
            .len()
            >= 20)
        .await,
        "handled {} of 20",
        recorder.handled.lock().unwrap().len()
    );
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(
        recorder.handled.lock().unwrap().len(),
        20,
        "no envelope handled twice"
    );
    for shard in 0..2 {
        assert_eq!(
            queue_depth(&bus, &route.shard_queue(&ns, shard)).await,
            0,
            "shard {shard} acknowledged"
        );
    }
    // The done markers name every envelope.
    let store = store(&ns).await;
    for id in &published {
        assert!(
            store.is_done("shop.acme", id).await.unwrap(),
            "done marker for {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_longest_tenant_key_and_a_long_conversation_id_travel_like_any_other() {
    let ns = unique("t-long");
    let bus = bus(&ns, 2);
    let publisher = Publisher::new(bus.clone());
    let route = Route::ToCx;
    // The longest Tenant key Kubernetes allows: a 63-character namespace
    // and a 253-character name; a conversation id longer than a routing key.
    let tenant = format!("{}.{}", "n".repeat(63), "t".repeat(253));
    let conversation = "c".repeat(300);
    for i in 0..3 {
        let long = envelope(&tenant, &conversation, &format!("long-{i}"));
        publisher.publish(&route, &long).await.expect("confirmed");
    }
    // The shared connection survived: an ordinary message still goes.
    let after = envelope("shop.acme", "c1", "after");
    publisher
        .publish(&route, &after)
        .await
        .expect("confirmed after");

    let recorder = Arc::new(Recorder::default());
    let consumer = Consumer::new(bus.clone(), route, fast_options(3));
    let (shutdown, task) = spawn_consumer(consumer, &recorder, 0, Duration::ZERO);
    assert!(
        eventually(Duration::from_secs(20), || recorder
            .handled
            .lock()
            .unwrap()
            .len()
            >= 4)
        .await,
        "handled {:?}",
        recorder.handled.lock().unwrap()
    );
    shutdown.cancel();
    task.await.unwrap();
    let long: Vec<String> = recorder
        .handled
        .lock()
        .unwrap()
        .iter()
        .filter(|(c, ..)| *c == conversation)
        .map(|(_, text, ..)| text.clone())
        .collect();
    assert_eq!(long, ["long-0", "long-1", "long-2"], "in order, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_are_retried_with_back_off_then_dead_lettered() {
    let ns = unique("t-dead");
    let bus = bus(&ns, 1);
    let route = Route::ToCx;
    let recorder = Arc::new(Recorder {
        failures: HashMap::from([("doomed".to_owned(), u32::MAX), ("flaky".to_owned(), 2)]),
        ..Recorder::default()
    });
    let consumer = Consumer::new(bus.clone(), route, fast_options(3));
    let (shutdown, task) = spawn_consumer(consumer, &recorder, 0, Duration::ZERO);
    let publisher = Publisher::new(bus.clone());
    let doomed = envelope("shop.acme", "c1", "doomed");
    publisher.publish(&route, &doomed).await.unwrap();
    publisher
        .publish(&route, &envelope("shop.acme", "c2", "flaky"))
        .await
        .unwrap();

    assert!(
        eventually(Duration::from_secs(20), || {
            !recorder.given_up.lock().unwrap().is_empty()
                && recorder.handled.lock().unwrap().len() == 1
        })
        .await
    );
    let dead_queue = route.dead_letter_queue(&ns);
    assert_eq!(
        wait_for_depth(&bus, &dead_queue, 1, Duration::from_secs(10)).await,
        1,
        "one dead letter"
    );
    shutdown.cancel();
    task.await.unwrap();

    let attempts = recorder
        .attempts
        .lock()
        .unwrap()
        .get("doomed")
        .cloned()
        .unwrap();
    assert_eq!(attempts.len(), 3, "max_attempts bounds the attempts");
    // Back-off 100 ms then 200 ms, ±20 % jitter.
    assert!(
        attempts[1] - attempts[0] >= Duration::from_millis(80),
        "{:?}",
        attempts[1] - attempts[0]
    );
    assert!(
        attempts[2] - attempts[1] >= Duration::from_millis(160),
        "{:?}",
        attempts[2] - attempts[1]
    );
    assert_eq!(
        recorder.attempts.lock().unwrap()["flaky"].len(),
        3,
        "flaky succeeded on its third attempt"
    );
    let given_up = recorder.given_up.lock().unwrap().clone();
    assert_eq!(given_up.len(), 1);
    assert_eq!(given_up[0].0, "doomed");

    let dead = drain(&bus, &dead_queue).await;
    assert_eq!(dead.len(), 1);
    let body: Envelope = serde_json::from_slice(&dead[0].data).unwrap();
    assert_eq!(
        body.id, doomed.id,
        "the dead letter is the original envelope"
    );
    let headers = dead[0].properties.headers().clone().unwrap();
    let text = |name: &str| match headers.inner().get(name) {
        Some(lapin::types::AMQPValue::LongString(s)) => {
            String::from_utf8_lossy(s.as_bytes()).into_owned()
        }
        other => panic!("{name} missing: {other:?}"),
    };
    assert_eq!(text("x-um-dead-reason"), "retry budget spent");
    let reason = text("x-um-last-error");
    assert_eq!(
        headers.inner().get("x-um-attempts"),
        Some(&lapin::types::AMQPValue::LongLongInt(3))
    );
    assert!(reason.contains("planned failure of doomed"), "{reason}");
    assert_eq!(
        dead[0]
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str().to_owned()),
        Some(doomed.id.clone())
    );
    assert_eq!(queue_depth(&bus, &route.shard_queue(&ns, 0)).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_later_message_never_overtakes_one_being_retried() {
    let ns = unique("t-order");
    // One shard: both conversations share a queue, so this also shows that
    // a conversation in retry does not hold up another one.
    let bus = bus(&ns, 1);
    let route = Route::ToGuest(um_config::Platform::Telegram);
    let recorder = Arc::new(Recorder {
        failures: HashMap::from([("a1".to_owned(), 2)]),
        ..Recorder::default()
    });
    let publisher = Publisher::new(bus.clone());
    for text in ["a1", "a2", "a3", "b1", "b2"] {
        let conversation = &text[..1];
        publisher
            .publish(&route, &envelope("shop.acme", conversation, text))
            .await
            .unwrap();
    }
    let consumer = Consumer::new(bus.clone(), route, fast_options(5));
    let (shutdown, task) = spawn_consumer(consumer, &recorder, 0, Duration::from_millis(5));
    assert!(
        eventually(Duration::from_secs(20), || recorder
            .handled
            .lock()
            .unwrap()
            .len()
            == 5)
        .await
    );
    shutdown.cancel();
    task.await.unwrap();

    assert_eq!(texts_of(&recorder, "a"), ["a1", "a2", "a3"]);
    assert_eq!(texts_of(&recorder, "b"), ["b1", "b2"]);
    let handled = recorder.handled.lock().unwrap().clone();
    let at = |text: &str| handled.iter().find(|(_, t, ..)| t == text).unwrap().2;
    let attempts = recorder.attempts.lock().unwrap().clone();
    assert_eq!(attempts["a1"].len(), 3);
    assert!(
        attempts["a2"][0] >= at("a1"),
        "a2 was not even tried before a1 succeeded"
    );
    assert!(
        at("b2") < at("a1"),
        "conversation b went on while a1 was being retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn order_per_conversation_holds_with_several_consumers_and_a_failover() {
    const CONVERSATIONS: usize = 12;
    const PER_CONVERSATION: usize = 20;
    let ns = unique("t-replicas");
    let route = Route::ToCx;
    let mut failures = HashMap::new();
    for c in 0..CONVERSATIONS {
        for s in (3..PER_CONVERSATION).step_by(7) {
            failures.insert(format!("c{c}-{s:02}"), 1);
        }
    }
    let recorder = Arc::new(Recorder {
        failures,
        ..Recorder::default()
    });
    // Three replicas, each with its own connection, as three pods would.
    // The first one starts alone, so it is the active consumer of every
    // shard; the other two join as standbys.
    let replica = |index: usize| {
        let ns = ns.clone();
        let recorder = recorder.clone();
        async move {
            let consumer = Consumer::new(bus(&ns, 4), route, fast_options(5))
                .with_done_markers(store(&ns).await);
            spawn_consumer(consumer, &recorder, index, Duration::from_millis(15))
        }
    };
    let mut replicas = vec![replica(0).await];
    let publisher = Publisher::new(bus(&ns, 4));
    let publishing: Vec<_> = (0..CONVERSATIONS)
        .map(|c| {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                for s in 0..PER_CONVERSATION {
                    let e = envelope("shop.acme", &format!("c{c}"), &format!("c{c}-{s:02}"));
                    publisher.publish(&Route::ToCx, &e).await.unwrap();
                }
            })
        })
        .collect();
    let handled = |n: usize| {
        let recorder = recorder.clone();
        move || recorder.handled.lock().unwrap().len() >= n
    };
    assert!(eventually(Duration::from_secs(30), handled(20)).await);
    replicas.push(replica(1).await);
    replicas.push(replica(2).await);
    // Stop the first replica while work is under way: its shards fail over.
    assert!(eventually(Duration::from_secs(30), handled(60)).await);
    let (first_shutdown, first_task) = replicas.remove(0);
    first_shutdown.cancel();
    first_task.await.unwrap();
    for p in publishing {
        p.await.unwrap();
    }
    let total = CONVERSATIONS * PER_CONVERSATION;
    assert!(
        eventually(Duration::from_secs(60), || recorder
            .handled
            .lock()
            .unwrap()
            .len()
            >= total)
        .await,
        "handled {} of {total}",
        recorder.handled.lock().unwrap().len()
    );
    for (shutdown, task) in replicas {
        shutdown.cancel();
        task.await.unwrap();
    }
    assert_eq!(
        recorder.handled.lock().unwrap().len(),
        total,
        "nothing handled twice"
    );
    let handled = recorder.handled.lock().unwrap().clone();
    let failed_over = (0..CONVERSATIONS).any(|c| {
        let by = |consumer: usize| {
            handled
                .iter()
                .any(|(conv, _, _, index)| *conv == format!("c{c}") && *index == consumer)
        };
        by(0) && (by(1) || by(2))
    });
    assert!(
        failed_over,
        "some conversation moved from the stopped replica to a standby"
    );
    for c in 0..CONVERSATIONS {
        let expected: Vec<String> = (0..PER_CONVERSATION)
            .map(|s| format!("c{c}-{s:02}"))
            .collect();
        assert_eq!(
            texts_of(&recorder, &format!("c{c}")),
            expected,
            "order of conversation c{c}"
        );
    }
}
