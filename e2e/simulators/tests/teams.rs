//! The Teams simulator: OpenID metadata and endorsed keys, RS256 activity
//! tokens a real validator accepts (and the forged ones it must not),
//! key rotation, client-credential tokens, the Bot Connector endpoint
//! (auth, validation of Adaptive Cards and suggested actions, 403/404,
//! injected 429 with Retry-After) and attachment downloads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Value, json};
use um_simulators::teams::{
    ActivitySpec, TeamsConversation, TeamsOptions, TeamsSimulator, TeamsUser, TokenFault,
};

const APP_ID: &str = "8b2c0d1e-0000-4000-8000-00000000a1b2";
const PASSWORD: &str = "bot-password~0123456789";

type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A bot endpoint that records the Authorization header and the body.
async fn bot_endpoint() -> (String, Received) {
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = Router::new().route(
        "/api/messages",
        post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                sink.lock().unwrap().push((auth, body.0));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(60), axum::serve(listener, app)).await;
    });
    (format!("http://{addr}/api/messages"), received)
}

async fn simulator() -> (TeamsSimulator, Received) {
    let sim = TeamsSimulator::start(TeamsOptions::default().with_bot(APP_ID, PASSWORD, "ACME Bot"))
        .await
        .expect("simulator");
    let (url, received) = bot_endpoint().await;
    sim.set_messaging_endpoint(APP_ID, &url);
    (sim, received)
}

