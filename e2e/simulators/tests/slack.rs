//! The Slack simulator: signed Events API posts with Slack's retries,
//! `chat.postMessage` with Block Kit validation and `{ok:false}` errors,
//! faults (429 + Retry-After), the external file upload flow, OAuth v2, and
//! private file URLs that need the workspace's bot token.

mod support;

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::Receiver;
use um_simulators::slack::{RetryPolicy, SlackOptions, SlackSimulator, Workspace};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const TOKEN: &str = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";

async fn simulator() -> SlackSimulator {
    let mut options = SlackOptions::new(SECRET)
        .with_workspace(Workspace::new("T1", "Acme", TOKEN).with_enterprise("E1", "Acme Corp"));
    options.retry = RetryPolicy {
        retries: 3,
        interval: Duration::from_millis(20),
        timeout: Duration::from_millis(500),
    };
    SlackSimulator::start(options).await.expect("simulator")
}

fn expected_signature(timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v0={hex}")
}

async fn call(
    sim: &SlackSimulator,
    token: Option<&str>,
    method: &str,
    body: Value,
) -> (u16, Option<String>, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/{method}", sim.base_url()))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("call");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        retry_after,
        response.json().await.expect("JSON answer"),
    )
}

#[tokio::test]
async fn events_are_signed_and_retried_with_retry_num() {
    let sim = simulator().await;
    let receiver = Receiver::start().await;
    receiver.script(&[500, 503]);
    let channel = sim.open_dm("T1", "U1");
    let event = sim.message_event("T1", "U1", &channel, "hello");
    let delivery = sim.send_event(&receiver.url, &event).await;
    assert_eq!(delivery.status(), Some(200));
    assert_eq!(delivery.attempts.len(), 3);
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    for (index, request) in received.iter().enumerate() {
        let timestamp = request.headers["x-slack-request-timestamp"]
            .to_str()
            .unwrap();
        assert_eq!(
            request.headers["x-slack-signature"].to_str().unwrap(),
            expected_signature(timestamp, &request.body)
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body["event_id"], event["event_id"],
            "a retry must keep the event id"
        );
        match index {
            0 => assert!(request.headers.get("x-slack-retry-num").is_none()),
            n => {
                assert_eq!(
                    request.headers["x-slack-retry-num"].to_str().unwrap(),
                    n.to_string()
                );
                assert_eq!(request.headers["x-slack-retry-reason"], "http_error");
            }
        }
    }
    assert_eq!(event["event"]["channel"], channel.as_str());
    assert_eq!(event["enterprise_id"], "E1");

    // No answer within the timeout: retried with reason http_timeout, at
    // most three times.
    let slow = Receiver::start().await;
    slow.always(500);
    let failed = sim.send_event(&slow.url, &event).await;
    assert_eq!(failed.attempts.len(), 4);
    assert_eq!(failed.status(), Some(500));
}

#[tokio::test]
async fn interactivity_is_a_signed_form_with_the_tapped_button() {
    let sim = simulator().await;
    let channel = sim.open_dm("T1", "U1");
    let blocks = json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": "Pick"}},
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Yes"}, "value": "yes", "action_id": "a1"}]}
    ]);
    let (_, _, answer) = call(
        &sim,
        Some(TOKEN),
        "chat.postMessage",
        json!({"channel": channel, "text": "Pick", "blocks": blocks}),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
    let posted = sim.posted()[0].clone();
    assert!(sim.block_actions(&posted, "U1", "missing").is_none());
    let payload = sim.block_actions(&posted, "U1", "a1").expect("button");
    assert_eq!(payload["actions"][0]["value"], "yes");
    assert_eq!(payload["container"]["message_ts"], posted.ts.as_str());
    let receiver = Receiver::start().await;
    assert_eq!(
        sim.send_interaction(&receiver.url, &payload).await.status(),
        Some(200)
    );
    let request = &receiver.received()[0];
    assert_eq!(
        request.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let timestamp = request.headers["x-slack-request-timestamp"]
        .to_str()
        .unwrap();
    assert_eq!(
        request.headers["x-slack-signature"].to_str().unwrap(),
        expected_signature(timestamp, &request.body)
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    assert_eq!(form[0].0, "payload");
    let parsed: Value = serde_json::from_str(&form[0].1).unwrap();
    assert_eq!(parsed, payload);
}

#[tokio::test]
async fn post_message_validates_like_slack() {
    let sim = simulator().await;
    let channel = sim.open_dm("T1", "U1");
    let post =
        |token: Option<&'static str>, body: Value| call(&sim, token, "chat.postMessage", body);
    assert_eq!(
        post(None, json!({"channel": channel, "text": "x"})).await.2["error"],
        "not_authed"
    );
    assert_eq!(
        post(Some("xoxb-wrong"), json!({"channel": channel, "text": "x"}))
            .await
            .2["error"],
        "invalid_auth"
    );
    assert_eq!(
        post(Some(TOKEN), json!({"channel": "D404", "text": "x"}))
            .await
            .2["error"],
        "channel_not_found"
    );
    assert_eq!(
        post(Some(TOKEN), json!({"channel": channel})).await.2["error"],
        "no_text"
    );
    assert_eq!(
        post(
            Some(TOKEN),
            json!({"channel": channel, "text": "x".repeat(40_001)})
        )
        .await
        .2["error"],
        "msg_too_long"
    );
    let long_button = json!([{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "y".repeat(76)}, "value": "v", "action_id": "a"}]}]);
    let (status, _, answer) = post(
        Some(TOKEN),
        json!({"channel": channel, "text": "x", "blocks": long_button}),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (200, Some("invalid_blocks"))
    );
    let too_many: Vec<Value> = (0..51).map(|_| json!({"type": "divider"})).collect();
    assert_eq!(
        post(
            Some(TOKEN),
            json!({"channel": channel, "text": "x", "blocks": too_many})
        )
        .await
        .2["error"],
        "invalid_blocks"
    );
    assert!(sim.posted().is_empty());

    sim.inject_rate_limit("chat.postMessage", 7, 1);
    let (status, retry_after, answer) =
        post(Some(TOKEN), json!({"channel": channel, "text": "x"})).await;
    assert_eq!(
        (status, retry_after.as_deref(), answer["error"].as_str()),
        (429, Some("7"), Some("ratelimited"))
    );
    let (status, _, answer) = post(Some(TOKEN), json!({"channel": channel, "text": "x"})).await;
    assert_eq!((status, answer["ok"].as_bool()), (200, Some(true)));
    assert_eq!(sim.posted()[0].team_id, "T1");

    sim.archive(&channel);
    assert_eq!(
        post(Some(TOKEN), json!({"channel": channel, "text": "x"}))
            .await
            .2["error"],
        "is_archived"
    );
}

