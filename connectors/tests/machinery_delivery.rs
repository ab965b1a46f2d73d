//! The outbound side of a platform service: agent → guest envelopes from the
//! bus delivered through the platform trait in order, retried in place,
//! reported back to gcloudcx as receipts, never delivered twice; and tenant
//! changes reaching the platform.

mod machinery_common;

use std::sync::Arc;
use std::time::Duration;

use machinery_common::dummy::{self, DummyPlatform, Plan};
use machinery_common::*;
use um_config::ServiceConfig;
use um_connector::machinery::bus::Route;
use um_connector::machinery::envelope::{Body, Envelope, ReasonCode, ReceiptStatus};
use um_connector::machinery::service::{DeliveryHandler, watch_tenants};

const TENANT: &str = "shop.acme";

fn config() -> ServiceConfig {
    let mut config = ServiceConfig::new("line");
    config
        .tenants
        .insert(TENANT.into(), dummy::tenant(TENANT, "s3cret"));
    config
}

fn guest_envelope(conversation: &str, text: &str) -> Envelope {
    let mut e = envelope(TENANT, conversation, text);
    e.platform = dummy::PLATFORM;
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_are_ordered_retried_reported_and_never_repeated() {
    let ns = unique("t-deliver");
    // "never" is retried (in place, then parked) for 3 s, then dead-lettered.
    let runtime = runtime_env(&ns, config(), &amqp_url(), &[("UM_RETRY_FOR_SECONDS", "3")]).await;
    let platform = Arc::new(DummyPlatform::default());
    platform.plans.lock().unwrap().extend([
        ("slow".to_owned(), Plan::RetryTimes(2)),
        (
            "refused".to_owned(),
            Plan::Permanent(ReasonCode::RecipientOptedOut),
        ),
        ("never".to_owned(), Plan::RetryTimes(1000)),
    ]);
    let handler = Arc::new(DeliveryHandler {
        platform: platform.clone(),
        ctx: runtime.platform_context(),
        publisher: runtime.publisher.clone(),
    });
    let route = Route::ToGuest(dummy::PLATFORM);
    let consuming = tokio::spawn(
        runtime
            .consumer(route)
            .run(handler, runtime.shutdown.clone()),
    );

    let first = guest_envelope("c1", "first");
    let slow = guest_envelope("c2", "slow");
    let after_slow = guest_envelope("c2", "after-slow");
    let refused = guest_envelope("c3", "refused");
    let never = guest_envelope("c4", "never");
    let mut typing = guest_envelope("c1", "typing");
    typing.body = Body::Typing {
        duration_ms: Some(500),
    };
    for e in [&first, &slow, &after_slow, &refused, &never, &typing] {
        runtime.publisher.publish(&route, e).await.unwrap();
    }
    // A redelivery of an envelope already delivered (same id), then a
    // sentinel behind it in the same conversation.
    assert!(
        eventually(Duration::from_secs(20), || platform
            .delivered
            .lock()
            .unwrap()
            .contains(&"first".to_owned()))
        .await
    );
    runtime.publisher.publish(&route, &first).await.unwrap();
    runtime
        .publisher
        .publish(&route, &guest_envelope("c1", "sentinel"))
        .await
        .unwrap();

    assert!(
        eventually(Duration::from_secs(30), || {
            let delivered = platform.delivered.lock().unwrap();
            delivered.contains(&"after-slow".to_owned())
                && delivered.contains(&"sentinel".to_owned())
        })
        .await,
        "{:?}",
        platform.delivered.lock().unwrap()
    );
    // "never" spends its budget with Retry-After 50 ms, then is dead-lettered.
    assert_eq!(
        wait_for_depth(
            &runtime.bus,
            &route.dead_letter_queue(&ns),
            1,
            Duration::from_secs(30)
        )
        .await,
        1
    );
    let delivered = platform.delivered.lock().unwrap().clone();
    let count = |t: &str| delivered.iter().filter(|d| *d == t).count();
    assert_eq!(
        count("first"),
        1,
        "the redelivered envelope was not sent again: {delivered:?}"
    );
    let c2: Vec<&String> = delivered.iter().filter(|d| d.contains("slow")).collect();
    assert_eq!(
        c2,
        ["slow", "after-slow"],
        "the later message waited for the retried one"
    );
    assert_eq!(platform.attempts.lock().unwrap()["slow"], 3);
    let never_attempts = platform.attempts.lock().unwrap()["never"];
    assert!(
        never_attempts > 3,
        "tried in place, parked, released again until the budget was spent: {never_attempts}"
    );
    assert_eq!(count("refused"), 0);

    // Receipts towards gcloudcx: one per message, none for typing.
    runtime.bus.declare(&Route::ToCx).await.unwrap();
    let mut receipts = Vec::new();
    for _ in 0..200 {
        for shard in 0..2 {
            for d in drain(&runtime.bus, &Route::ToCx.shard_queue(&ns, shard)).await {
                receipts.push(serde_json::from_slice::<Envelope>(&d.data).unwrap());
            }
        }
        if receipts.len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runtime.shutdown.cancel();
    consuming.await.unwrap();
    let receipt = |e: &Envelope| {
        receipts
            .iter()
            .find(|r| r.id == format!("{}.receipt", e.id))
            .and_then(|r| match &r.body {
                Body::Receipt(receipt) => Some(receipt.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("receipt for {}: {receipts:?}", text_of(e)))
    };
    assert_eq!(
        receipts.len(),
        6,
        "first, slow, after-slow, sentinel, refused, never: {receipts:?}"
    );
    assert_eq!(receipt(&first).status, ReceiptStatus::Delivered);
    assert_eq!(
        receipt(&first).message_id,
        "origin-first",
        "receipts name the origin message"
    );
    assert_eq!(receipt(&slow).status, ReceiptStatus::Delivered);
    let refused_receipt = receipt(&refused);
    assert_eq!(
        (refused_receipt.status, refused_receipt.reason),
        (ReceiptStatus::Failed, Some(ReasonCode::RecipientOptedOut))
    );
    let never_receipt = receipt(&never);
    assert_eq!(
        (never_receipt.status, never_receipt.reason),
        (ReceiptStatus::Failed, Some(ReasonCode::ServerError))
    );
    assert!(never_receipt.detail.unwrap().contains("429"));
    assert!(
        receipts
            .iter()
            .all(|r| r.direction == um_connector::machinery::envelope::Direction::GuestToAgent)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_changes_reach_the_platform() {
    let ns = unique("t-tenants");
    let runtime = runtime(&ns, config()).await;
    let platform = Arc::new(DummyPlatform::default());
    let watching = tokio::spawn(watch_tenants(
        platform.clone(),
        runtime.platform_context(),
        Duration::from_secs(30),
        runtime.shutdown.clone(),
    ));
    assert!(
        eventually(Duration::from_secs(5), || platform
            .tenants_changed
            .lock()
            .unwrap()
            .len()
            == 1)
        .await,
        "every tenant set up at start"
    );
    let mut next = config();
    next.tenants.get_mut(TENANT).unwrap().display_name = "ACME renamed".into();
    next.tenants
        .insert("shop.new".into(), dummy::tenant("shop.new", "n3w"));
    assert!(runtime.config.replace(next.clone()));
    assert!(
        !runtime.config.replace(next),
        "an identical configuration is no change"
    );
    assert!(
        eventually(Duration::from_secs(5), || platform
            .tenants_changed
            .lock()
            .unwrap()
            .len()
            == 3)
        .await
    );
    let calls = platform.tenants_changed.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            (TENANT.to_owned(), false),
            (TENANT.to_owned(), true),
            ("shop.new".to_owned(), false)
        ]
    );
    runtime.shutdown.cancel();
    watching.await.unwrap();
}
