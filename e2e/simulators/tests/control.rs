//! The `um-sim` host: control API in-process, and the binary itself.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::Receiver;
use um_simulators::control::{Mode, SimConfig, SimHost, serve};

const BOT: &str = "777:control-test-token";

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn host(mode: Mode) -> String {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (host, listener, router) = SimHost::bind(mode, &SimConfig::default(), listen)
        .await
        .unwrap();
    tokio::spawn(serve(listener, router, std::future::pending()));
    host.base_url()
}

async fn post(url: String, body: Value) -> (StatusCode, Value) {
    let response = http().post(url).json(&body).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn genesys_scenario_through_the_control_api() {
    let base = host(Mode::Both).await;
    let receiver = Receiver::start().await;
    let (status, _) = post(
        format!("{base}/__sim/genesys/clients"),
        json!({"client_id": "c", "client_secret": "s"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let token: Value = http()
        .post(format!("{base}/oauth/token"))
        .basic_auth("c", Some("s"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().unwrap().to_owned();
    let integration: Value = http()
        .post(format!(
            "{base}/api/v2/conversations/messaging/integrations/open"
        ))
        .bearer_auth(&bearer)
        .json(
            &json!({"name": "n", "outboundNotificationWebhookUrl": receiver.url,
                      "outboundNotificationWebhookSignatureSecretToken": "0123456789abcdefXYZ"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = integration["id"].as_str().unwrap().to_owned();

    let (status, body) = post(
        format!("{base}/__sim/genesys/faults"),
        json!({"target": "inbound", "status": 503}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let inbound = json!({"channel": {"from": {"id": "U1", "idType": "Opaque"}, "time": "2024-05-02T09:31:22Z"}, "text": "hi"});
    let url = format!("{base}/api/v2/conversations/messages/{id}/inbound/open/message");
    assert_eq!(
        http()
            .post(&url)
            .bearer_auth(&bearer)
            .json(&inbound)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    let waiter = tokio::spawn({
        let base = base.clone();
        async move {
            http()
                .get(format!(
                    "{base}/__sim/wait?kind=inbound&count=1&timeout_ms=5000"
                ))
                .send()
                .await
                .unwrap()
        }
    });
    assert_eq!(
        http()
            .post(&url)
            .bearer_auth(&bearer)
            .json(&inbound)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let waited = waiter.await.unwrap();
    assert_eq!(waited.status(), StatusCode::OK);
    assert_eq!(waited.json::<Value>().await.unwrap()["count"], 1);
    let timeout = http()
        .get(format!(
            "{base}/__sim/wait?kind=inbound&count=2&timeout_ms=50"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(timeout.status(), StatusCode::REQUEST_TIMEOUT);

    let records: Value = http()
        .get(format!("{base}/__sim/records?kind=inbound"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(records[0]["body"]["text"], "hi");
    assert_eq!(records[0]["integrationId"], id.as_str());

    let (status, outcome) = post(
        format!("{base}/__sim/genesys/agent-message"),
        json!({"integration_id": id, "to": "U1", "text": "pick one", "quick_replies": [["Yes", "y"]]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome["delivered"], true);
    let delivered: Value = serde_json::from_slice(&receiver.received()[0].body).unwrap();
    assert_eq!(delivered["type"], "Structured");
    assert_eq!(delivered["content"][0]["quickReply"]["payload"], "y");
    assert_eq!(delivered["conversationId"], records[0]["conversationId"]);

    let integrations: Value = http()
        .get(format!("{base}/__sim/records?kind=integrations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(integrations["current"][0]["id"], id.as_str());
    let unknown = http()
        .get(format!("{base}/__sim/records?kind=bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn telegram_scenario_through_the_control_api() {
    let base = host(Mode::Telegram).await;
    let receiver = Receiver::start().await;
    assert_eq!(
        post(format!("{base}/__sim/telegram/bots"), json!({"token": BOT}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = post(
        format!("{base}/bot{BOT}/setWebhook"),
        json!({"url": receiver.url, "secret_token": "abc"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, delivery) = post(
        format!("{base}/__sim/telegram/update"),
        json!({"token": BOT, "from": {"id": 5, "first_name": "Eve"}, "text": "hello"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(delivery["delivered"], true);
    assert_eq!(
        receiver.received()[0].headers["x-telegram-bot-api-secret-token"],
        "abc"
    );

    let photo = base64_encode(b"\xff\xd8\xff fake jpeg");
    let (_, delivery) = post(
        format!("{base}/__sim/telegram/update"),
        json!({"token": BOT, "from": {"id": 5}, "photo_base64": photo, "mime": "image/jpeg", "caption": "pic"}),
    )
    .await;
    assert_eq!(delivery["update"]["message"]["caption"], "pic");
    let largest = delivery["update"]["message"]["photo"][2]["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, file) = post(
        format!("{base}/bot{BOT}/getFile"),
        json!({"file_id": largest}),
    )
    .await;
    let bytes = http()
        .get(format!(
            "{base}/file/bot{BOT}/{}",
            file["result"]["file_path"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), b"\xff\xd8\xff fake jpeg");

    let (status, _) = post(
        format!("{base}/__sim/telegram/chats"),
        json!({"id": 5, "blocked": true}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = post(
        format!("{base}/bot{BOT}/sendMessage"),
        json!({"chat_id": 5, "text": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let updates: Value = http()
        .get(format!("{base}/__sim/records?kind=updates"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updates.as_array().unwrap().len(), 2);
    let genesys = http()
        .get(format!("{base}/__sim/records?kind=inbound"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        genesys.status(),
        StatusCode::NOT_FOUND,
        "the Genesys simulator is not running in telegram mode"
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn binary_writes_port_file_serves_and_stops_on_sigterm() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    let port_file = dir.join("port");
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        json!({"telegram": {"bot_tokens": [BOT]}}).to_string(),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_um-sim"))
        .args([
            "both",
            "--listen",
            "127.0.0.1:0",
            "--ttl",
            "60",
            "--port-file",
        ])
        .arg(&port_file)
        .arg("--config")
        .arg(&config)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let port = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            break text.trim().parse::<u16>().unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "port file never appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let health: Value = http()
        .get(format!("http://127.0.0.1:{port}/__sim/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["genesys"], true);
    assert_eq!(health["telegram"], true);
    let me = http()
        .get(format!("http://127.0.0.1:{port}/bot{BOT}/getMe"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "bot token from --config is known"
    );

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}
