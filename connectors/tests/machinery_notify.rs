//! A dead letter is reported to the NotifierDestination subscribed to the
//! `Subscriptions` topic (here a Slack-style incoming webhook on loopback)
//! of its Tenant's namespace, and to no other business's.

mod machinery_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::routing::post;
use machinery_common::*;
use serde_json::Value;
use um_config::{NotifierConfig, Secret, ServiceConfig};
use um_connector::machinery::bus::{
    Consumer, ConsumerOptions, EnvelopeHandler, HandlerError, Route,
};
use um_connector::machinery::envelope::Envelope;

struct AlwaysFails;

#[async_trait]
impl EnvelopeHandler for AlwaysFails {
    async fn handle(&self, _envelope: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        Err(HandlerError::retry("platform keeps answering HTTP 503"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_reported_on_the_subscriptions_topic() {
    let received = Arc::new(Mutex::new(Vec::<Value>::new()));
    let record = received.clone();
    let elsewhere = Arc::new(Mutex::new(Vec::<Value>::new()));
    let record_elsewhere = elsewhere.clone();
    let app = axum::Router::new()
        .route(
            "/hooks/T0KEN",
            post(move |axum::Json(body): axum::Json<Value>| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(body);
                    "ok"
                }
            }),
        )
        .route(
            "/hooks/OTHER",
            post(move |axum::Json(body): axum::Json<Value>| {
                let record = record_elsewhere.clone();
                async move {
                    record.lock().unwrap().push(body);
                    "ok"
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let ns = unique("t-notify");
    let mut config = ServiceConfig::new("telegram");
    // Listed first: had it been chosen, it would have been sent to before
    // the one awaited below.
    config.notifiers.push(NotifierConfig {
        name: "another-business".into(),
        kind: um_config::NotifierKind::Slack,
        topic: um_config::NotifierTopic::Subscriptions,
        target: Secret::new(format!("http://{addr}/hooks/OTHER")),
        namespace: Some("shop-b".into()),
    });
    config.notifiers.push(NotifierConfig {
        name: "ops".into(),
        kind: um_config::NotifierKind::Slack,
        topic: um_config::NotifierTopic::Subscriptions,
        target: Secret::new(format!("http://{addr}/hooks/T0KEN")),
        namespace: Some("shop".into()),
    });
    let runtime = runtime(&ns, config).await;
    let consumer = Consumer::new(
        runtime.bus.clone(),
        Route::ToCx,
        ConsumerOptions {
            max_attempts: 2,
            backoff_initial: Duration::from_millis(20),
            ..ConsumerOptions::default()
        },
    )
    .with_notifier(runtime.notifier(), "telegram");
    let consuming = tokio::spawn(consumer.run(Arc::new(AlwaysFails), runtime.shutdown.clone()));
    let doomed = envelope("shop.acme", "c1", "doomed");
    runtime.publisher.to_cx(&doomed).await.unwrap();

    assert!(
        eventually(Duration::from_secs(20), || !received
            .lock()
            .unwrap()
            .is_empty())
        .await,
        "no notification arrived"
    );
    runtime.shutdown.cancel();
    consuming.await.unwrap();
    server.abort();
    let notices = received.lock().unwrap().clone();
    assert_eq!(notices.len(), 1);
    assert!(
        elsewhere.lock().unwrap().is_empty(),
        "another namespace's destination heard about shop.acme"
    );
    let text = notices[0]["text"].as_str().unwrap();
    assert!(text.starts_with("[telegram] "), "{text}");
    assert!(text.contains(&doomed.id), "{text}");
    assert!(text.contains("shop.acme"), "{text}");
    assert!(text.contains(&format!("{ns}.dead.to-cx")), "{text}");
    assert!(text.contains("HTTP 503"), "{text}");
    assert!(!text.contains("T0KEN"), "{text}");
}
