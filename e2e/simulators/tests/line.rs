//! Drives the LINE simulator over real HTTP: signatures, reply tokens,
//! push retry keys, validation limits, content, profiles, faults, the
//! webhook endpoint, redelivery and the (proposed) Switcher.

mod support;

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use support::Receiver;
use um_simulators::line::{
    ChannelSpec, Guest, LineError, LineOptions, LineRecordKind, LineSimulator, RedeliveryPolicy,
    SwitcherSpec,
};

const CHANNEL: &str = "1650000001";
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "long-lived-token";

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn start() -> LineSimulator {
    LineSimulator::start(
        LineOptions {
            redelivery: RedeliveryPolicy {
                max_attempts: 3,
                interval: Duration::from_millis(20),
                timeout: Duration::from_secs(2),
            },
            ..LineOptions::default()
        }
        .with_channel(
            ChannelSpec::new(CHANNEL, SECRET)
                .with_access_token(TOKEN)
                .with_switcher(SwitcherSpec {
                    service_code: "svc-1".into(),
                    secret: "switch-secret".into(),
                    destinations: vec!["dest-1".into()],
                }),
        ),
    )
    .await
    .unwrap()
}

async fn post(
    sim: &LineSimulator,
    path: &str,
    body: Value,
    retry_key: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = http()
        .post(format!("{}{path}", sim.base_url()))
        .bearer_auth(TOKEN)
        .json(&body);
    if let Some(key) = retry_key {
        request = request.header("X-Line-Retry-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

fn text(text: &str) -> Value {
    json!([{"type": "text", "text": text}])
}

fn expected_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn webhook_is_signed_and_redelivered_with_the_same_event_id() {
    let sim = start().await;
    let receiver = Receiver::start().await;
    sim.set_webhook_url(CHANNEL, &receiver.url).unwrap();
    receiver.script(&[500]);
    let guest = Guest::new("Bob");
    let event = sim.text_event(CHANNEL, &guest, "hello");
    let delivery = sim.send_events(CHANNEL, vec![event]).await.unwrap();
    assert!(delivery.delivered, "{delivery:?}");
    assert_eq!(delivery.attempts.len(), 2);
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    for (index, request) in received.iter().enumerate() {
        let signature = request.headers["x-line-signature"].to_str().unwrap();
        assert_eq!(signature, expected_signature(&request.body));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let event = &body["events"][0];
        assert_eq!(event["message"]["text"], "hello");
        assert_eq!(event["source"]["userId"], guest.user_id.as_str());
        assert_eq!(event["deliveryContext"]["isRedelivery"], index == 1);
        assert_eq!(event["webhookEventId"].as_str().unwrap().len(), 26);
    }
    let first: Value = serde_json::from_slice(&received[0].body).unwrap();
    let second: Value = serde_json::from_slice(&received[1].body).unwrap();
    assert_eq!(
        first["events"][0]["webhookEventId"],
        second["events"][0]["webhookEventId"]
    );
    assert!(
        sim.wait_for(LineRecordKind::Webhook, 2, Duration::from_secs(1))
            .await
    );
}

#[tokio::test]
async fn reply_token_is_one_use_and_expires() {
    let sim = start().await;
    let guest = Guest::new("Ann");
    let event = sim.text_event(CHANNEL, &guest, "hi");
    let token = event["replyToken"].as_str().unwrap().to_owned();
    let (status, headers, body) = post(
        &sim,
        "/v2/bot/message/reply",
        json!({"replyToken": token, "messages": text("a")}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers.contains_key("x-line-request-id"));
    assert_eq!(body["sentMessages"].as_array().unwrap().len(), 1);
    let sent = sim.sent_to(&guest.user_id);
    assert_eq!((sent.len(), sent[0].via.as_str()), (1, "reply"));

    let (status, _, body) = post(
        &sim,
        "/v2/bot/message/reply",
        json!({"replyToken": token, "messages": text("b")}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Invalid reply token");

    sim.set_reply_token_ttl(Duration::ZERO);
    let stale = sim.text_event(CHANNEL, &guest, "again");
    let (status, _, _) = post(
        &sim,
        "/v2/bot/message/reply",
        json!({"replyToken": stale["replyToken"], "messages": text("c")}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let fresh = sim.text_event(CHANNEL, &guest, "more");
    sim.set_reply_token_ttl(Duration::from_secs(60));
    let (status, _, body) = post(
        &sim,
        "/v2/bot/message/reply",
        json!({"replyToken": fresh["replyToken"], "messages": text("d")}),
        Some("123e4567-e89b-12d3-a456-426614174000"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a retry key is refused on reply"
    );
    assert!(body["message"].as_str().unwrap().contains("retry key"));
}

#[tokio::test]
async fn push_with_the_same_retry_key_is_sent_once() {
    let sim = start().await;
    let guest = Guest::new("Cid");
    let key = "123e4567-e89b-12d3-a456-426614174000";
    let body = json!({"to": guest.user_id, "messages": text("once")});
    let (status, first_headers, first) =
        post(&sim, "/v2/bot/message/push", body.clone(), Some(key)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, second) =
        post(&sim, "/v2/bot/message/push", body.clone(), Some(key)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(second["message"], "The retry key is already accepted");
    assert_eq!(
        headers["x-line-accepted-request-id"],
        first_headers["x-line-request-id"]
    );
    assert_eq!(
        second["sentMessages"][0]["id"],
        first["sentMessages"][0]["id"]
    );
    assert_eq!(sim.sent_to(&guest.user_id).len(), 1);

    let (status, _, body) = post(&sim, "/v2/bot/message/push", body, Some("not-a-uuid")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Without a key nothing stops a repeat.
    let again = json!({"to": guest.user_id, "messages": text("twice")});
    post(&sim, "/v2/bot/message/push", again.clone(), None).await;
    post(&sim, "/v2/bot/message/push", again, None).await;
    assert_eq!(sim.sent_to(&guest.user_id).len(), 3);
}

#[tokio::test]
async fn validation_limits_and_errors() {
    let sim = start().await;
    let to = Guest::new("Dee").user_id;
    let six: Vec<Value> = (0..6)
        .map(|i| json!({"type": "text", "text": format!("{i}")}))
        .collect();
    let (status, _, body) = post(
        &sim,
        "/v2/bot/message/push",
        json!({"to": to, "messages": six}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "The request body has 1 error(s)");
    assert_eq!(body["details"][0]["property"], "messages");

    let long = json!([{"type": "text", "text": "x".repeat(5001)}]);
    let (status, _, body) = post(
        &sim,
        "/v2/bot/message/push",
        json!({"to": to, "messages": long}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"][0]["property"], "messages[0].text");

    let (status, _, body) = post(
        &sim,
        "/v2/bot/message/push",
        json!({"to": "nobody", "messages": text("x")}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"][0]["property"], "to");

    let response = http()
        .post(format!("{}/v2/bot/message/push", sim.base_url()))
        .bearer_auth("wrong")
        .json(&json!({"to": to, "messages": text("x")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    sim.inject_rate_limit(Some("push"), 1);
    let (status, _, body) = post(
        &sim,
        "/v2/bot/message/push",
        json!({"to": to, "messages": text("x")}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        body["message"],
        "The API rate limit has been exceeded. Try again later."
    );
    let (status, _, _) = post(
        &sim,
        "/v2/bot/message/push",
        json!({"to": to, "messages": text("x")}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the fault is spent");
    sim.inject_error(None, LineError::monthly_limit(), 1);
    let (status, _, body) = post(
        &sim,
        "/v2/bot/message/push",
        json!({"to": to, "messages": text("x")}),
        None,
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("You have reached your monthly limit.")
        )
    );
}

#[tokio::test]
async fn content_profile_token_endpoint_info() {
    let sim = start().await;
    let guest = Guest::new("Eve").with_language("ja");
    sim.add_user(&guest);
    let event = sim.image_event(CHANNEL, &guest, vec![1u8, 2, 3, 4], "image/jpeg");
    let id = event["message"]["id"].as_str().unwrap();
    assert_eq!(event["message"]["contentProvider"]["type"], "line");
    let response = http()
        .get(format!("{}/v2/bot/message/{id}/content", sim.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(response.bytes().await.unwrap().as_ref(), &[1, 2, 3, 4]);
    let missing = http()
        .get(format!("{}/v2/bot/message/1/content", sim.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let profile: Value = http()
        .get(format!(
            "{}/v2/bot/profile/{}",
            sim.base_url(),
            guest.user_id
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profile["displayName"], "Eve");
    assert_eq!(profile["language"], "ja");

    // Short-lived token from channel id and secret.
    let issued: Value = http()
        .post(format!("{}/v2/oauth/accessToken", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CHANNEL),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let short = issued["access_token"].as_str().unwrap();
    assert!(issued["expires_in"].as_u64().unwrap() > 0);
    let bad = http()
        .post(format!("{}/v2/oauth/accessToken", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CHANNEL),
            ("client_secret", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let set = http()
        .put(format!(
            "{}/v2/bot/channel/webhook/endpoint",
            sim.base_url()
        ))
        .bearer_auth(short)
        .json(&json!({"endpoint": "https://um.example/line/shop.acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    assert_eq!(
        sim.webhook_url(CHANNEL).as_deref(),
        Some("https://um.example/line/shop.acme")
    );
    let info: Value = http()
        .get(format!("{}/v2/bot/info", sim.base_url()))
        .bearer_auth(short)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["basicId"], "@123abcde");
}

#[tokio::test]
async fn blocked_users_are_accepted_but_not_shown_and_have_no_profile() {
    let sim = start().await;
    let guest = Guest::new("Fay");
    sim.add_user(&guest);
    let unfollow = sim.unfollow_event(&guest);
    assert_eq!(unfollow["type"], "unfollow");
    assert!(unfollow.get("replyToken").is_none());
    let (status, _, _) = post(
        &sim,
        "/v2/bot/message/push",
        json!({"to": guest.user_id, "messages": text("x")}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!sim.sent_to(&guest.user_id)[0].shown);
    let profile = http()
        .get(format!(
            "{}/v2/bot/profile/{}",
            sim.base_url(),
            guest.user_id
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(profile.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn switcher_checks_signature_and_destination() {
    let sim = start().await;
    let body = br#"{"serviceCode":"svc-1","destinationId":"dest-1","userId":"U1"}"#.to_vec();
    let sign = |key: &str, body: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(body);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    let send = |signature: String, body: Vec<u8>| {
        http()
            .post(format!("{}/switcher/v1/switch", sim.base_url()))
            .header("X-Line-Switcher-Signature", signature)
            .body(body)
            .send()
    };
    assert_eq!(
        send(sign("wrong", &body), body.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(sign("switch-secret", &body), body.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let other = br#"{"serviceCode":"svc-1","destinationId":"dest-2","userId":"U1"}"#.to_vec();
    assert_eq!(
        send(sign("switch-secret", &other), other)
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    let switches = sim.switches();
    assert_eq!(switches.len(), 1);
    assert_eq!(
        (
            switches[0].destination_id.as_str(),
            switches[0].user_id.as_str()
        ),
        ("dest-1", "U1")
    );
}