async fn published_keys(sim: &TeamsSimulator) -> Vec<Value> {
    let http = reqwest::Client::new();
    let metadata: Value = http
        .get(format!(
            "{}/v1/.well-known/openidconfiguration",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], "https://api.botframework.com");
    let jwks: Value = http
        .get(metadata["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"].as_array().unwrap().clone()
}

fn verify(token: &str, keys: &[Value]) -> Result<Value, String> {
    let kid = decode_header(token)
        .map_err(|e| e.to_string())?
        .kid
        .ok_or("no kid")?;
    let key = keys.iter().find(|k| k["kid"] == kid).ok_or("unknown kid")?;
    if !key["endorsements"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "msteams")
    {
        return Err("not endorsed".into());
    }
    let decoding =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[APP_ID]);
    validation.set_issuer(&["https://api.botframework.com"]);
    decode::<Value>(token, &decoding, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

fn bearer(auth: &Option<String>) -> &str {
    auth.as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .expect("bearer")
}

#[tokio::test]
async fn activities_are_signed_with_published_endorsed_keys() {
    let (sim, received) = simulator().await;
    let user = TeamsUser::new("29:1user", "Megan Bowen");
    let chat = TeamsConversation::personal("a:1chat");
    let delivery = sim
        .send_activity(APP_ID, ActivitySpec::message(&chat, &user, "hello"))
        .await
        .unwrap();
    assert_eq!(delivery.status, Some(200));
    let (auth, body) = received.lock().unwrap()[0].clone();
    assert_eq!(body["type"], "message");
    assert_eq!(body["text"], "hello");
    assert_eq!(body["channelId"], "msteams");
    assert_eq!(body["serviceUrl"], sim.service_url());
    assert_eq!(body["recipient"]["id"], format!("28:{APP_ID}"));
    assert_eq!(body["conversation"]["conversationType"], "personal");
    assert!(body["id"].is_string() && body["timestamp"].is_string());
    let keys = published_keys(&sim).await;
    let claims = verify(bearer(&auth), &keys).expect("valid token");
    assert_eq!(claims["serviceurl"], sim.service_url());
    assert!(claims["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp());
}

#[tokio::test]
async fn forged_tokens_fail_a_validator() {
    let (sim, received) = simulator().await;
    let user = TeamsUser::new("29:1user", "Megan");
    let chat = TeamsConversation::personal("a:1chat");
    let faults = [
        TokenFault::Expired,
        TokenFault::WrongAudience,
        TokenFault::WrongIssuer,
        TokenFault::BadSignature,
        TokenFault::NotEndorsed,
        TokenFault::UnknownKey,
    ];
    for fault in faults {
        sim.send_activity_with(APP_ID, ActivitySpec::message(&chat, &user, "x"), fault)
            .await
            .unwrap();
    }
    sim.send_activity_with(
        APP_ID,
        ActivitySpec::message(&chat, &user, "x"),
        TokenFault::ServiceUrlMismatch,
    )
    .await
    .unwrap();
    sim.send_activity_with(
        APP_ID,
        ActivitySpec::message(&chat, &user, "x"),
        TokenFault::Missing,
    )
    .await
    .unwrap();
    let keys = published_keys(&sim).await;
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), faults.len() + 2);
    for ((auth, _), fault) in received.iter().zip(faults) {
        assert!(verify(bearer(auth), &keys).is_err(), "{fault:?} verified");
    }
    // The serviceurl forgery is validly signed, with a claim that differs.
    let (auth, body) = &received[faults.len()];
    let claims = verify(bearer(auth), &keys).unwrap();
    assert_ne!(claims["serviceurl"], body["serviceUrl"]);
    assert!(received[faults.len() + 1].0.is_none());
}

#[tokio::test]
async fn rotation_publishes_the_new_key_and_signs_with_it() {
    let (sim, received) = simulator().await;
    let user = TeamsUser::new("29:1user", "Megan");
    let chat = TeamsConversation::personal("a:1chat");
    let before: Vec<Value> = published_keys(&sim).await;
    let kid = sim.rotate_keys().unwrap();
    sim.send_activity(
        APP_ID,
        ActivitySpec::message(&chat, &user, "after rotation"),
    )
    .await
    .unwrap();
    let (auth, _) = received.lock().unwrap()[0].clone();
    let token = bearer(&auth).to_owned();
    assert_eq!(
        decode_header(&token).unwrap().kid.as_deref(),
        Some(kid.as_str())
    );
    assert!(
        verify(&token, &before).is_err(),
        "the old key set must not know the new key"
    );
    let after = published_keys(&sim).await;
    assert!(verify(&token, &after).is_ok());
    assert_eq!(after.len(), before.len() + 1);
    sim.retire_old_keys();
    assert_eq!(published_keys(&sim).await.len(), before.len());
    assert!(sim.key_fetches().len() >= 6);
}

async fn token(sim: &TeamsSimulator, secret: &str, scope: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!(
            "{}/botframework.com/oauth2/v2.0/token",
            sim.base_url()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", APP_ID),
            ("client_secret", secret),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn tokens_replies_validation_blocking_and_throttling() {
    let (sim, _received) = simulator().await;
    let wrong = token(&sim, "wrong", "https://api.botframework.com/.default").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    assert_eq!(
        token(&sim, PASSWORD, "https://graph.microsoft.com/.default")
            .await
            .status(),
        400
    );
    let answer: Value = token(&sim, PASSWORD, "https://api.botframework.com/.default")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["token_type"], "Bearer");
    assert!(answer["expires_in"].as_u64().unwrap() > 3000);
    let bot_token = answer["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        sim.token_requests()
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        [401, 400, 200]
    );

    let user = TeamsUser::new("29:1user", "Megan");
    let chat = TeamsConversation::personal("a:1chat");
    let http = reqwest::Client::new();
    let url = |conversation: &str| {
        format!(
            "{}v3/conversations/{conversation}/activities",
            sim.service_url()
        )
    };
    let post = |conversation: &str, auth: Option<&str>, body: Value| {
        let mut request = http.post(url(conversation)).json(&body);
        if let Some(auth) = auth {
            request = request.bearer_auth(auth);
        }
        request.send()
    };
    let text = json!({"type": "message", "text": "hi"});
    assert_eq!(
        post("a:1chat", None, text.clone()).await.unwrap().status(),
        401
    );
    assert_eq!(
        post("a:1chat", Some("forged"), text.clone())
            .await
            .unwrap()
            .status(),
        401
    );
    // Unknown until a user wrote from it.
    let unknown = post("a:1chat", Some(&bot_token), text.clone())
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"]["code"],
        "ConversationNotFound"
    );
    sim.send_activity(APP_ID, ActivitySpec::message(&chat, &user, "hello"))
        .await
        .unwrap();
    assert_eq!(
        post("a:1chat", Some(&bot_token), text.clone())
            .await
            .unwrap()
            .status(),
        201
    );

    let card = |version: &str, action: Value| {
        json!({"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"type": "AdaptiveCard", "version": version, "body": [{"type": "TextBlock", "text": "Pick"}],
                    "actions": [action]}}]})
    };
    let submit = json!({"type": "Action.Submit", "title": "Yes", "data": {"x": 1}});
    assert_eq!(
        post("a:1chat", Some(&bot_token), card("1.4", submit.clone()))
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        post("a:1chat", Some(&bot_token), card("2.0", submit))
            .await
            .unwrap()
            .status(),
        400
    );
    let bad_url = json!({"type": "Action.OpenUrl", "title": "Go"});
    assert_eq!(
        post("a:1chat", Some(&bot_token), card("1.4", bad_url))
            .await
            .unwrap()
            .status(),
        400
    );
    let suggested = json!({"type": "message", "text": "?", "suggestedActions": {"actions": [{"type": "imBack", "title": "Yes", "value": "Yes"}]}});
    assert_eq!(
        post("a:1chat", Some(&bot_token), suggested)
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        post("a:1chat", Some(&bot_token), json!({"type": "message"}))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(sim.sent_to("a:1chat").len(), 3);

    sim.inject_fault(429, Some(3), 1);
    let throttled = post("a:1chat", Some(&bot_token), text.clone())
        .await
        .unwrap();
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "3");
    assert_eq!(
        post("a:1chat", Some(&bot_token), text.clone())
            .await
            .unwrap()
            .status(),
        201
    );

    sim.block_conversation("a:1chat");
    let blocked = post("a:1chat", Some(&bot_token), text).await.unwrap();
    assert_eq!(blocked.status(), 403);
    assert_eq!(
        blocked.json::<Value>().await.unwrap()["error"]["code"],
        "ConversationBlockedByUser"
    );
}

