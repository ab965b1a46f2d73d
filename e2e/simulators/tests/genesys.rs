//! Drives the Genesys simulator over real HTTP and checks the protocol.

mod support;

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use support::Receiver;
use um_simulators::genesys::{
    CreateCompletion, FaultTarget, GenesysOptions, GenesysRecordKind, GenesysSimulator,
    OutboundMessageSpec, WebhookRetryPolicy,
};

const CLIENT: &str = "client-1";
const SECRET: &str = "secret-1";
const TOKEN: &str = "0123456789abcdef-signing";

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn start(options: GenesysOptions) -> GenesysSimulator {
    GenesysSimulator::start(options.with_client(CLIENT, SECRET))
        .await
        .unwrap()
}

async fn token(sim: &GenesysSimulator) -> String {
    let response = http()
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn create_integration(sim: &GenesysSimulator, bearer: &str, url: &str) -> Value {
    let response = http()
        .post(format!(
            "{}/api/v2/conversations/messaging/integrations/open",
            sim.base_url()
        ))
        .bearer_auth(bearer)
        .json(&json!({
            "name": "acme",
            "outboundNotificationWebhookUrl": url,
            "outboundNotificationWebhookSignatureSecretToken": TOKEN,
            "webhookHeaders": {"X-Tenant": "acme"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn inbound_body(from: &str, text: &str) -> Value {
    json!({
        "channel": {
            "messageId": "ext-1",
            "from": {"id": from, "idType": "Opaque", "nickname": "Bobby"},
            "time": "2024-05-02T09:31:22.733Z",
            "metadata": {"customAttributes": {"tenant": "acme"}}
        },
        "text": text
    })
}

async fn post_inbound(
    sim: &GenesysSimulator,
    bearer: &str,
    integration: &str,
    body: &Value,
) -> reqwest::Response {
    http()
        .post(format!(
            "{}/api/v2/conversations/messages/{integration}/inbound/open/message?prefetchConversationId=true",
            sim.base_url()
        ))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn oauth_accepts_basic_and_form_credentials_and_rejects_bad_ones() {
    let sim = start(GenesysOptions::default()).await;
    let url = format!("{}/oauth/token", sim.base_url());
    let form: Value = http()
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(form["token_type"], "bearer");
    assert_eq!(form["expires_in"], 86_400);
    assert!(form["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(!token(&sim).await.is_empty());

    let bad = http()
        .post(&url)
        .basic_auth(CLIENT, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    let grant = http()
        .post(&url)
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bearer_is_enforced_and_revocation_invalidates_tokens() {
    let sim = start(GenesysOptions::default()).await;
    let list = format!(
        "{}/api/v2/conversations/messaging/integrations/open",
        sim.base_url()
    );
    let none = http().get(&list).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["code"], "authentication.required");
    assert_eq!(body["status"], 401);

    let wrong = http().get(&list).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let bearer = token(&sim).await;
    let ok = http().get(&list).bearer_auth(&bearer).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let listing: Value = ok.json().await.unwrap();
    assert_eq!(listing["total"], 0);
    assert_eq!(listing["pageNumber"], 1);

    sim.revoke_tokens();
    let revoked = http().get(&list).bearer_auth(&bearer).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    let body: Value = revoked.json().await.unwrap();
    assert_eq!(body["code"], "bad.credentials");
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let options = GenesysOptions {
        token_lifetime: Duration::from_millis(50),
        ..Default::default()
    };
    let sim = start(options).await;
    let bearer = token(&sim).await;
    let list = format!(
        "{}/api/v2/conversations/messaging/integrations/open",
        sim.base_url()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = http()
            .get(&list)
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap()
            .status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            tokio::time::Instant::now() < deadline,
            "token never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn integration_lifecycle_create_status_patch_delete() {
    let sim = start(GenesysOptions {
        create_completion: CreateCompletion::AfterGets(2),
        ..Default::default()
    })
    .await;
    let bearer = token(&sim).await;
    let created = create_integration(&sim, &bearer, "https://example.test/hook").await;
    assert_eq!(created["createStatus"], "Initiated");
    assert_eq!(
        created["outboundNotificationWebhookSignatureSecretToken"],
        TOKEN
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let item = format!(
        "{}/api/v2/conversations/messaging/integrations/open/{id}",
        sim.base_url()
    );
    assert_eq!(
        created["selfUri"],
        format!("/api/v2/conversations/messaging/integrations/open/{id}")
    );

    let statuses: Vec<Value> = {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let body: Value = http()
                .get(&item)
                .bearer_auth(&bearer)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            seen.push(body["createStatus"].clone());
        }
        seen
    };
    assert_eq!(
        statuses,
        vec![json!("Initiated"), json!("Completed"), json!("Completed")]
    );

    let patched: Value = http()
        .patch(&item)
        .bearer_auth(&bearer)
        .json(&json!({"name": "acme-renamed", "outboundNotificationWebhookUrl": "https://example.test/other"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["name"], "acme-renamed");
    assert_eq!(
        patched["outboundNotificationWebhookSignatureSecretToken"], TOKEN,
        "PATCH keeps fields it does not name"
    );
    assert_eq!(
        sim.count_requests(
            "PATCH",
            "/api/v2/conversations/messaging/integrations/open/"
        ),
        1
    );
    assert_eq!(
        sim.integration(&id).unwrap().webhook_url,
        "https://example.test/other"
    );

    let deleted = http()
        .delete(&item)
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    assert!(deleted.bytes().await.unwrap().is_empty());
    let gone = http().get(&item).bearer_auth(&bearer).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["code"], "not.found");
    assert_eq!(sim.deleted_integration_ids(), vec![id]);
    assert!(sim.integrations().is_empty());
}

#[tokio::test]
async fn integration_create_validation_names_the_field() {
    let sim = start(GenesysOptions::default()).await;
    let bearer = token(&sim).await;
    let response = http()
        .post(format!(
            "{}/api/v2/conversations/messaging/integrations/open",
            sim.base_url()
        ))
        .bearer_auth(&bearer)
        .json(
            &json!({"name": "x", "outboundNotificationWebhookUrl": "https://h/x",
                      "outboundNotificationWebhookSignatureSecretToken": "short"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "bad.request");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("outboundNotificationWebhookSignatureSecretToken")
    );

    let response = http()
        .post(format!(
            "{}/api/v2/conversations/messaging/integrations/open",
            sim.base_url()
        ))
        .bearer_auth(&bearer)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn injected_create_failure_ends_in_error_with_create_error() {
    let sim = start(GenesysOptions::default()).await;
    sim.fail_next_integration_creation("webhook URL rejected");
    let bearer = token(&sim).await;
    let created = create_integration(&sim, &bearer, "https://example.test/hook").await;
    let item = format!(
        "{}/api/v2/conversations/messaging/integrations/open/{}",
        sim.base_url(),
        created["id"].as_str().unwrap()
    );
    let body: Value = http()
        .get(&item)
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["createStatus"], "Error");
    assert_eq!(body["createError"]["message"], "webhook URL rejected");
    let second = create_integration(&sim, &bearer, "https://example.test/hook").await;
    let item = format!(
        "{}/api/v2/conversations/messaging/integrations/open/{}",
        sim.base_url(),
        second["id"].as_str().unwrap()
    );
    let body: Value = http()
        .get(&item)
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["createStatus"], "Completed",
        "only the next creation fails"
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let sim = start(GenesysOptions {
        rate_limit_per_minute: 3,
        ..Default::default()
    })
    .await;
    let bearer = token(&sim).await;
    let list = format!(
        "{}/api/v2/conversations/messaging/integrations/open",
        sim.base_url()
    );
    for _ in 0..3 {
        assert_eq!(
            http()
                .get(&list)
                .bearer_auth(&bearer)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
    let limited = http().get(&list).bearer_auth(&bearer).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["status"], 429);
    let other_token = token(&sim).await;
    assert_eq!(
        http()
            .get(&list)
            .bearer_auth(&other_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "limit is per token"
    );
}

#[tokio::test]
async fn inbound_message_is_validated_recorded_and_grouped_by_guest() {
    let sim = start(GenesysOptions::default()).await;
    let bearer = token(&sim).await;
    let id = create_integration(&sim, &bearer, "https://example.test/hook").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let first = post_inbound(&sim, &bearer, &id, &inbound_body("U1", "Hello")).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["type"], "Text");
    assert_eq!(first["direction"], "Inbound");
    assert_eq!(first["channel"]["platform"], "Open");
    assert_eq!(first["channel"]["to"]["id"], id.as_str());
    let conversation = first["conversationId"].as_str().unwrap().to_owned();

    let mut python_style = inbound_body("U1", "again");
    python_style["channel"]["time"] = json!("2024-05-02T09:31:22.733123");
    python_style["channel"]["from"]["idType"] = json!("opaque");
    let second: Value = post_inbound(&sim, &bearer, &id, &python_style)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        second["conversationId"],
        conversation.as_str(),
        "same guest joins the same conversation"
    );
    let other: Value = post_inbound(&sim, &bearer, &id, &inbound_body("U2", "hi"))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(other["conversationId"], conversation.as_str());

    let recorded = sim.inbound_messages();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[0].body, inbound_body("U1", "Hello"));
    assert_eq!(recorded[0].integration_id, id);
    assert_eq!(
        sim.participant_data(&conversation)
            .get("tenant")
            .map(String::as_str),
        Some("acme")
    );
    assert_eq!(sim.conversation_id(&id, "U1"), Some(conversation));

    let mut nested = inbound_body("U1", "x");
    nested["metadata"] = json!({"customAttributes": {"a": "b"}});
    let rejected = post_inbound(&sim, &bearer, &id, &nested).await;
    assert_eq!(rejected.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        rejected.json::<Value>().await.unwrap()["code"],
        "bad.request"
    );

    let mut attachment = inbound_body("U1", "");
    attachment["content"] =
        json!([{"attachment": {"mediaType": "Image", "url": "https://x/a.jpg"}}]);
    let rejected: Value = post_inbound(&sim, &bearer, &id, &attachment)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        rejected["message"]
            .as_str()
            .unwrap()
            .contains("content[0].attachment.mime")
    );

    let unknown = post_inbound(
        &sim,
        &bearer,
        "00000000-0000-0000-0000-000000000000",
        &inbound_body("U1", "x"),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        sim.inbound_messages().len(),
        3,
        "rejected messages are not recorded"
    );
}

#[tokio::test]
async fn injected_faults_hit_the_next_matching_requests_only() {
    let sim = start(GenesysOptions::default()).await;
    let bearer = token(&sim).await;
    let id = create_integration(&sim, &bearer, "https://example.test/hook").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.fail_next(FaultTarget::InboundMessage, 503, 2);
    sim.fail_next_with_retry_after("event", 429, 1, 7);
    let statuses = [
        post_inbound(&sim, &bearer, &id, &inbound_body("U1", "a"))
            .await
            .status(),
        post_inbound(&sim, &bearer, &id, &inbound_body("U1", "b"))
            .await
            .status(),
        post_inbound(&sim, &bearer, &id, &inbound_body("U1", "c"))
            .await
            .status(),
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
    let typing = http()
        .post(format!("{}/api/v2/conversations/messages/{id}/inbound/open/event", sim.base_url()))
        .bearer_auth(&bearer)
        .json(&json!({"channel": {"from": {"id": "U1", "idType": "Opaque"}, "time": "2024-05-02T09:31:22Z"},
                      "events": [{"eventType": "Typing"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(typing.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(typing.headers()["retry-after"], "7");
    assert_eq!(sim.inbound_messages().len(), 1);
    let log = sim.requests();
    assert_eq!(log.iter().filter(|r| r.status == 503).count(), 2);
}

fn hmac_base64(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn agent_message_is_signed_and_carries_webhook_headers() {
    let receiver = Receiver::start().await;
    let sim = start(GenesysOptions::default()).await;
    let bearer = token(&sim).await;
    let id = create_integration(&sim, &bearer, &receiver.url).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let inbound: Value = post_inbound(&sim, &bearer, &id, &inbound_body("U1", "Hello"))
        .await
        .json()
        .await
        .unwrap();

    let outcome = sim
        .send_agent_message(&id, OutboundMessageSpec::text("U1", "Hi, I am Alice"))
        .await
        .unwrap();
    assert!(outcome.delivered);
    assert_eq!(outcome.attempts.len(), 1);
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    let signature = request.headers["x-hub-signature-256"].to_str().unwrap();
    assert_eq!(
        signature,
        format!("sha256={}", hmac_base64(TOKEN, &request.body))
    );
    assert_eq!(request.headers["x-tenant"], "acme");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["text"], "Hi, I am Alice");
    assert_eq!(body["conversationId"], inbound["conversationId"]);
    assert_eq!(body["channel"]["to"]["id"], "U1");
    assert_eq!(body["id"], outcome.message_id.as_str());
    assert!(
        !String::from_utf8_lossy(&request.body).contains(": "),
        "compact JSON"
    );
    assert_eq!(sim.outbound_messages().len(), 1);
}

#[tokio::test]
async fn webhook_is_retried_on_503_but_not_on_400() {
    let receiver = Receiver::start().await;
    let retry = WebhookRetryPolicy {
        retries: 5,
        interval: Duration::from_millis(20),
        timeout: Duration::from_secs(2),
    };
    let sim = start(GenesysOptions {
        webhook_retry: retry,
        ..Default::default()
    })
    .await;
    let bearer = token(&sim).await;
    let id = create_integration(&sim, &bearer, &receiver.url).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    receiver.script(&[503, 503, 503, 503, 503, 503]);
    let failed = sim
        .send_agent_message(&id, OutboundMessageSpec::text("U1", "one"))
        .await
        .unwrap();
    assert!(!failed.delivered);
    assert_eq!(failed.attempts.len(), 6, "initial attempt plus 5 retries");
    assert_eq!(receiver.received().len(), 6);
    let ids: Vec<Value> = receiver
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["id"].clone())
        .collect();
    assert!(
        ids.iter().all(|x| *x == ids[0]),
        "retries resend the same message"
    );

    receiver.script(&[503, 200]);
    let recovered = sim
        .send_agent_message(&id, OutboundMessageSpec::text("U1", "two"))
        .await
        .unwrap();
    assert!(recovered.delivered);
    assert_eq!(recovered.attempts.len(), 2);

    receiver.script(&[400]);
    let rejected = sim
        .send_agent_message(&id, OutboundMessageSpec::text("U1", "three"))
        .await
        .unwrap();
    assert!(!rejected.delivered);
    assert_eq!(rejected.final_status(), Some(400));
    assert_eq!(rejected.attempts.len(), 1);
    assert_eq!(receiver.received().len(), 9);
    assert_eq!(sim.webhook_attempts().len(), 9);
}

#[tokio::test]
async fn receipts_must_reference_a_sent_message_and_use_allowed_statuses() {
    let receiver = Receiver::start().await;
    let sim = start(GenesysOptions::default()).await;
    let bearer = token(&sim).await;
    let id = create_integration(&sim, &bearer, &receiver.url).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = sim
        .send_agent_message(&id, OutboundMessageSpec::text("U1", "hi"))
        .await
        .unwrap();
    let url = format!(
        "{}/api/v2/conversations/messages/{id}/inbound/open/receipt",
        sim.base_url()
    );
    let receipt = |message_id: &str, status: &str| {
        json!({"id": message_id, "channel": {"to": {"id": "U1", "idType": "Opaque"}, "time": "2024-05-02T09:31:22.733Z"},
               "status": status, "direction": "Outbound", "isFinalReceipt": true,
               "reasons": [{"code": "GeneralError", "message": "blocked"}]})
    };
    let ok = http()
        .post(&url)
        .bearer_auth(&bearer)
        .json(&receipt(&sent.message_id, "Failed"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["type"], "Receipt");
    assert_eq!(body["status"], "Failed");

    let unknown = http()
        .post(&url)
        .bearer_auth(&bearer)
        .json(&receipt("not-a-message", "Delivered"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["code"],
        "bad.request"
    );
    let read = http()
        .post(&url)
        .bearer_auth(&bearer)
        .json(&receipt(&sent.message_id, "Read"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sim.receipts().len(), 1);
    assert!(
        sim.wait_for(GenesysRecordKind::Receipt, 1, Duration::from_millis(10))
            .await
    );
}

#[tokio::test]
async fn structured_response_and_typing_event_are_recorded() {
    let sim = start(GenesysOptions::default()).await;
    let bearer = token(&sim).await;
    let id = create_integration(&sim, &bearer, "https://example.test/hook").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!(
        "{}/api/v2/conversations/messages/{id}/inbound/open",
        sim.base_url()
    );
    let channel = json!({"from": {"id": "U1", "idType": "Opaque"}, "time": "2024-05-02T09:31:22Z"});
    let structured = http()
        .post(format!("{base}/structured/response"))
        .bearer_auth(&bearer)
        .json(&json!({"channel": channel, "buttonResponse": {"type": "QuickReply", "text": "Yes", "payload": "y"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(structured.status(), StatusCode::OK);
    let body: Value = structured.json().await.unwrap();
    assert_eq!(body["content"][0]["buttonResponse"]["payload"], "y");
    let bad = http()
        .post(format!("{base}/structured/response"))
        .bearer_auth(&bearer)
        .json(&json!({"channel": channel, "buttonResponse": {"type": "Swipe", "text": "Yes", "payload": "y"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let typing = http()
        .post(format!("{base}/event"))
        .bearer_auth(&bearer)
        .json(&json!({"channel": channel, "events": [{"eventType": "Typing", "typing": {"type": "On", "duration": 5000}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(typing.status(), StatusCode::OK);
    assert_eq!(typing.json::<Value>().await.unwrap()["type"], "Event");
    assert_eq!(sim.structured_responses().len(), 1);
    assert_eq!(sim.inbound_events().len(), 1);
}

#[tokio::test]
async fn response_management_lists_and_queries_canned_responses() {
    let sim = start(GenesysOptions::default()).await;
    let bearer = token(&sim).await;
    let base = format!("{}/api/v2/responsemanagement", sim.base_url());
    let libraries: Value = http()
        .get(format!("{base}/libraries"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(libraries["total"], 1);
    let library_id = libraries["entities"][0]["id"].as_str().unwrap().to_owned();
    let responses: Value = http()
        .get(format!("{base}/responses?libraryId={library_id}"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(responses["entities"].as_array().unwrap().len(), 2);
    let missing = http()
        .get(format!("{base}/responses"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let query: Value = http()
        .post(format!("{base}/responses/query"))
        .bearer_auth(&bearer)
        .json(&json!({"queryPhrase": "hello", "pageSize": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(query["results"]["total"], 1);
    let response = &query["results"]["entities"][0];
    assert_eq!(response["substitutions"][0]["id"], "Name");
    let one: Value = http()
        .get(format!(
            "{base}/responses/{}",
            response["id"].as_str().unwrap()
        ))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        one["texts"][0]["content"],
        "Hello {{Name}}, how can I help you?"
    );
}

#[tokio::test]
async fn refuses_non_loopback_listen_addresses() {
    let options = GenesysOptions {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..Default::default()
    };
    assert!(GenesysSimulator::start(options).await.is_err());
}

#[tokio::test]
async fn webhook_timeout_counts_as_a_failed_attempt_and_is_retried() {
    let receiver = Receiver::start().await;
    receiver.slow_next(1, Duration::from_secs(3));
    let retry = WebhookRetryPolicy {
        retries: 2,
        interval: Duration::from_millis(10),
        timeout: Duration::from_millis(200),
    };
    let sim = start(GenesysOptions {
        webhook_retry: retry,
        ..Default::default()
    })
    .await;
    let bearer = token(&sim).await;
    let id = create_integration(&sim, &bearer, &receiver.url).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let outcome = sim
        .send_agent_message(&id, OutboundMessageSpec::text("U1", "slow"))
        .await
        .unwrap();
    assert!(outcome.delivered);
    assert_eq!(outcome.attempts.len(), 2);
    assert_eq!(outcome.attempts[0].status, None);
    assert!(
        outcome.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("timeout")
    );
    assert_eq!(outcome.attempts[1].status, Some(200));
}

#[tokio::test]
async fn dropping_the_simulator_closes_kept_alive_connections() {
    let sim = start(GenesysOptions::default()).await;
    let client = http();
    let url = format!("{}/oauth/token", sim.base_url());
    let first = client
        .post(&url)
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    drop(first);
    drop(sim);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let again = client
            .post(&url)
            .basic_auth(CLIENT, Some(SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await;
        if again.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a dropped simulator still answers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
