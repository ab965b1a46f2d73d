//! Removing a run's exchanges and queues from the broker. Every run has a
//! namespace of its own; left behind, its idle quorum queues keep costing
//! the broker CPU, and each later run on the same broker is measured a
//! little slower than the one before.

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use um_config::Platform;
use um_connector::machinery::bus::{Bus, BusSettings, Route, dead_letter_exchange};

use crate::bridge::BUS_SHARDS;

/// Removes the queues of a flood run (both directions).
pub async fn remove_run(amqp: &str, namespace: &str) {
    let bus = Bus::new(
        BusSettings {
            url: amqp.to_owned(),
            shards: BUS_SHARDS,
            connection_name: "um-flood-cleanup".into(),
            namespace: namespace.to_owned(),
        },
        um_connector::machinery::metrics::Metrics::new("flood"),
    );
    remove_routes(&bus, &[Route::ToCx, Route::ToGuest(Platform::Telegram)]).await;
    bus.close().await;
}

/// Deletes the shard queues, exchanges and dead letters of `routes` in the
/// bus's namespace (best effort: a failure is reported, not fatal).
pub async fn remove_routes(bus: &Bus, routes: &[Route]) {
    let Ok(channel) = bus.channel().await else {
        eprintln!(
            "queues of namespace {} not removed: no channel",
            bus.namespace()
        );
        return;
    };
    let ns = bus.namespace().to_owned();
    let mut failed = 0;
    for route in routes {
        for shard in 0..bus.shards() {
            failed += usize::from(
                channel
                    .queue_delete(
                        &route.shard_queue(&ns, shard),
                        QueueDeleteOptions::default(),
                    )
                    .await
                    .is_err(),
            );
        }
        failed += usize::from(
            channel
                .queue_delete(&route.dead_letter_queue(&ns), QueueDeleteOptions::default())
                .await
                .is_err(),
        );
        failed += usize::from(
            channel
                .exchange_delete(&route.exchange(&ns), ExchangeDeleteOptions::default())
                .await
                .is_err(),
        );
    }
    failed += usize::from(
        channel
            .exchange_delete(&dead_letter_exchange(&ns), ExchangeDeleteOptions::default())
            .await
            .is_err(),
    );
    if failed > 0 {
        eprintln!("{failed} queues or exchanges of namespace {ns} not removed");
    }
}