#[tokio::test]
async fn inline_images_need_the_bot_token_and_files_their_tempauth() {
    let (sim, _received) = simulator().await;
    let image = sim.upload_inline_image(vec![1u8, 2, 3], "image/png");
    let url = image["contentUrl"].as_str().unwrap();
    assert!(url.starts_with(&sim.service_url()));
    let http = reqwest::Client::new();
    assert_eq!(http.get(url).send().await.unwrap().status(), 401);
    let answer: Value = token(&sim, PASSWORD, "https://api.botframework.com/.default")
        .await
        .json()
        .await
        .unwrap();
    let fetched = http
        .get(url)
        .bearer_auth(answer["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "image/png");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), [1, 2, 3]);

    let file = sim.upload_file(b"%PDF-1.7".to_vec(), "application/pdf", "report.pdf");
    assert_eq!(
        file["contentType"],
        "application/vnd.microsoft.teams.file.download.info"
    );
    assert_eq!(file["content"]["fileType"], "pdf");
    let download = file["content"]["downloadUrl"].as_str().unwrap();
    assert_eq!(
        http.get(download)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        b"%PDF-1.7"
    );
    let without = download.split('?').next().unwrap();
    assert_eq!(http.get(without).send().await.unwrap().status(), 403);
    let statuses: Vec<u16> = sim.downloads().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [401, 200, 200, 403]);
}

/// Run by e2e/tests.d/25-sdk-teams.sh with `UM_TEAMS_SDK_PYTHON` (a venv
/// with botframework-connector) and `UM_TEAMS_SDK_SCRIPT` set; skipped
/// otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_validates_the_simulators_tokens() {
    let (Ok(python), Ok(script)) = (
        std::env::var("UM_TEAMS_SDK_PYTHON"),
        std::env::var("UM_TEAMS_SDK_SCRIPT"),
    ) else {
        eprintln!(
            "SKIPPED: UM_TEAMS_SDK_PYTHON / UM_TEAMS_SDK_SCRIPT not set (e2e/tests.d/25-sdk-teams.sh sets them)"
        );
        return;
    };
    let (sim, received) = simulator().await;
    let user = TeamsUser::new("29:1user", "Megan");
    let chat = TeamsConversation::personal("a:1chat");
    let cases = [
        ("valid", TokenFault::None, true),
        ("expired", TokenFault::Expired, false),
        ("wrong audience", TokenFault::WrongAudience, false),
        ("wrong issuer", TokenFault::WrongIssuer, false),
        ("bad signature", TokenFault::BadSignature, false),
        ("serviceurl mismatch", TokenFault::ServiceUrlMismatch, false),
        ("not endorsed for msteams", TokenFault::NotEndorsed, false),
        ("unknown key", TokenFault::UnknownKey, false),
        ("no token", TokenFault::Missing, false),
    ];
    for (_, fault, _) in cases {
        sim.send_activity_with(APP_ID, ActivitySpec::message(&chat, &user, "hello"), fault)
            .await
            .unwrap();
    }
    let kid = sim.rotate_keys().unwrap();
    sim.send_activity(APP_ID, ActivitySpec::message(&chat, &user, "rotated"))
        .await
        .unwrap();
    let received = received.lock().unwrap().clone();
    let names = cases
        .iter()
        .map(|(name, _, valid)| (*name, *valid))
        .chain([("after rotation", true)]);
    let file: Vec<Value> = received
        .iter()
        .zip(names)
        .map(|((auth, activity), (name, valid))| {
            json!({"name": name, "activity": activity, "authorization": auth, "valid": valid})
        })
        .collect();
    assert_eq!(file.len(), cases.len() + 1);
    assert!(received.last().unwrap().0.is_some() && !kid.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.json");
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    let metadata = format!("{}/v1/.well-known/openidconfiguration", sim.base_url());
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(metadata)
        .arg(APP_ID)
        .arg(&path)
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the SDK disagreed with the simulator:\n{stdout}"
    );
    assert!(stdout.contains(&format!("{n}/{n} cases as expected", n = cases.len() + 1)));
}

