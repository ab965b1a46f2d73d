//! Bad webhooks are refused with the right status and publish nothing:
//! wrong secret or signature 401, oversized 413, malformed 400, unknown
//! tenant 404 on the Telegram webhook and 503 on the Genesys one (which
//! only Genesys calls, for Tenants the operator registered: one unknown
//! there is most likely on its way, and Genesys retries a 5xx).

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Bridge, BridgeOptions, WEBHOOK_TOKEN, eventually, services};
use um_connector::gcloudcx::signature::sign;
use um_connector::platforms::telegram::webhook_secret::derive_secret_token;
use um_simulators::genesys::OutboundMessageSpec;
use um_simulators::telegram::UpdateSpec;

const WAIT: Duration = Duration::from_secs(20);
const GUEST: i64 = 5151;

fn update(update_id: i64, text: &str) -> serde_json::Value {
    json!({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_800_000_000,
        "from": {"id": GUEST, "is_bot": false, "first_name": "Eve"},
        "chat": {"id": GUEST, "type": "private"}, "text": text}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_webhooks_are_refused_and_publish_nothing() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = Bridge::start(&amqp, &redis, BridgeOptions::default()).await;
    // No connection reuse: after an early 413 the server closes the
    // connection, and a pooled one would race with that.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client");
    let telegram_url = format!(
        "{}/telegram/{}",
        bridge.telegram_connector.base_url(),
        bridge.tenant_key
    );
    let secret = derive_secret_token(&bridge.bot_token);
    let post_update = |url: String, secret: Option<String>, body: Vec<u8>| {
        let client = client.clone();
        async move {
            let mut request = client
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(secret) = secret {
                request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
            }
            request
                .send()
                .await
                .expect("webhook request")
                .status()
                .as_u16()
        }
    };
    let forged = serde_json::to_vec(&update(9_000_001, "forged")).expect("json");

    // Telegram webhook.
    assert_eq!(
        post_update(telegram_url.clone(), None, forged.clone()).await,
        401
    );
    assert_eq!(
        post_update(telegram_url.clone(), Some("0".repeat(64)), forged.clone()).await,
        401
    );
    let other_bot = derive_secret_token("999:another-bot");
    assert_eq!(
        post_update(telegram_url.clone(), Some(other_bot), forged.clone()).await,
        401
    );
    let oversized = serde_json::to_vec(&update(9_000_002, &"x".repeat(300 * 1024))).expect("json");
    assert_eq!(
        post_update(telegram_url.clone(), Some(secret.clone()), oversized).await,
        413
    );
    assert_eq!(
        post_update(
            telegram_url.clone(),
            Some(secret.clone()),
            b"{\"update_id\": ".to_vec()
        )
        .await,
        400
    );
    assert_eq!(
        post_update(
            telegram_url.clone(),
            Some(secret.clone()),
            b"{\"message\": {}}".to_vec()
        )
        .await,
        400
    );
    let unknown = format!(
        "{}/telegram/nobody.here",
        bridge.telegram_connector.base_url()
    );
    assert_eq!(
        post_update(unknown, Some(secret.clone()), forged.clone()).await,
        404
    );

    // A genuine update afterwards is the only thing that reaches Genesys.
    let guest = bridge.guest(GUEST);
    let genuine = bridge
        .telegram
        .send_update(&bridge.bot_token, UpdateSpec::text(&guest, "genuine"))
        .await
        .expect("update sent");
    assert_eq!(genuine.status(), Some(200));
    assert!(eventually(WAIT, || !bridge.inbound_bodies().is_empty()).await);
    // Give anything wrongly published the time to arrive behind it.
    assert!(!eventually(Duration::from_secs(1), || bridge.inbound_bodies().len() > 1).await);
    let bodies = bridge.inbound_bodies();
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    assert_eq!(bodies[0]["text"], "genuine");

    // Genesys webhook.
    let genesys_url = format!(
        "{}/openmessaging/{}",
        bridge.gcloudcx_connector.base_url(),
        bridge.tenant_key
    );
    let agent_message = |id: &str, text: &str| {
        serde_json::to_vec(&json!({
            "id": id, "type": "Text", "text": text, "direction": "Outbound",
            "channel": {"id": bridge.integration_id, "platform": "Open", "type": "Private",
                        "to": {"id": GUEST.to_string(), "idType": "Opaque"},
                        "from": {"id": bridge.integration_id, "idType": "Opaque", "nickname": "Agent"},
                        "time": "2026-11-24T10:00:00.000Z"}}))
        .expect("json")
    };
    let post_agent = |url: String, signature: Option<String>, body: Vec<u8>| {
        let client = client.clone();
        async move {
            let mut request = client
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(signature) = signature {
                request = request.header("X-Hub-Signature-256", signature);
            }
            request
                .send()
                .await
                .expect("webhook request")
                .status()
                .as_u16()
        }
    };
    let forged = agent_message("forged-1", "forged agent text");
    assert_eq!(
        post_agent(genesys_url.clone(), None, forged.clone()).await,
        401
    );
    let wrong_key = sign(b"not-the-integration-token", &forged);
    assert_eq!(
        post_agent(genesys_url.clone(), Some(wrong_key), forged.clone()).await,
        401
    );
    // A valid signature of a different body.
    let other_body = sign(
        WEBHOOK_TOKEN.as_bytes(),
        &agent_message("forged-1", "other"),
    );
    assert_eq!(
        post_agent(genesys_url.clone(), Some(other_body), forged.clone()).await,
        401
    );
    let huge = agent_message("huge-1", &"y".repeat(600 * 1024));
    assert_eq!(
        post_agent(
            genesys_url.clone(),
            Some(sign(WEBHOOK_TOKEN.as_bytes(), &huge)),
            huge
        )
        .await,
        413
    );
    let garbage = b"[1, 2".to_vec();
    assert_eq!(
        post_agent(
            genesys_url.clone(),
            Some(sign(WEBHOOK_TOKEN.as_bytes(), &garbage)),
            garbage
        )
        .await,
        400
    );
    let unknown = format!(
        "{}/openmessaging/nobody.here",
        bridge.gcloudcx_connector.base_url()
    );
    assert_eq!(
        post_agent(
            unknown,
            Some(sign(WEBHOOK_TOKEN.as_bytes(), &forged)),
            forged.clone()
        )
        .await,
        503,
        "a Tenant unknown to gcloudcx may be one whose configuration is on its way: Genesys retries 5xx"
    );

    // A genuine agent message is the only thing that reaches the guest.
    let outcome = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(GUEST.to_string(), "genuine agent text"),
        )
        .await
        .expect("webhook sent");
    assert_eq!(outcome.final_status(), Some(200));
    assert!(eventually(WAIT, || !bridge.telegram.sent_to(GUEST).is_empty()).await);
    assert!(
        !eventually(Duration::from_secs(1), || bridge
            .telegram
            .sent_to(GUEST)
            .len()
            > 1)
        .await
    );
    let sent = bridge.telegram.sent_to(GUEST);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].message["text"], "genuine agent text");
}
