//! The Redis store against a real Redis: claim/confirm/release semantics of
//! event de-duplication, done markers, namespacing, TTLs.

mod machinery_common;

use std::time::Duration;

use machinery_common::*;
use um_connector::machinery::store::Claim;

#[tokio::test]
async fn a_claimed_event_is_a_duplicate_only_after_confirmation() {
    let service = unique("t-store");
    let store = store(&service).await;
    let Claim::Claimed(token) = store
        .claim_event("shop.acme", "update-1", Duration::from_secs(30))
        .await
        .unwrap()
    else {
        panic!("first claim wins");
    };
    // A concurrent redelivery while the first request is still publishing.
    assert_eq!(
        store
            .claim_event("shop.acme", "update-1", Duration::from_secs(30))
            .await
            .unwrap(),
        Claim::InProgress
    );
    store
        .confirm_event("shop.acme", "update-1", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_event("shop.acme", "update-1", Duration::from_secs(30))
            .await
            .unwrap(),
        Claim::Duplicate
    );
    // Releasing a confirmed event with the old token changes nothing.
    store
        .release_event("shop.acme", "update-1", &token)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_event("shop.acme", "update-1", Duration::from_secs(30))
            .await
            .unwrap(),
        Claim::Duplicate
    );
}

#[tokio::test]
async fn a_failed_publish_releases_the_claim_for_the_redelivery() {
    let service = unique("t-store");
    let store = store(&service).await;
    let Claim::Claimed(token) = store
        .claim_event("shop.acme", "update-2", Duration::from_secs(30))
        .await
        .unwrap()
    else {
        panic!("first claim wins");
    };
    store
        .release_event("shop.acme", "update-2", &token)
        .await
        .unwrap();
    assert!(matches!(
        store
            .claim_event("shop.acme", "update-2", Duration::from_secs(30))
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
}

#[tokio::test]
async fn an_abandoned_claim_expires() {
    let service = unique("t-store");
    let store = store(&service).await;
    assert!(matches!(
        store
            .claim_event("shop.acme", "update-3", Duration::from_millis(200))
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match store
            .claim_event("shop.acme", "update-3", Duration::from_secs(30))
            .await
            .unwrap()
        {
            Claim::Claimed(_) => break,
            Claim::InProgress if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("claim did not expire: {other:?}"),
        }
    }
}

#[tokio::test]
async fn keys_are_namespaced_per_service_and_tenant() {
    let service = unique("t-store");
    let other_service = unique("t-store");
    let store = store(&service).await;
    let other = machinery_common::store(&other_service).await;
    assert_eq!(
        store.key("shop.acme", "token", "oauth"),
        format!("um:{service}:shop.acme:token:oauth")
    );
    store
        .set(
            "shop.acme",
            "token",
            "oauth",
            "abc",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .get("shop.acme", "token", "oauth")
            .await
            .unwrap()
            .as_deref(),
        Some("abc")
    );
    assert_eq!(
        store.get("shop.other", "token", "oauth").await.unwrap(),
        None,
        "other tenant"
    );
    assert_eq!(
        other.get("shop.acme", "token", "oauth").await.unwrap(),
        None,
        "other service"
    );
    // Another installation on the same Redis (its own bus namespace).
    let other_install = machinery_common::store(&service)
        .await
        .in_namespace("um-second");
    assert_eq!(
        other_install.key("shop.acme", "token", "oauth"),
        format!("um-second:{service}:shop.acme:token:oauth")
    );
    assert_eq!(
        other_install
            .get("shop.acme", "token", "oauth")
            .await
            .unwrap(),
        None,
        "other installation"
    );

    store
        .mark_done("shop.acme", "env-1", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(store.is_done("shop.acme", "env-1").await.unwrap());
    assert!(!other.is_done("shop.acme", "env-1").await.unwrap());
    assert!(!store.is_done("shop.acme", "env-2").await.unwrap());

    assert!(
        store
            .set_if_absent(
                "shop.acme",
                "guest",
                "42",
                "conv-1",
                Duration::from_secs(60)
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_if_absent(
                "shop.acme",
                "guest",
                "42",
                "conv-2",
                Duration::from_secs(60)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get("shop.acme", "guest", "42")
            .await
            .unwrap()
            .as_deref(),
        Some("conv-1")
    );
    store.delete("shop.acme", "guest", "42").await.unwrap();
    assert_eq!(store.get("shop.acme", "guest", "42").await.unwrap(), None);

    store
        .set("shop.acme", "short", "x", "1", Duration::from_millis(100))
        .await
        .unwrap();
    assert!(
        eventually_async_none(&store, "shop.acme", "short", "x").await,
        "a value with a TTL disappears"
    );
    store.ping().await.unwrap();
}

async fn eventually_async_none(
    store: &um_connector::machinery::store::Store,
    tenant: &str,
    kind: &str,
    id: &str,
) -> bool {
    for _ in 0..100 {
        if store.get(tenant, kind, id).await.unwrap().is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn connecting_to_nothing_says_where_without_the_password() {
    let result =
        um_connector::machinery::store::Store::connect("redis://:hunter2@127.0.0.1:1/", "t").await;
    let error = result.err().expect("nothing listens on port 1").to_string();
    assert!(error.contains("127.0.0.1:1"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

#[tokio::test]
async fn every_key_has_a_ttl_and_a_deleted_tenant_s_keys_are_purged() {
    let service = unique("t-purge");
    let store = store(&service).await;
    let other = store.clone();
    for id in 0..1500 {
        store
            .set(
                "shop.gone",
                "user",
                &format!("u{id}"),
                "x",
                um_connector::machinery::store::KEPT_TTL,
            )
            .await
            .unwrap();
    }
    store
        .mark_done("shop.gone", "e1", Duration::from_secs(60))
        .await
        .unwrap();
    other
        .set("shop.stays", "user", "u1", "x", Duration::from_secs(60))
        .await
        .unwrap();
    // The kept kind has a TTL too.
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(store.key("shop.gone", "user", "u7"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "a TTL on every key: {ttl}");

    // More keys than one SCAN page.
    assert_eq!(store.purge_tenant("shop.gone").await.unwrap(), 1501);
    assert_eq!(store.get("shop.gone", "user", "u7").await.unwrap(), None);
    assert!(!store.is_done("shop.gone", "e1").await.unwrap());
    assert_eq!(
        other
            .get("shop.stays", "user", "u1")
            .await
            .unwrap()
            .as_deref(),
        Some("x"),
        "another tenant's state stays"
    );
    assert_eq!(store.purge_tenant("shop.gone").await.unwrap(), 0);
}