/// `um-sim teams`: the simulator behind the `/__sim/teams` control API.
#[tokio::test]
async fn the_control_api_drives_the_simulator() {
    use um_simulators::control::{Mode, SimConfig, SimHost, serve};
    let config: SimConfig = serde_json::from_value(json!({
        "teams": {"bots": [{"app_id": APP_ID, "password": PASSWORD, "name": "ACME Bot"}]}
    }))
    .unwrap();
    let (host, listener, router) =
        SimHost::bind(Mode::Teams, &config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    tokio::spawn(serve(listener, router, async {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }));
    let base = host.base_url();
    let http = reqwest::Client::new();
    let health: Value = http
        .get(format!("{base}/__sim/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["teams"], true);
    let control = format!("{base}/__sim/teams");
    let (url, received) = bot_endpoint().await;
    let no_endpoint = http
        .post(format!("{control}/activities"))
        .json(&json!({"app_id": APP_ID, "conversation_id": "a:1", "user_id": "29:1", "user_name": "M", "text": "hi"}))
        .send().await.unwrap();
    assert_eq!(no_endpoint.status(), 409);
    let set = http
        .post(format!("{control}/endpoint"))
        .json(&json!({"app_id": APP_ID, "url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 204);
    let sent: Value = http
        .post(format!("{control}/activities"))
        .json(&json!({"app_id": APP_ID, "conversation_id": "a:1", "scope": "groupChat", "user_id": "29:1",
                      "user_name": "M", "text": "hi", "token_fault": "expired"}))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(sent["status"], 200);
    assert_eq!(
        sent["activity"]["conversation"]["conversationType"],
        "groupChat"
    );
    let keys = published_keys_at(&base).await;
    let (auth, _) = received.lock().unwrap()[0].clone();
    assert!(verify(bearer(&auth), &keys).unwrap_err().contains("xpired"));
    let rotated: Value = http
        .post(format!("{control}/keys/rotate"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rotated["kid"], "bf-key-2");
    let fetches: Value = http
        .get(format!("{control}/records?kind=key_fetches"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetches, json!(["keys"]));
    let bad = http
        .get(format!("{control}/records?kind=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

async fn published_keys_at(base: &str) -> Vec<Value> {
    let jwks: Value = reqwest::get(format!("{base}/v1/.well-known/keys"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"].as_array().unwrap().clone()
}
