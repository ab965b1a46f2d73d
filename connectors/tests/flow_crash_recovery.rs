//! The gcloudcx process is killed (SIGKILL) while 1,000 guest messages are
//! in flight and started again: every message reaches Genesys, in order per
//! conversation, and nothing arrives twice except a post that was under
//! way at the moment of the kill (with the same `channel.messageId`,
//! Genesys' idempotency key).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use support::{Bridge, BridgeOptions, eventually, services};
use um_simulators::telegram::UpdateSpec;

const GUESTS: i64 = 50;
const PER_GUEST: usize = 20;
const TOTAL: usize = GUESTS as usize * PER_GUEST;
const KILL_AFTER: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_gcloudcx_loses_nothing_and_repeats_nothing() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let mut bridge = Bridge::start(&amqp, &redis, BridgeOptions::default()).await;

    // With gcloudcx down, the 1,000 messages pile up on the bus.
    bridge.gcloudcx_connector.kill().await;
    let guests: Vec<_> = (0..GUESTS).map(|i| bridge.guest(7_000 + i)).collect();
    let accepted = futures::stream::iter(guests.iter())
        .map(|guest| {
            let bridge = &bridge;
            async move {
                let mut ok = 0;
                for n in 0..PER_GUEST {
                    let delivery = bridge
                        .telegram
                        .send_update(
                            &bridge.bot_token,
                            UpdateSpec::text(guest, format!("m{n:03}")),
                        )
                        .await
                        .expect("update sent");
                    ok += usize::from(delivery.status() == Some(200));
                }
                ok
            }
        })
        .buffer_unordered(GUESTS as usize)
        .fold(0, |sum, ok| async move { sum + ok })
        .await;
    assert_eq!(accepted, TOTAL, "every webhook answered 200");
    assert!(bridge.inbound_bodies().is_empty());

    // gcloudcx takes them all at once (prefetch), and dies once a good part
    // has arrived, with the rest in flight.
    bridge.gcloudcx_connector.restart().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while bridge.inbound_bodies().len() < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "nothing arrived after the restart"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    bridge.gcloudcx_connector.kill().await;
    let at_kill = bridge.inbound_bodies().len();
    assert!(
        at_kill < TOTAL,
        "all {TOTAL} arrived before the kill; nothing was in flight"
    );

    bridge.gcloudcx_connector.restart().await;
    let all_there = || {
        let mut ids: Vec<String> = bridge
            .inbound_bodies()
            .iter()
            .filter_map(|body| body["channel"]["messageId"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        ids.len() >= TOTAL
    };
    assert!(
        eventually(Duration::from_secs(60), all_there).await,
        "only {} distinct of {TOTAL} arrived",
        bridge.inbound_bodies().len()
    );

    let bodies = bridge.inbound_bodies();
    let mut copies: HashMap<String, usize> = HashMap::new();
    let mut first_body: HashMap<String, &serde_json::Value> = HashMap::new();
    let mut repeats_per_guest: HashMap<String, usize> = HashMap::new();
    let mut first_seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for body in &bodies {
        let id = body["channel"]["messageId"]
            .as_str()
            .expect("messageId")
            .to_owned();
        // A repeat is the very same request (same messageId and time),
        // so a receiver keyed on the provider's message id drops it.
        let first = *first_body.entry(id.clone()).or_insert(body);
        assert_eq!(first, body, "a repeat of {id} differs from the first post");
        let count = copies.entry(id).or_default();
        *count += 1;
        if *count > 1 {
            let guest = body["channel"]["from"]["id"].as_str().expect("from.id");
            *repeats_per_guest.entry(guest.to_owned()).or_default() += 1;
        }
        if *count == 1 {
            let guest = body["channel"]["from"]["id"]
                .as_str()
                .expect("from.id")
                .to_owned();
            let text = body["text"].as_str().expect("text").to_owned();
            first_seen.entry(guest).or_default().push(text);
        }
    }
    assert_eq!(copies.len(), TOTAL, "distinct messages");
    let repeated: usize = copies.values().map(|n| n - 1).sum();
    // At most the one post per conversation that was under way at the kill.
    assert!(
        repeated <= GUESTS as usize,
        "{repeated} repeated posts (at most {GUESTS} in flight at the kill)"
    );
    assert!(
        repeats_per_guest.values().all(|&n| n <= 1),
        "more than the one in-flight post of a conversation repeated: {repeats_per_guest:?}"
    );
    let expected: Vec<String> = (0..PER_GUEST).map(|n| format!("m{n:03}")).collect();
    for (guest, texts) in &first_seen {
        assert_eq!(texts, &expected, "order of guest {guest}");
    }
    eprintln!(
        "crash recovery: {at_kill} of {TOTAL} had arrived at the kill; {} posts in total, {repeated} repeated",
        bodies.len()
    );
}