#[tokio::test]
async fn external_upload_flow_and_private_files() {
    let sim = simulator().await;
    let channel = sim.open_dm("T1", "U1");
    let client = reqwest::Client::new();
    let form = |pairs: &[(&str, &str)]| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };
    let get_url: Value = client
        .post(format!("{}/api/files.getUploadURLExternal", sim.base_url()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("filename", "a.txt"), ("length", "5")]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(get_url["ok"], true, "{get_url}");
    let file_id = get_url["file_id"].as_str().unwrap();
    let files = json!([{"id": file_id, "title": "A"}]).to_string();
    let early: Value = client
        .post(format!(
            "{}/api/files.completeUploadExternal",
            sim.base_url()
        ))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("files", &files), ("channel_id", &channel)]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(early["error"], "file_upload_not_complete");
    let upload = client
        .post(get_url["upload_url"].as_str().unwrap())
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 200);
    let done: Value = client
        .post(format!(
            "{}/api/files.completeUploadExternal",
            sim.base_url()
        ))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("files", &files), ("channel_id", &channel)]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["ok"], true, "{done}");
    let uploaded = &sim.uploaded()[0];
    assert_eq!(
        (
            uploaded.filename.as_str(),
            uploaded.bytes_len,
            uploaded.title.as_deref()
        ),
        ("a.txt", 5, Some("A"))
    );

    let file = sim.add_file("T1", "pic.png", "image/png", vec![1, 2, 3]);
    let url = file["url_private"].as_str().unwrap();
    assert_eq!(client.get(url).send().await.unwrap().status(), 403);
    let ok = client.get(url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["content-type"], "image/png");
    assert_eq!(ok.bytes().await.unwrap().as_ref(), &[1, 2, 3]);
    let statuses: Vec<u16> = sim.downloads().iter().map(|d| d.http_status).collect();
    assert_eq!(statuses, [403, 200]);
}

#[tokio::test]
async fn oauth_v2_authorize_then_access() {
    let sim = simulator().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let options = sim.options().clone();
    let authorize = client
        .get(format!(
            "{}/oauth/v2/authorize?client_id={}&scope=chat:write&redirect_uri=https://um.example/cb&state=s1",
            sim.base_url(),
            options.client_id
        ))
        .send()
        .await
        .unwrap();
    assert!(authorize.status().is_redirection());
    let location = url::Url::parse(authorize.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.host_str(), Some("um.example"));
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "s1");
    let code = query["code"].clone();
    let access = |secret: String, code: String| {
        let client = client.clone();
        let url = format!("{}/api/oauth.v2.access", sim.base_url());
        let id = options.client_id.clone();
        async move {
            client
                .post(url)
                .form(&[("client_id", id), ("client_secret", secret), ("code", code)])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        access("wrong".into(), code.clone()).await["error"],
        "bad_client_secret"
    );
    let granted = access(options.client_secret.clone(), code.clone()).await;
    assert_eq!(granted["ok"], true, "{granted}");
    assert_eq!(granted["access_token"], TOKEN);
    assert_eq!(granted["team"]["name"], "Acme");
    assert_eq!(granted["enterprise"]["name"], "Acme Corp");
    assert_eq!(
        access(options.client_secret.clone(), code).await["error"],
        "invalid_code",
        "a code is single use"
    );
}
