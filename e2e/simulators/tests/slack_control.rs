//! `um-sim slack`: the Slack simulator driven only over HTTP through the
//! `/__sim/slack` control API, as the end-to-end scenario drives it. A
//! small local app checks every post's `X-Slack-Signature` with
//! `um_simulators::slack::sign` under the secret it currently knows.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::watch;
use um_simulators::control::{Mode, SimConfig, SimHost, serve};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const TOKEN: &str = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";
const TEAM: &str = "T0ACME";
const USER: &str = "U0ANN";
const WAIT: Duration = Duration::from_secs(10);

/// One post the app received and whether its signature was right.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    signed: bool,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// The `payload` field of an interactivity form.
    fn payload(&self) -> Value {
        let (name, value) = url::form_urlencoded::parse(&self.body)
            .next()
            .expect("a form field");
        assert_eq!(name, "payload");
        serde_json::from_str(&value).expect("payload JSON")
    }
}

#[derive(Default)]
struct AppInner {
    secret: Mutex<String>,
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<u16>>,
}

/// The app's request URL: refuses bad signatures with 401 like a real
/// app, answers scripted statuses, echoes `url_verification` challenges.
#[derive(Clone)]
struct App {
    inner: Arc<AppInner>,
    count: Arc<watch::Sender<usize>>,
    url: String,
}

