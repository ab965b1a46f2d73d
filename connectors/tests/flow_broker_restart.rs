//! The broker restarts while guest messages flow: every webhook that was
//! answered 2xx reaches Genesys, and the updates refused during the outage
//! are accepted on Telegram's redelivery. Needs `UM_TEST_BROKER_RESTART`
//! (a shell command that restarts the test broker, from e2e/services.sh).

mod support;

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use support::{Bridge, BridgeOptions, eventually, services};
use um_simulators::genesys::OutboundMessageSpec;
use um_simulators::telegram::{RedeliveryPolicy, UpdateSpec};

const GUESTS: i64 = 10;
const PER_GUEST: usize = 40;
const TOTAL: usize = GUESTS as usize * PER_GUEST;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_restart_loses_nothing_accepted() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let restart_command = std::env::var("UM_TEST_BROKER_RESTART").expect(
        "UM_TEST_BROKER_RESTART is not set: e2e/services.sh sets it (run through e2e/run-tests)",
    );
    let bridge = Bridge::start(&amqp, &redis, BridgeOptions::default()).await;
    // Telegram keeps redelivering a refused update, long enough to outlast
    // the restart.
    bridge.telegram.set_redelivery(RedeliveryPolicy {
        max_attempts: 120,
        interval: Duration::from_millis(500),
        timeout: Duration::from_secs(10),
    });
    let guests: Vec<_> = (0..GUESTS).map(|i| bridge.guest(8_000 + i)).collect();

    let sending = async {
        futures::stream::iter(guests.iter())
            .map(|guest| {
                let bridge = &bridge;
                async move {
                    let mut deliveries = Vec::new();
                    for n in 0..PER_GUEST {
                        let delivery = bridge
                            .telegram
                            .send_update(
                                &bridge.bot_token,
                                UpdateSpec::text(guest, format!("m{n:03}")),
                            )
                            .await
                            .expect("update sent");
                        deliveries.push(delivery);
                        // Paced so the flow spans the restart (~10 s).
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    deliveries
                }
            })
            .buffer_unordered(GUESTS as usize)
            .concat()
            .await
    };
    let restarting = async {
        assert!(
            eventually(Duration::from_secs(30), || bridge.inbound_bodies().len()
                >= 30)
            .await,
            "the flow did not start"
        );
        let at_restart = bridge.inbound_bodies().len();
        let status = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(&restart_command)
            .status()
            .await
            .expect("restart command runs");
        assert!(status.success(), "broker restart failed: {status}");
        (at_restart, bridge.inbound_bodies().len())
    };
    let (deliveries, (at_restart, after_restart)) = tokio::join!(sending, restarting);
    assert!(
        after_restart < TOTAL,
        "the flow ended before the broker was back: nothing tested"
    );

    let refused_at_first = deliveries.iter().filter(|d| d.attempts.len() > 1).count();
    let accepted: HashSet<String> = deliveries
        .iter()
        .filter(|d| d.delivered)
        .map(|d| d.update_id.to_string())
        .collect();
    assert_eq!(
        accepted.len(),
        TOTAL,
        "every update is accepted, at the latest on redelivery"
    );

    let arrived = || -> HashSet<String> {
        bridge
            .inbound_bodies()
            .iter()
            .filter_map(|body| body["channel"]["messageId"].as_str())
            .filter_map(|id| id.rsplit(':').next().map(str::to_owned))
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(90), || arrived().is_superset(&accepted)).await,
        "{} of {TOTAL} accepted updates arrived",
        arrived().intersection(&accepted).count()
    );

    // The way back works after the restart too.
    let outcome = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text("8000", "back"),
        )
        .await
        .expect("webhook sent");
    assert_eq!(outcome.final_status(), Some(200));
    assert!(
        eventually(Duration::from_secs(30), || bridge
            .telegram
            .sent_to(8000)
            .iter()
            .any(|sent| sent.message["text"] == "back"))
        .await
    );
    eprintln!(
        "broker restart: {at_restart} of {TOTAL} had arrived when it began, {after_restart} when it ended; \
         {refused_at_first} updates were refused at first and accepted on redelivery"
    );
}
