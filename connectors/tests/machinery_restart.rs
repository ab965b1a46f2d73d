//! A broker restart while publishing and consuming: every confirmed
//! envelope is handled exactly once, in order per conversation, and both
//! sides reconnect by themselves. A test binary of its own, so the restart
//! does not disturb the other bus tests (cargo runs test binaries one after
//! the other).

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

struct Recording {
    handled: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl EnvelopeHandler for Recording {
    async fn handle(&self, envelope: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        self.handled
            .lock()
            .unwrap()
            .push((envelope.conversation.id.clone(), text_of(envelope)));
        Ok(())
    }
}

fn restart_command() -> String {
    match std::env::var("UM_TEST_BROKER_RESTART") {
        Ok(command) if !command.is_empty() => command,
        _ => panic!(
            "UM_TEST_BROKER_RESTART is not set: run this test through e2e/run-tests (stage 10-rust sets it \
             from e2e/services.sh)"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_confirmed_is_lost_or_duplicated_across_a_broker_restart() {
    const CONVERSATIONS: usize = 6;
    // Every publisher goes on until the restart is over and then publishes
    // this many more, so the outage falls inside the publishing however slow
    // the machine (a fixed count finished before the broker stopped under
    // load).
    const AFTER_RESTART: usize = 10;
    let restart = restart_command();
    let ns = unique("t-restart");
    let bus = bus(&ns, 2);
    let recording = Arc::new(Recording {
        handled: Mutex::new(Vec::new()),
    });
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(
        bus.clone(),
        Route::ToCx,
        ConsumerOptions {
            prefetch: 32,
            ..ConsumerOptions::default()
        },
    )
    .with_done_markers(store(&ns).await);
    let consuming = tokio::spawn(consumer.run(recording.clone(), shutdown.clone()));

    // Long enough to ride out a restart (~10 s here).
    let publisher = Publisher::new(bus.clone()).with_timeout(Duration::from_secs(90));
    let confirmed = Arc::new(Mutex::new(Vec::new()));
    let restart_done = Arc::new(AtomicBool::new(false));
    let publishing: Vec<_> = (0..CONVERSATIONS)
        .map(|c| {
            let publisher = publisher.clone();
            let confirmed = confirmed.clone();
            let restart_done = restart_done.clone();
            tokio::spawn(async move {
                let mut after_restart = 0;
                let mut s = 0;
                while after_restart < AFTER_RESTART {
                    if restart_done.load(Ordering::SeqCst) {
                        after_restart += 1;
                    }
                    let text = format!("c{c}-{s:03}");
                    let e = envelope("shop.acme", &format!("c{c}"), &text);
                    publisher
                        .publish(&Route::ToCx, &e)
                        .await
                        .unwrap_or_else(|error| panic!("{text} not confirmed: {error}"));
                    confirmed.lock().unwrap().push(text);
                    s += 1;
                    // Spread the publishing over the restart.
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                s
            })
        })
        .collect();

    assert!(
        eventually(Duration::from_secs(30), || recording
            .handled
            .lock()
            .unwrap()
            .len()
            >= 40)
        .await
    );
    let status = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&restart)
        .status()
        .await
        .expect("restart command runs");
    assert!(status.success(), "{restart} failed: {status}");
    let confirmed_before_restart_done = confirmed.lock().unwrap().len();
    restart_done.store(true, Ordering::SeqCst);
    let mut per_conversation = Vec::new();
    for p in publishing {
        per_conversation.push(
            p.await
                .expect("every publish confirmed despite the restart"),
        );
    }
    let total: usize = per_conversation.iter().sum();
    assert!(
        confirmed_before_restart_done < total,
        "the restart happened while publishing"
    );
    assert!(
        eventually(Duration::from_secs(90), || recording
            .handled
            .lock()
            .unwrap()
            .len()
            >= total)
        .await,
        "handled {} of {total} after the restart",
        recording.handled.lock().unwrap().len()
    );
    // Let a late duplicate show up if there were one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.cancel();
    consuming.await.unwrap();

    let handled = recording.handled.lock().unwrap().clone();
    assert_eq!(
        handled.len(),
        total,
        "each confirmed envelope handled exactly once"
    );
    for (c, &published) in per_conversation.iter().enumerate() {
        let expected: Vec<String> = (0..published).map(|s| format!("c{c}-{s:03}")).collect();
        let got: Vec<String> = handled
            .iter()
            .filter(|(conv, _)| *conv == format!("c{c}"))
            .map(|(_, t)| t.clone())
            .collect();
        assert_eq!(got, expected, "order of conversation c{c}");
    }
    for shard in 0..2 {
        assert_eq!(
            queue_depth(&bus, &Route::ToCx.shard_queue(&ns, shard)).await,
            0
        );
    }
}