impl App {
    async fn start(secret: &str) -> Self {
        let inner = Arc::new(AppInner::default());
        *inner.secret.lock().unwrap() = secret.to_owned();
        let count = Arc::new(watch::Sender::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/slack/events", listener.local_addr().unwrap());
        let router = Router::new()
            .route("/slack/events", post(receive))
            .with_state((inner.clone(), count.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { inner, count, url }
    }

    fn set_secret(&self, secret: &str) {
        *self.inner.secret.lock().unwrap() = secret.to_owned();
    }

    fn script(&self, statuses: &[u16]) {
        self.inner.script.lock().unwrap().extend(statuses);
    }

    fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    async fn wait(&self, count: usize) -> bool {
        let mut changes = self.count.subscribe();
        tokio::time::timeout(WAIT, changes.wait_for(|n| *n >= count))
            .await
            .is_ok()
    }
}

async fn receive(
    State((inner, count)): State<(Arc<AppInner>, Arc<watch::Sender<usize>>)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let expected = header("x-slack-request-timestamp")
        .and_then(|ts| ts.parse::<i64>().ok())
        .map(|ts| um_simulators::slack::sign(&inner.secret.lock().unwrap(), ts, &body));
    let signed = expected.is_some() && expected == header("x-slack-signature");
    let challenge = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["challenge"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let n = {
        let mut received = inner.received.lock().unwrap();
        received.push(Received {
            headers,
            body,
            signed,
        });
        received.len()
    };
    count.send_replace(n);
    let scripted = inner.script.lock().unwrap().pop_front();
    let status = match (signed, scripted) {
        (false, _) => StatusCode::UNAUTHORIZED,
        (true, Some(status)) => StatusCode::from_u16(status).unwrap(),
        (true, None) => StatusCode::OK,
    };
    (status, challenge)
}

/// A `um-sim slack` host on 127.0.0.1:0 with `slack` as its config
/// section; answers its base URL.
async fn host(slack: Value) -> String {
    let config: SimConfig = serde_json::from_value(json!({ "slack": slack })).unwrap();
    let (host, listener, router) =
        SimHost::bind(Mode::Slack, &config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("host");
    tokio::spawn(serve(listener, router, async {
        tokio::time::sleep(Duration::from_secs(120)).await;
    }));
    host.base_url()
}

/// A host with fast retries, the app's secret and the ACME workspace set
/// over the control API.
async fn installed() -> String {
    let base = host(json!({"retry": {"retries": 2, "interval_ms": 10, "timeout_ms": 2000}})).await;
    let (status, _) = control(
        &base,
        "app",
        json!({"signing_secret": SECRET, "app_id": "A0UM"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = control(
        &base,
        "workspaces",
        json!({"team_id": TEAM, "team_name": "Acme", "bot_token": TOKEN,
               "enterprise_id": "E0ACME", "enterprise_name": "Acme Group"}),
    )
    .await;
    assert_eq!(status, 200);
    base
}

async fn control(base: &str, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/__sim/slack/{path}"))
        .json(&body)
        .send()
        .await
        .expect("control call");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn dm(base: &str, team: &str, user: &str) -> String {
    let (status, answer) = control(base, "dm", json!({"team_id": team, "user_id": user})).await;
    assert_eq!(status, 200, "{answer}");
    answer["channel"].as_str().expect("channel").to_owned()
}

/// `chat.postMessage` as the connector calls it (JSON, bearer token).
async fn post_message(base: &str, token: &str, body: Value) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/chat.postMessage"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("chat.postMessage");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.expect("JSON"))
}

fn quick_replies(text: &str) -> Value {
    json!({"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "block_id": "qr", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Yes"}, "value": "yes", "action_id": "um-qr:0"},
            {"type": "button", "text": {"type": "plain_text", "text": "No"}, "value": "no", "action_id": "um-qr:1"}]}
    ]})
}

#[tokio::test]
async fn events_reach_the_app_signed_with_the_secret_set_at_run_time() {
    let base = host(json!({"retry": {"retries": 2, "interval_ms": 10, "timeout_ms": 2000}})).await;
    let (_, health) = get(&format!("{base}/__sim/health")).await;
    assert_eq!(
        (health["slack"].as_bool(), health["line"].as_bool()),
        (Some(true), Some(false))
    );
    let app = App::start(SECRET).await;
    let event = json!({"url": app.url, "team_id": TEAM, "user_id": USER, "text": "hello"});

    // No secret yet: nothing can be signed.
    let (status, refused) = control(&base, "events", event.clone()).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("/app"),
        "{refused}"
    );
    let (status, app_ids) = control(
        &base,
        "app",
        json!({"signing_secret": SECRET, "app_id": "A0UM"}),
    )
    .await;
    assert_eq!((status, &app_ids["app_id"]), (200, &json!("A0UM")));
    let (status, unknown) = control(&base, "events", event.clone()).await;
    assert_eq!(status, 404, "unknown team: {unknown}");
    let (status, installed) = control(
        &base,
        "workspaces",
        json!({"team_id": TEAM, "team_name": "Acme", "bot_token": TOKEN,
               "enterprise_id": "E0ACME", "enterprise_name": "Acme Group"}),
    )
    .await;
    assert_eq!(status, 200);
    let bot_user = installed["bot_user_id"].as_str().unwrap().to_owned();
    assert!(
        app.received().is_empty(),
        "refused events must not be posted"
    );

    let channel = dm(&base, TEAM, USER).await;
    assert_eq!(dm(&base, TEAM, USER).await, channel, "one DM per user");
    assert_ne!(dm(&base, TEAM, "U0BOB").await, channel);

    // The app fails once: Slack retries the same body with Retry-Num 1.
    app.script(&[500]);
    let mut with_channel = event.clone();
    with_channel["channel"] = json!(channel);
    let (status, delivery) = control(&base, "events", with_channel).await;
    assert_eq!(status, 200, "{delivery}");
    assert_eq!(delivery["status"], 200, "{delivery}");
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(delivery["channel"], channel.as_str());
    let received = app.received();
    assert_eq!(received.len(), 2);
    assert!(
        received.iter().all(|r| r.signed),
        "unsigned post: {received:?}"
    );
    assert!(received[0].headers.get("x-slack-retry-num").is_none());
    assert_eq!(received[1].headers["x-slack-retry-num"], "1");
    assert_eq!(received[1].headers["x-slack-retry-reason"], "http_error");
    assert_eq!(
        received[0].body, received[1].body,
        "a retry is the same event"
    );
    let body = received[0].json();
    assert_eq!(body["type"], "event_callback");
    assert_eq!(body["api_app_id"], "A0UM");
    assert_eq!(body["team_id"], TEAM);
    assert_eq!(body["enterprise_id"], "E0ACME");
    assert_eq!(body["event_id"], delivery["event_id"]);
    assert_eq!(body["authorizations"][0]["user_id"], bot_user.as_str());
    let message = &body["event"];
    assert_eq!(
        (
            &message["type"],
            &message["channel_type"],
            &message["user"],
            &message["text"],
            &message["channel"]
        ),
        (
            &json!("message"),
            &json!("im"),
            &json!(USER),
            &json!("hello"),
            &json!(channel)
        )
    );
    assert_eq!(message["ts"], delivery["ts"]);

    // Rotating the secret: later posts are signed with the new one only.
    control(&base, "app", json!({"signing_secret": "rotated-secret"})).await;
    let (_, stale) = control(&base, "events", event.clone()).await;
    assert_eq!(
        stale["status"], 401,
        "the app still knows the old secret: {stale}"
    );
    assert_eq!(
        stale["attempts"].as_array().unwrap().len(),
        3,
        "first try and 2 retries"
    );
    app.set_secret("rotated-secret");
    let (_, fresh) = control(&base, "events", event.clone()).await;
    assert_eq!(fresh["status"], 200, "{fresh}");
    assert_eq!(
        fresh["channel"],
        channel.as_str(),
        "the user's DM by default"
    );
    assert_eq!(
        app.received().last().unwrap().json()["api_app_id"],
        "A0UM",
        "app id kept"
    );

    // A duplicate keeps the event id it is given.
    let mut duplicate = event.clone();
    duplicate["event_id"] = delivery["event_id"].clone();
    let (_, again) = control(&base, "events", duplicate).await;
    assert_eq!(
        app.received().last().unwrap().json()["event_id"],
        delivery["event_id"]
    );
    assert_eq!(again["event_id"], delivery["event_id"]);

    // Bad requests name the problem.
    let other = dm(&base, TEAM, "U0BOB").await;
    control(
        &base,
        "workspaces",
        json!({"team_id": "T0BETA", "team_name": "Beta", "bot_token": "xoxb-beta"}),
    )
    .await;
    let (status, wrong_team) = control(
        &base,
        "events",
        json!({"url": app.url, "team_id": "T0BETA", "user_id": USER, "channel": other, "text": "x"}),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        wrong_team["error"].as_str().unwrap().contains(&other),
        "{wrong_team}"
    );
    let (status, empty) = control(
        &base,
        "events",
        json!({"url": app.url, "team_id": TEAM, "user_id": USER}),
    )
    .await;
    assert_eq!(status, 400, "{empty}");

    // url_verification: signed, and the app's answer is recorded.
    let (status, verified) = control(
        &base,
        "verify",
        json!({"url": app.url, "challenge": "3eZbrw1aB"}),
    )
    .await;
    assert_eq!(
        (status, &verified["status"]),
        (200, &json!(200)),
        "{verified}"
    );
    assert_eq!(verified["response_body"], "3eZbrw1aB");
    let last = app.received().last().unwrap().clone();
    assert!(last.signed);
    assert_eq!(
        last.json(),
        json!({"token": "deprecated-verification-token", "challenge": "3eZbrw1aB", "type": "url_verification"})
    );

    let (_, deliveries) = get(&format!("{base}/__sim/slack/records?kind=deliveries")).await;
    let statuses: Vec<&Value> = deliveries
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["status"])
        .collect();
    assert_eq!(
        statuses,
        [
            &json!(200),
            &json!(401),
            &json!(200),
            &json!(200),
            &json!(200)
        ]
    );
}

#[tokio::test]
async fn file_events_carry_a_private_url_that_only_the_bot_token_downloads() {
    let base = installed().await;
    control(
        &base,
        "workspaces",
        json!({"team_id": "T0BETA", "team_name": "Beta", "bot_token": "xoxb-beta"}),
    )
    .await;
    let app = App::start(SECRET).await;
    let png = vec![0x89, b'P', b'N', b'G', 1, 2, 3, 4];
    let (status, delivery) = control(
        &base,
        "events",
        json!({"url": app.url, "team_id": TEAM, "user_id": USER, "text": "my map",
               "file": {"name": "map.png", "mime": "image/png",
                        "bytes_base64": base64::engine::general_purpose::STANDARD.encode(&png)}}),
    )
    .await;
    assert_eq!(
        (status, &delivery["status"]),
        (200, &json!(200)),
        "{delivery}"
    );
    let received = app.received();
    assert!(received[0].signed);
    let event = received[0].json()["event"].clone();
    assert_eq!(event["subtype"], "file_share");
    assert_eq!(event["text"], "my map");
    let file = &event["files"][0];
    assert_eq!(
        (&file["name"], &file["mimetype"], &file["size"]),
        (&json!("map.png"), &json!("image/png"), &json!(png.len()))
    );
    let url = file["url_private"].as_str().expect("url_private");
    assert!(url.starts_with(&base), "{url}");

    let http = reqwest::Client::new();
    let anonymous = http.get(url).send().await.unwrap();
    assert_eq!(anonymous.status(), 403);
    assert_eq!(anonymous.headers()["content-type"], "text/html");
    assert!(anonymous.text().await.unwrap().contains("sign in"));
    let other_team = http.get(url).bearer_auth("xoxb-beta").send().await.unwrap();
    assert_eq!(other_team.status(), 403, "another workspace's token");
    let bot = http.get(url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(bot.status(), 200);
    assert_eq!(bot.headers()["content-type"], "image/png");
    assert_eq!(bot.bytes().await.unwrap().as_ref(), png.as_slice());
    let (_, downloads) = get(&format!("{base}/__sim/slack/records?kind=downloads")).await;
    let statuses: Vec<&Value> = downloads
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["http_status"])
        .collect();
    assert_eq!(statuses, [&json!(403), &json!(403), &json!(200)]);
    assert_eq!(downloads[0]["file_id"], file["id"]);

    let (status, bad) = control(
        &base,
        "events",
        json!({"url": app.url, "team_id": TEAM, "user_id": USER,
               "file": {"name": "x.bin", "mime": "application/octet-stream", "bytes_base64": "not base64!"}}),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("bytes_base64"));
}

#[tokio::test]
async fn posted_messages_are_recorded_waited_for_and_tapped() {
    let base = installed().await;
    let app = App::start(SECRET).await;
    let channel = dm(&base, TEAM, USER).await;
    let wait_url = format!("{base}/__sim/slack/wait?kind=posted&count=1");
    let (status, nothing) = get(&format!("{wait_url}&timeout_ms=50")).await;
    assert_eq!(
        (status, nothing),
        (408, json!({"reached": false, "count": 0}))
    );

    let long_wait = format!("{wait_url}&timeout_ms=10000");
    let waiting = tokio::spawn(async move { get(&long_wait).await });
    let mut first = quick_replies("Pick one");
    first["channel"] = json!(channel);
    let (status, _, answer) = post_message(&base, TOKEN, first.clone()).await;
    assert_eq!((status, &answer["ok"]), (200, &json!(true)), "{answer}");
    let first_ts = answer["ts"].as_str().unwrap().to_owned();
    assert_eq!(
        waiting.await.unwrap(),
        (200, json!({"reached": true, "count": 1}))
    );
    let (_, posted) = get(&format!("{base}/__sim/slack/records?kind=posted")).await;
    assert_eq!(
        posted,
        json!([{"team_id": TEAM, "channel": channel, "ts": first_ts, "text": "Pick one", "blocks": first["blocks"]}])
    );
    let (unauthorised, _, refused) = post_message(&base, "xoxb-forged", first.clone()).await;
    assert_eq!(
        (unauthorised, &refused["error"]),
        (200, &json!("invalid_auth"))
    );
    let (_, calls) = get(&format!("{base}/__sim/slack/records?kind=calls")).await;
    assert_eq!(
        calls,
        json!([{"method": "chat.postMessage", "team_id": TEAM, "http_status": 200, "error": null},
               {"method": "chat.postMessage", "team_id": null, "http_status": 200, "error": "invalid_auth"}])
    );

    // The latest message with the button is the one tapped, unless ts says.
    let mut second = quick_replies("Pick again");
    second["channel"] = json!(channel);
    let (_, _, answer) = post_message(&base, TOKEN, second).await;
    let second_ts = answer["ts"].as_str().unwrap().to_owned();
    let (status, delivery) = control(
        &base,
        "interactions",
        json!({"url": app.url, "user_id": USER, "action_id": "um-qr:1"}),
    )
    .await;
    assert_eq!(
        (status, &delivery["status"]),
        (200, &json!(200)),
        "{delivery}"
    );
    let tap = app.received()[0].clone();
    assert!(tap.signed);
    assert_eq!(
        tap.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let payload = tap.payload();
    assert_eq!(payload["type"], "block_actions");
    assert_eq!(payload["api_app_id"], "A0UM");
    assert_eq!(payload["user"]["id"], USER);
    assert_eq!(payload["team"]["id"], TEAM);
    assert_eq!(payload["channel"]["id"], channel.as_str());
    assert_eq!(payload["container"]["message_ts"], second_ts.as_str());
    let action = &payload["actions"][0];
    assert_eq!(
        (&action["action_id"], &action["value"], &action["block_id"]),
        (&json!("um-qr:1"), &json!("no"), &json!("qr"))
    );
    let (_, earlier) = control(
        &base,
        "interactions",
        json!({"url": app.url, "user_id": USER, "action_id": "um-qr:0", "ts": first_ts}),
    )
    .await;
    assert_eq!(earlier["status"], 200);
    let payload = app.received()[1].payload();
    assert_eq!(payload["container"]["message_ts"], first_ts.as_str());
    assert_eq!(payload["actions"][0]["value"], "yes");

    let (status, missing) = control(
        &base,
        "interactions",
        json!({"url": app.url, "user_id": USER, "action_id": "nope"}),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        missing["error"].as_str().unwrap().contains("'nope'"),
        "{missing}"
    );
    let (status, _) = control(
        &base,
        "interactions",
        json!({"url": app.url, "user_id": USER, "action_id": "um-qr:0", "ts": "1.000001"}),
    )
    .await;
    assert_eq!(status, 404, "no message with that ts");
    assert_eq!(app.received().len(), 2, "refused taps are not posted");
}

#[tokio::test]
async fn faults_answer_the_next_calls_like_slack() {
    let base = installed().await;
    let channel = dm(&base, TEAM, USER).await;
    let text = json!({"channel": channel, "text": "hi"});
    let (status, _) = control(
        &base,
        "faults",
        json!({"method": "chat.postMessage", "retry_after": 3}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, retry_after, answer) = post_message(&base, TOKEN, text.clone()).await;
    assert_eq!(
        (status, retry_after.as_deref(), &answer["error"]),
        (429, Some("3"), &json!("ratelimited"))
    );
    assert_eq!(
        post_message(&base, TOKEN, text.clone()).await.2["ok"],
        true,
        "count 1 by default"
    );

    control(
        &base,
        "faults",
        json!({"method": "chat.postMessage", "error": "channel_not_found", "count": 2}),
    )
    .await;
    for _ in 0..2 {
        let (status, _, answer) = post_message(&base, TOKEN, text.clone()).await;
        assert_eq!(
            (status, &answer["ok"], &answer["error"]),
            (200, &json!(false), &json!("channel_not_found"))
        );
    }
    control(
        &base,
        "faults",
        json!({"method": "chat.postMessage", "error": "fatal_error", "http_status": 500}),
    )
    .await;
    assert_eq!(post_message(&base, TOKEN, text.clone()).await.0, 500);
    assert_eq!(post_message(&base, TOKEN, text.clone()).await.2["ok"], true);
    let (_, posted) = get(&format!("{base}/__sim/slack/records?kind=posted")).await;
    assert_eq!(
        posted.as_array().unwrap().len(),
        2,
        "faulted calls post nothing"
    );

    let (status, both) = control(
        &base,
        "faults",
        json!({"method": "chat.postMessage", "retry_after": 1, "error": "ratelimited"}),
    )
    .await;
    assert_eq!(status, 400, "{both}");
    let (status, kind) = get(&format!("{base}/__sim/slack/records?kind=sent")).await;
    assert_eq!(status, 400);
    assert!(kind["error"].as_str().unwrap().contains("posted"), "{kind}");
}

#[tokio::test]
async fn users_archive_and_oauth_approval_through_the_control_api() {
    let base = installed().await;
    let channel = dm(&base, TEAM, USER).await;
    let (status, _) = control(
        &base,
        "users",
        json!({"team_id": TEAM, "user_id": USER, "name": "ann", "real_name": "Ann Lee",
               "locale": "fr-FR", "email": "ann@example.com"}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = control(
        &base,
        "users",
        json!({"team_id": "T0NONE", "user_id": USER, "name": "a", "real_name": "A"}),
    )
    .await;
    assert_eq!(status, 404);
    let info: Value = reqwest::Client::new()
        .get(format!("{base}/api/users.info?user={USER}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["ok"], true, "{info}");
    assert_eq!(
        (
            &info["user"]["real_name"],
            &info["user"]["locale"],
            &info["user"]["profile"]["email"]
        ),
        (
            &json!("Ann Lee"),
            &json!("fr-FR"),
            &json!("ann@example.com")
        )
    );

    control(&base, "archive", json!({"channel": channel})).await;
    let (_, _, answer) =
        post_message(&base, TOKEN, json!({"channel": channel, "text": "hi"})).await;
    assert_eq!(answer["error"], "is_archived");

    // OAuth: the authorize page installs into the approved team, and
    // oauth.v2.access answers that team's bot token.
    control(
        &base,
        "workspaces",
        json!({"team_id": "T0BETA", "team_name": "Beta", "bot_token": "xoxb-beta"}),
    )
    .await;
    control(
        &base,
        "app",
        json!({"signing_secret": SECRET, "client_id": "42.43", "client_secret": "shh"}),
    )
    .await;
    let (status, _) = control(&base, "approve", json!({"team_id": "T0BETA"})).await;
    assert_eq!(status, 204);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorized = no_redirects
        .get(format!(
            "{base}/oauth/v2/authorize?client_id=42.43&redirect_uri=http://127.0.0.1:9/cb&state=s1"
        ))
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(authorized.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let access: Value = no_redirects
        .post(format!("{base}/api/oauth.v2.access"))
        .form(&[
            ("client_id", "42.43"),
            ("client_secret", "shh"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &access["access_token"],
            &access["team"]["id"],
            &access["app_id"]
        ),
        (&json!("xoxb-beta"), &json!("T0BETA"), &json!("A0UM"))
    );

    let (status, _) = control(&base, "clear", json!({})).await;
    assert_eq!(status, 204);
    let (_, calls) = get(&format!("{base}/__sim/slack/records?kind=calls")).await;
    assert_eq!(calls, json!([]));
}

#[tokio::test]
async fn the_um_sim_binary_runs_slack_from_its_config() {
    let temporary = tempfile::tempdir().unwrap();
    let port_file = temporary.path().join("port");
    let config = temporary.path().join("config.json");
    std::fs::write(
        &config,
        json!({"slack": {"signing_secret": SECRET,
                         "workspaces": [{"team_id": TEAM, "team_name": "Acme", "bot_token": TOKEN}]}})
        .to_string(),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_um-sim"))
        .args([
            "slack",
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
    let base = format!("http://127.0.0.1:{port}");
    let (_, health) = get(&format!("{base}/__sim/health")).await;
    assert_eq!(health["slack"], true);
    let auth: Value = reqwest::Client::new()
        .post(format!("{base}/api/auth.test"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&auth["ok"], &auth["team_id"]),
        (&json!(true), &json!(TEAM)),
        "{auth}"
    );
    // The configured secret signs at once, without POST /app.
    let app = App::start(SECRET).await;
    let (_, delivery) = control(
        &base,
        "events",
        json!({"url": app.url, "team_id": TEAM, "user_id": USER, "text": "hi"}),
    )
    .await;
    assert_eq!(delivery["status"], 200, "{delivery}");
    assert!(app.wait(1).await && app.received()[0].signed);
    child.kill().await.unwrap();
}
