//! The Viber REST Bot API simulator: webhook check on `set_webhook`,
//! signed callbacks with tracking data echo and redelivery, `send_message`
//! validation and status codes, `get_user_details` quota, expiring media.

mod support;

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::Receiver;
use um_simulators::viber::{
    CallbackSpec, ViberOptions, ViberRecordKind, ViberRedelivery, ViberSimulator, ViberUser,
};

const TOKEN: &str = "4453b6ac12345678-e02c5f12174805f9-daec9cbb5448c51f";

fn hex_hmac(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn call(sim: &ViberSimulator, token: &str, method: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/pa/{method}", sim.base_url()))
        .header("X-Viber-Auth-Token", token)
        .json(&body)
        .send()
        .await
        .expect("call")
        .json()
        .await
        .expect("JSON answer")
}

/// A simulator with the webhook set on a recording receiver.
async fn with_webhook() -> (ViberSimulator, Receiver) {
    let sim = ViberSimulator::start(ViberOptions {
        redelivery: ViberRedelivery {
            max_attempts: 3,
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
        },
        ..ViberOptions::default().with_token(TOKEN)
    })
    .await
    .expect("simulator");
    let receiver = Receiver::start().await;
    let answer = call(
        &sim,
        TOKEN,
        "set_webhook",
        json!({"url": receiver.url, "event_types": ["delivered", "failed"], "send_name": true}),
    )
    .await;
    assert_eq!(answer["status"], 0, "{answer}");
    (sim, receiver)
}

fn text(sender: &str, receiver: &str, text: &str) -> Value {
    json!({"receiver": receiver, "min_api_version": 1, "sender": {"name": sender}, "type": "text", "text": text})
}

#[tokio::test]
async fn set_webhook_checks_the_url_with_a_signed_webhook_callback() {
    let (sim, receiver) = with_webhook().await;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let check: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(check["event"], "webhook");
    assert!(check["message_token"].is_u64());
    let signature = received[0].headers["x-viber-content-signature"]
        .to_str()
        .unwrap();
    assert_eq!(signature, hex_hmac(TOKEN, &received[0].body));
    assert_eq!(
        sim.webhook_url(TOKEN).as_deref(),
        Some(receiver.url.as_str())
    );
    assert_eq!(sim.event_types(TOKEN), ["delivered", "failed"]);

    // A webhook that does not answer 200 is not set.
    let failing = Receiver::start().await;
    failing.always(500);
    let answer = call(&sim, TOKEN, "set_webhook", json!({"url": failing.url})).await;
    assert_eq!(answer["status"], 1, "{answer}");
    assert_eq!(
        sim.webhook_url(TOKEN).as_deref(),
        Some(receiver.url.as_str())
    );

    // An unknown token.
    let answer = call(&sim, "nope", "set_webhook", json!({"url": receiver.url})).await;
    assert_eq!(answer["status"], 2);
    assert_eq!(answer["status_message"], "invalidAuthToken");
}

#[tokio::test]
async fn callbacks_are_signed_echo_tracking_data_and_are_redelivered() {
    let (sim, receiver) = with_webhook().await;
    let user = ViberUser::new("01234567890A=", "John McClane").with_country("JP");
    let sent = sim
        .send_callback(TOKEN, CallbackSpec::text(&user, "hello"))
        .await
        .unwrap();
    assert!(sent.delivered());
    let received = receiver.received();
    let body = &received[1].body;
    assert_eq!(
        received[1].headers["x-viber-content-signature"]
            .to_str()
            .unwrap(),
        hex_hmac(TOKEN, body)
    );
    let callback: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(callback["event"], "message");
    assert_eq!(callback["sender"]["id"], "01234567890A=");
    assert_eq!(callback["sender"]["country"], "JP");
    assert_eq!(callback["message"]["text"], "hello");
    assert!(callback["message"].get("tracking_data").is_none());

    // The bot's message carries tracking data; the guest's reply echoes it.
    let mut message = text("Bot", &user.id, "Pick one");
    message["tracking_data"] = json!("{\"k\":1}");
    message["keyboard"] = json!({"Type": "keyboard", "Buttons": [{"ActionType": "reply", "ActionBody": "a", "Text": "A"}]});
    assert_eq!(
        call(&sim, TOKEN, "send_message", message).await["status"],
        0
    );
    let tap = sim
        .send_callback(TOKEN, CallbackSpec::tap(&user, "a"))
        .await
        .unwrap();
    assert_eq!(tap.callback["message"]["tracking_data"], "{\"k\":1}");
    assert_eq!(tap.callback["message"]["text"], "a");

    // A failing webhook gets the same callback again.
    receiver.script(&[503]);
    let retried = sim
        .send_callback(TOKEN, CallbackSpec::text(&user, "again").with_token(77))
        .await
        .unwrap();
    assert_eq!(retried.attempts.len(), 2);
    assert!(retried.delivered());
    let last_two: Vec<Value> = receiver.received()[3..]
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(last_two[0], last_two[1]);
    assert_eq!(last_two[0]["message_token"], 77);
    assert!(
        sim.wait_for(ViberRecordKind::Callback, 3, Duration::from_secs(1))
            .await
    );
}

#[tokio::test]
async fn send_message_validates_like_viber() {
    let (sim, _receiver) = with_webhook().await;
    let user = ViberUser::new("u1", "Ann");
    sim.add_user(TOKEN, &user);
    let status = |v: Value| v["status"].as_i64().unwrap();
    assert_eq!(
        status(call(&sim, TOKEN, "send_message", text("Bot", "u1", "hi")).await),
        0
    );
    assert_eq!(
        status(call(&sim, TOKEN, "send_message", text("Bot", "stranger", "hi")).await),
        5
    );
    assert_eq!(
        status(
            call(
                &sim,
                TOKEN,
                "send_message",
                text("Bot", "u1", &"x".repeat(7001))
            )
            .await
        ),
        3
    );
    assert_eq!(
        status(
            call(
                &sim,
                TOKEN,
                "send_message",
                text("A name far longer than twenty-eight", "u1", "hi")
            )
            .await
        ),
        3
    );
    let mut no_sender = text("Bot", "u1", "hi");
    no_sender.as_object_mut().unwrap().remove("sender");
    assert_eq!(
        status(call(&sim, TOKEN, "send_message", no_sender).await),
        4
    );
    let mut bad_keyboard = text("Bot", "u1", "hi");
    bad_keyboard["keyboard"] = json!({"Type": "carousel", "Buttons": [{"ActionBody": "a"}]});
    assert_eq!(
        status(call(&sim, TOKEN, "send_message", bad_keyboard).await),
        3
    );
    let rich = json!({"receiver": "u1", "min_api_version": 1, "sender": {"name": "Bot"}, "type": "rich_media",
        "rich_media": {"Type": "rich_media", "ButtonsGroupColumns": 6, "ButtonsGroupRows": 2,
            "Buttons": [{"Columns": 6, "Rows": 2, "ActionType": "reply", "ActionBody": "x", "Text": "X"}]}});
    assert_eq!(
        status(call(&sim, TOKEN, "send_message", rich.clone()).await),
        14
    );
    let mut rich_v2 = rich;
    rich_v2["min_api_version"] = json!(2);
    assert_eq!(status(call(&sim, TOKEN, "send_message", rich_v2).await), 0);
    let file = json!({"receiver": "u1", "sender": {"name": "Bot"}, "type": "file", "media": "https://x.example/a.pdf"});
    assert_eq!(
        status(call(&sim, TOKEN, "send_message", file).await),
        4,
        "file needs size and file_name"
    );

    // A picture is fetched from its URL.
    let media = sim.upload_media(vec![7u8; 321], "image/png");
    let picture =
        json!({"receiver": "u1", "sender": {"name": "Bot"}, "type": "picture", "media": media});
    let answer = call(&sim, TOKEN, "send_message", picture).await;
    assert_eq!(answer["status"], 0);
    assert!(answer["message_token"].is_u64());
    let sent = sim.sent_to("u1");
    assert_eq!(sent.len(), 3);
    let fetched = sent[2].media.as_ref().expect("fetched");
    assert_eq!((fetched.http_status, fetched.bytes_len), (200, 321));
    assert_eq!(fetched.content_type, "image/png");

    // Unsubscribed users cannot be written to.
    sim.unsubscribe_user(TOKEN, "u1");
    assert_eq!(
        status(call(&sim, TOKEN, "send_message", text("Bot", "u1", "hi")).await),
        6
    );
    assert_eq!(sim.sent_to("u1").len(), 3);
}

#[tokio::test]
async fn faults_user_details_quota_and_expiring_media() {
    let (sim, _receiver) = with_webhook().await;
    let user = ViberUser::new("u2", "Bo").with_device("iOS 17.1", "iPhone15,2");
    sim.add_user(TOKEN, &user);
    sim.inject_status(Some("send_message"), 12, 1);
    assert_eq!(
        call(&sim, TOKEN, "send_message", text("Bot", "u2", "a")).await["status"],
        12
    );
    assert_eq!(
        call(&sim, TOKEN, "send_message", text("Bot", "u2", "a")).await["status"],
        0
    );
    sim.inject_http_error(None, 503, 1);
    let response = reqwest::Client::new()
        .post(format!("{}/pa/send_message", sim.base_url()))
        .header("X-Viber-Auth-Token", TOKEN)
        .json(&text("Bot", "u2", "b"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);

    let details = call(&sim, TOKEN, "get_user_details", json!({"id": "u2"})).await;
    assert_eq!(details["user"]["primary_device_os"], "iOS 17.1");
    assert_eq!(details["user"]["device_type"], "iPhone15,2");
    assert_eq!(details["user"]["country"], "UK");
    assert_eq!(
        call(&sim, TOKEN, "get_user_details", json!({"id": "u2"})).await["status"],
        0
    );
    assert_eq!(
        call(&sim, TOKEN, "get_user_details", json!({"id": "u2"})).await["status"],
        12,
        "quota"
    );
    assert_eq!(
        call(&sim, TOKEN, "get_user_details", json!({"id": "nobody"})).await["status"],
        5
    );

    let url = sim.upload_media(vec![1u8, 2, 3], "image/jpeg");
    let body = reqwest::get(&url).await.unwrap();
    assert_eq!(body.status(), 200);
    assert_eq!(body.bytes().await.unwrap().as_ref(), &[1, 2, 3]);
    sim.expire_media(&url);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);
    let downloads = sim.media_downloads();
    assert_eq!(
        downloads.iter().map(|d| d.http_status).collect::<Vec<_>>(),
        [200, 404]
    );
}

#[tokio::test]
async fn um_sim_control_api_drives_the_viber_simulator() {
    use um_simulators::control::{Mode, SimConfig, SimHost, serve};
    let config: SimConfig =
        serde_json::from_value(json!({"viber": {"auth_tokens": [TOKEN]}})).unwrap();
    let (host, listener, router) =
        SimHost::bind(Mode::Viber, &config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("host");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router, async move {
        let _ = stopped.await;
    }));
    let base = host.base_url();
    let client = reqwest::Client::new();
    let receiver = Receiver::start().await;
    let set: Value = client
        .post(format!("{base}/pa/set_webhook"))
        .header("X-Viber-Auth-Token", TOKEN)
        .json(&json!({"url": receiver.url}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["status"], 0);
    let delivery: Value = client
        .post(format!("{base}/__sim/viber/callbacks"))
        .json(&json!({"token": TOKEN, "user_id": "u9", "name": "Zed", "text": "from the shell"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(delivery["attempts"][0]["status"], 200, "{delivery}");
    assert_eq!(delivery["callback"]["message"]["text"], "from the shell");
    let fault = client
        .post(format!("{base}/__sim/viber/faults"))
        .json(&json!({"method": "send_message", "status": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(fault.status(), 204);
    let answer: Value = client
        .post(format!("{base}/pa/send_message"))
        .header("X-Viber-Auth-Token", TOKEN)
        .json(&text("Bot", "u9", "hi"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], 6);
    let calls: Value = client
        .get(format!("{base}/__sim/viber/records?kind=calls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls.as_array().map(Vec::len), Some(2));
    let wait = client
        .get(format!(
            "{base}/__sim/viber/wait?kind=sent&count=1&timeout_ms=50"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(wait.status(), 408, "nothing was sent");
    let _ = stop.send(());
    let _ = server.await;
}
