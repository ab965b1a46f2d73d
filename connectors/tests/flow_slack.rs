//! Slack end to end: the Slack simulator, the `slack` and `gcloudcx`
//! connector processes, real RabbitMQ and Redis, the Genesys simulator.
//!
//! Agents' files stand on [`DOWNLOADS_IP`] (127.0.0.2), the one loopback
//! address the Slack connector may fetch from (`UM_FETCH_ALLOW`); a guest's
//! file elsewhere than Slack's file host, or an agent's file redirected to
//! 127.0.0.1, is not fetched (a recording server there sees nothing).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use serde_json::Value;
use support::{Connector, PlatformBridge, eventually, services, unique};
use um_config::{MessagingConfig, MessagingOptions, Platform, Secret, SlackConfig, TenantConfig};
use um_simulators::genesys::{GenesysSimulator, OutboundContent, OutboundMessageSpec};
use um_simulators::slack::{RetryPolicy, SlackOptions, SlackSimulator, SlackUser, Workspace};

const WAIT: Duration = Duration::from_secs(20);
const TEAM: &str = "T0ACME001";
const OTHER_TEAM: &str = "T0BETA002";
/// A small file cap for the connector, so "too large" needs no megabytes.
const FILE_CAP: (&str, &str) = ("UM_SLACK_MAX_FILE_BYTES", "65536");
/// Where the agents' files are served, standing for Genesys' download
/// host: the only address allowed besides the configured Slack simulator.
const DOWNLOADS_IP: &str = "127.0.0.2";
const FETCH_ALLOW: (&str, &str) = ("UM_FETCH_ALLOW", DOWNLOADS_IP);

struct SlackBridge {
    genesys: GenesysSimulator,
    slack: SlackSimulator,
    tenant_key: String,
    webhook_url: String,
    bot_token: String,
    other_token: String,
    integration_id: String,
    slack_connector: Connector,
    _gcloudcx_connector: Connector,
    bus_namespace: String,
}

impl SlackBridge {
    async fn start(amqp: &str, redis: &str) -> Self {
        Self::start_with(amqp, redis, &[]).await
    }

    /// `env`: more environment for the Slack connector process (besides
    /// [`FETCH_ALLOW`]).
    async fn start_with(amqp: &str, redis: &str, env: &[(&str, &str)]) -> Self {
        let env: Vec<(&str, &str)> = std::iter::once(FETCH_ALLOW)
            .chain(env.iter().copied())
            .collect();
        let signing_secret = uuid::Uuid::new_v4().simple().to_string();
        let bot_token = unique("xoxb-1-");
        let other_token = unique("xoxb-2-");
        let mut options = SlackOptions::new(&signing_secret)
            .with_workspace(
                Workspace::new(TEAM, "Acme HQ", &bot_token).with_enterprise("E0ACME", "Acme Corp"),
            )
            .with_workspace(Workspace::new(OTHER_TEAM, "Beta Team", &other_token));
        options.client_secret = unique("client-secret-");
        options.retry = RetryPolicy {
            retries: 3,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(3),
        };
        let slack = SlackSimulator::start(options)
            .await
            .expect("Slack simulator");
        let base = PlatformBridge::start(
            amqp,
            redis,
            Platform::Slack,
            MessagingConfig::Slack(SlackConfig {
                signing_secret: Secret::new(signing_secret.clone()),
                bot_token: Secret::new(bot_token.clone()),
                app_id: Some(slack.options().app_id.clone()),
                client_id: Some(slack.options().client_id.clone()),
                client_secret: Some(Secret::new(slack.options().client_secret.clone())),
                api_base_url: Some(slack.base_url()),
            }),
            &env,
        )
        .await;
        Self {
            genesys: base.genesys,
            slack,
            tenant_key: base.tenant_key,
            webhook_url: base.webhook_url,
            bot_token,
            other_token,
            integration_id: base.integration_id,
            slack_connector: base.platform_connector,
            _gcloudcx_connector: base.gcloudcx_connector,
            bus_namespace: base.bus_namespace,
        }
    }

    fn inbound_bodies(&self) -> Vec<Value> {
        self.genesys
            .inbound_messages()
            .into_iter()
            .filter(|record| record.integration_id == self.integration_id)
            .map(|record| record.body)
            .collect()
    }

    fn receipts(&self) -> Vec<Value> {
        self.genesys
            .receipts()
            .into_iter()
            .map(|r| r.body)
            .collect()
    }

    async fn send(&self, event: &Value) -> Option<u16> {
        self.slack
            .send_event(&self.webhook_url, event)
            .await
            .status()
    }
}

async fn serve_file(name: &'static str, mime: &'static str, bytes: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind((DOWNLOADS_IP, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route(
        &format!("/downloads/{name}"),
        get(move || {
            let bytes = bytes.clone();
            async move { ([("content-type", mime)], bytes) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/downloads/{name}")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn receipt<'a>(receipts: &'a [Value], id: &str) -> Option<&'a Value> {
    receipts.iter().find(|receipt| receipt["id"] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guest_text_file_redelivery_signatures_and_oauth_install() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = SlackBridge::start(&amqp, &redis).await;

    // Saving the request URL in Slack: the challenge comes back as is.
    let verification = bridge
        .slack
        .verify_url(&bridge.webhook_url, "3eZbrw1aBm2rZgRNFdxV2595")
        .await;
    assert_eq!(verification.status(), Some(200));
    assert_eq!(
        verification.response_body.as_deref(),
        Some("3eZbrw1aBm2rZgRNFdxV2595")
    );

    let channel = bridge.slack.open_dm(TEAM, "U0BOB");
    bridge.slack.add_user(
        TEAM,
        "U0BOB",
        SlackUser {
            display_name: Some("bobby".into()),
            locale: Some("en-GB".into()),
            ..SlackUser::new("bob", "Bob Smith")
        },
    );
    let text = bridge
        .slack
        .message_event(TEAM, "U0BOB", &channel, "hello from Slack & co");
    assert_eq!(bridge.send(&text).await, Some(200));
    assert!(
        eventually(WAIT, || bridge.inbound_bodies().len() == 1).await,
        "text did not arrive"
    );
    let body = &bridge.inbound_bodies()[0];
    assert_eq!(body["text"], "hello from Slack & co");
    assert_eq!(body["channel"]["from"]["id"], format!("{TEAM}:{channel}"));
    assert_eq!(
        body["channel"]["from"]["nickname"], "bobby",
        "users.info profile not used"
    );
    assert_eq!(body["channel"]["from"]["firstName"], "Bob");
    let attributes = &body["channel"]["metadata"]["customAttributes"];
    assert_eq!(attributes["media"], "Slack");
    assert_eq!(attributes["workspaceId"], TEAM);
    assert_eq!(attributes["enterpriseId"], "E0ACME");

    // Slack retries the same event (same event_id): accepted, not relayed.
    assert_eq!(bridge.send(&text).await, Some(200));

    // A tampered body, a missing signature and a replayed (stale) request:
    // 401, nothing published.
    let forged = bridge
        .slack
        .message_event(TEAM, "U0BOB", &channel, "forged")
        .to_string()
        .into_bytes();
    let now = chrono::Utc::now().timestamp();
    let wrong = bridge.slack.sign(now, b"something else");
    let post = |body: Vec<u8>, ts: Option<i64>, sig: Option<String>| {
        let slack = &bridge.slack;
        let url = bridge.webhook_url.clone();
        async move {
            slack
                .post_raw(&url, body, "application/json", ts, sig.as_deref())
                .await
        }
    };
    assert_eq!(
        post(forged.clone(), Some(now), Some(wrong)).await,
        Some(401)
    );
    assert_eq!(post(forged.clone(), Some(now), None).await, Some(401));
    let stale = now - 600;
    let stale_sig = bridge.slack.sign(stale, &forged);
    assert_eq!(
        post(forged.clone(), Some(stale), Some(stale_sig)).await,
        Some(401)
    );

    // A file: served by the connector with the workspace's token, under a
    // URL that carries no credential.
    let image_bytes: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    let file = bridge
        .slack
        .add_file(TEAM, "map.png", "image/png", image_bytes.clone());
    let shared = bridge
        .slack
        .file_event(TEAM, "U0BOB", &channel, "", vec![file]);
    assert_eq!(bridge.send(&shared).await, Some(200));
    assert!(
        eventually(WAIT, || bridge.inbound_bodies().len() >= 2).await,
        "file did not arrive"
    );
    let bodies = bridge.inbound_bodies();
    assert_eq!(
        bodies.len(),
        2,
        "redelivered or forged events were relayed: {bodies:#?}"
    );
    let attachment = &bodies[1]["content"][0]["attachment"];
    assert_eq!(attachment["mediaType"], "Image");
    let url = attachment["url"].as_str().expect("attachment url");
    assert!(url.starts_with(&bridge.slack_connector.base_url()), "{url}");
    assert!(
        !url.contains(&bridge.bot_token) && !url.contains("files-pri"),
        "a Slack URL or token leaked: {url}"
    );
    let fetched = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .expect("media fetch");
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "image/png");
    assert_eq!(fetched.headers()["x-content-type-options"], "nosniff");
    assert!(fetched.headers().get("content-disposition").is_none());
    assert_eq!(
        fetched.bytes().await.unwrap().as_ref(),
        image_bytes.as_slice()
    );
    let downloads = bridge.slack.downloads();
    assert_eq!(downloads.len(), 1);
    assert_eq!(downloads[0].http_status, 200);
    let mut tampered = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = tampered
        .query_pairs()
        .map(|(k, v)| {
            let value = if k == "sig" {
                "0".repeat(v.len())
            } else {
                v.into_owned()
            };
            (k.into_owned(), value)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let refused = reqwest::get(tampered.as_str()).await.expect("media fetch");
    assert_eq!(refused.status(), 401);

    // OAuth v2 install into a second workspace: install link → Slack's
    // authorize page → callback; the workspace's own token then answers
    // its guests.
    bridge.slack.approve_as(OTHER_TEAM);
    let page = reqwest::Client::new()
        .get(format!(
            "{}/slack/{}/install",
            bridge.slack_connector.base_url(),
            bridge.tenant_key
        ))
        .send()
        .await
        .expect("install");
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Beta Team"), "{html}");
    assert!(!html.contains(&bridge.other_token));
    let forged_state = reqwest::get(format!(
        "{}/slack/{}/oauth/callback?code=x&state=9999999999.00",
        bridge.slack_connector.base_url(),
        bridge.tenant_key
    ))
    .await
    .unwrap();
    assert_eq!(forged_state.status(), 401);
    let beta_channel = bridge.slack.open_dm(OTHER_TEAM, "U0CARL");
    let hello = bridge
        .slack
        .message_event(OTHER_TEAM, "U0CARL", &beta_channel, "hi from Beta");
    assert_eq!(bridge.send(&hello).await, Some(200));
    assert!(
        eventually(WAIT, || bridge.inbound_bodies().len() == 3).await,
        "Beta message did not arrive"
    );
    let beta = &bridge.inbound_bodies()[2];
    assert_eq!(
        beta["channel"]["metadata"]["customAttributes"]["workspaceName"],
        "Beta Team"
    );
    let to = format!("{OTHER_TEAM}:{beta_channel}");
    let reply = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(&to, "Welcome, Beta"),
        )
        .await
        .expect("webhook sent");
    assert_eq!(reply.final_status(), Some(200));
    assert!(bridge.slack.wait_posted(1, WAIT).await, "reply not posted");
    let posted = bridge.slack.posted_to(&beta_channel);
    assert_eq!(
        posted[0].team_id, OTHER_TEAM,
        "posted with another workspace's token"
    );
    assert_eq!(posted[0].text.as_deref(), Some("Welcome, Beta"));

    // The manifest and the registration page name this tenant's URLs.
    let manifest: Value = reqwest::get(format!(
        "{}/slack/{}/manifest",
        bridge.slack_connector.base_url(),
        bridge.tenant_key
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        manifest["settings"]["event_subscriptions"]["request_url"],
        bridge.webhook_url.as_str()
    );
    let register = reqwest::get(format!(
        "{}/slack/register?customer={}",
        bridge.slack_connector.base_url(),
        bridge.tenant_key
    ))
    .await
    .unwrap();
    assert_eq!(register.status(), 200);
    assert!(
        register
            .text()
            .await
            .unwrap()
            .contains(&format!("/slack/{}/install", bridge.tenant_key))
    );
    let unknown = reqwest::get(format!(
        "{}/slack/register?customer=nobody.here",
        bridge.slack_connector.base_url()
    ))
    .await
    .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_text_blocks_files_taps_429_and_archived() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = SlackBridge::start(&amqp, &redis).await;
    let channel = bridge.slack.open_dm(TEAM, "U0ANN");
    let to = format!("{TEAM}:{channel}");
    let hi = bridge.slack.message_event(TEAM, "U0ANN", &channel, "hi");
    assert_eq!(bridge.send(&hi).await, Some(200));
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 1).await);

    let first = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(&to, "How can I <help>?"),
        )
        .await
        .expect("webhook sent");
    assert_eq!(first.final_status(), Some(200));
    assert!(bridge.slack.wait_posted(1, WAIT).await, "text not posted");
    assert_eq!(
        bridge.slack.posted_to(&channel)[0].text.as_deref(),
        Some("How can I &lt;help&gt;?")
    );

    // An image: uploaded (Slack keeps the file; the agent's URL may expire).
    let image: Vec<u8> = (0..4000u32).map(|i| (i % 13) as u8).collect();
    let image_url = serve_file("map.png", "image/png", image.clone()).await;
    let picture = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::attachment(&to, "Image", &image_url, "image/png", Some("map.png")),
        )
        .await
        .expect("webhook sent");
    assert_eq!(picture.final_status(), Some(200));
    assert!(
        bridge.slack.wait_uploaded(1, WAIT).await,
        "image not uploaded"
    );
    let uploaded_image = &bridge.slack.uploaded()[0];
    assert_eq!(uploaded_image.channel, channel);
    assert_eq!(uploaded_image.filename, "map.png");
    assert_eq!(uploaded_image.sha256, sha256_hex(&image));
    assert_eq!(
        bridge.slack.posted_to(&channel).len(),
        1,
        "the image was posted as a block instead of uploaded"
    );

    // A document: uploaded through the external upload flow.
    let pdf: Vec<u8> = (0..9000u32).map(|i| (i % 7) as u8).collect();
    let pdf_url = serve_file("terms.pdf", "application/pdf", pdf.clone()).await;
    let document = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::attachment(
                &to,
                "File",
                &pdf_url,
                "application/pdf",
                Some("terms.pdf"),
            ),
        )
        .await
        .expect("webhook sent");
    assert_eq!(document.final_status(), Some(200));
    assert!(
        bridge.slack.wait_uploaded(2, WAIT).await,
        "file not uploaded"
    );
    let uploaded = &bridge.slack.uploaded()[1];
    assert_eq!(uploaded.channel, channel);
    assert_eq!(uploaded.filename, "terms.pdf");
    assert_eq!(uploaded.bytes_len, pdf.len());
    assert_eq!(uploaded.sha256, sha256_hex(&pdf));

    // Quick replies: buttons in an actions block; the tap comes back to
    // Genesys as a structured response.
    let quick = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::quick_replies(
                &to,
                "Did that help?",
                &[("Yes", "help-yes"), ("No", "help-no")],
            ),
        )
        .await
        .expect("webhook sent");
    assert_eq!(quick.final_status(), Some(200));
    assert!(
        bridge.slack.wait_posted(2, WAIT).await,
        "quick replies not posted"
    );
    let prompt = bridge.slack.posted_to(&channel)[1].clone();
    let blocks = prompt.blocks.clone().expect("blocks");
    assert_eq!(blocks[0]["text"]["text"], "Did that help?");
    let buttons = blocks[1]["elements"].as_array().expect("buttons");
    assert_eq!(buttons.len(), 2);
    assert_eq!(buttons[0]["text"]["text"], "Yes");
    let action_id = buttons[0]["action_id"].as_str().unwrap().to_owned();
    let tap = bridge
        .slack
        .block_actions(&prompt, "U0ANN", &action_id)
        .expect("button found");
    let tapped = bridge
        .slack
        .send_interaction(&bridge.webhook_url, &tap)
        .await;
    assert_eq!(tapped.status(), Some(200));
    assert!(
        eventually(WAIT, || !bridge.genesys.structured_responses().is_empty()).await,
        "no structured response"
    );
    let response = &bridge.genesys.structured_responses()[0].body;
    assert_eq!(response["buttonResponse"]["type"], "QuickReply");
    assert_eq!(response["buttonResponse"]["payload"], "help-yes");
    assert_eq!(response["buttonResponse"]["text"], "Yes");

    for id in [
        &first.message_id,
        &picture.message_id,
        &document.message_id,
        &quick.message_id,
    ] {
        assert!(
            eventually(WAIT, || receipt(&bridge.receipts(), id).is_some()).await,
            "no receipt for {id}"
        );
        assert_eq!(
            receipt(&bridge.receipts(), id).unwrap()["status"],
            "Delivered"
        );
    }

    // 429 with Retry-After: 2: retried no sooner.
    bridge.slack.inject_rate_limit("chat.postMessage", 2, 1);
    let started = Instant::now();
    let limited = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(&to, "after the limit"),
        )
        .await
        .expect("webhook sent");
    assert!(
        eventually(WAIT, || receipt(&bridge.receipts(), &limited.message_id)
            .is_some())
        .await
    );
    assert_eq!(
        receipt(&bridge.receipts(), &limited.message_id).unwrap()["status"],
        "Delivered"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After was not honoured"
    );
    let limited_calls: Vec<u16> = bridge
        .slack
        .calls()
        .into_iter()
        .filter(|c| c.method == "chat.postMessage")
        .map(|c| c.http_status)
        .collect();
    assert!(limited_calls.ends_with(&[429, 200]), "{limited_calls:?}");
    assert_eq!(
        bridge
            .slack
            .posted_to(&channel)
            .last()
            .unwrap()
            .text
            .as_deref(),
        Some("after the limit")
    );

    // The guest's conversation is archived: a Failed receipt, nothing posted.
    let posted_before = bridge.slack.posted_to(&channel).len();
    bridge.slack.archive(&channel);
    let blocked = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(&to, "Still there?"),
        )
        .await
        .expect("webhook sent");
    assert_eq!(blocked.final_status(), Some(200));
    assert!(
        eventually(WAIT, || receipt(&bridge.receipts(), &blocked.message_id)
            .is_some())
        .await
    );
    let receipts = bridge.receipts();
    let failed = receipt(&receipts, &blocked.message_id).unwrap();
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["reasons"][0]["code"], "RecipientOptedOut");
    assert_eq!(bridge.slack.posted_to(&channel).len(), posted_before);
}

/// Sends an agent message and returns its Genesys message id (the webhook
/// itself is always answered 200: failures come back as receipts).
async fn agent(bridge: &SlackBridge, spec: OutboundMessageSpec) -> String {
    let outcome = bridge
        .genesys
        .send_agent_message(&bridge.integration_id, spec)
        .await
        .expect("webhook sent");
    assert_eq!(outcome.final_status(), Some(200));
    outcome.message_id
}

async fn wait_receipt(bridge: &SlackBridge, message_id: &str) -> Value {
    assert!(
        eventually(WAIT, || receipt(&bridge.receipts(), message_id).is_some()).await,
        "no receipt for {message_id}"
    );
    receipt(&bridge.receipts(), message_id)
        .cloned()
        .expect("receipt")
}

fn attachment(media_type: &str, url: &str, mime: &str, filename: &str) -> OutboundContent {
    OutboundContent::Attachment {
        media_type: media_type.into(),
        url: url.into(),
        mime: mime.into(),
        filename: Some(filename.into()),
        text: None,
        content_size_bytes: None,
    }
}

fn calls_of(bridge: &SlackBridge, method: &str) -> Vec<u16> {
    bridge
        .slack
        .calls()
        .into_iter()
        .filter(|c| c.method == method)
        .map(|c| c.http_status)
        .collect()
}

async fn install_via_oauth(bridge: &SlackBridge, team: &str) {
    bridge.slack.approve_as(team);
    let page = reqwest::Client::new()
        .get(format!(
            "{}/slack/{}/install",
            bridge.slack_connector.base_url(),
            bridge.tenant_key
        ))
        .send()
        .await
        .expect("install");
    assert_eq!(page.status(), 200, "install into {team} failed");
}

async fn redis_get(url: &str, key: &str) -> Option<String> {
    let client = redis::Client::open(url).expect("Redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis connection");
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut connection)
        .await
        .expect("Redis GET")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_files_are_uploaded_into_the_guests_thread() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = SlackBridge::start_with(&amqp, &redis, &[FILE_CAP]).await;
    let channel = bridge.slack.open_dm(TEAM, "U0DAN");
    let to = format!("{TEAM}:{channel}");
    let hi = bridge.slack.message_event(TEAM, "U0DAN", &channel, "hi");
    let parent = hi["event"]["ts"].as_str().expect("ts").to_owned();
    assert_eq!(bridge.send(&hi).await, Some(200));
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 1).await);

    // Text and an image: one upload, the text as its comment.
    let map: Vec<u8> = (0..5000u32).map(|i| (i % 17) as u8).collect();
    let map_url = serve_file("map.png", "image/png", map.clone()).await;
    let with_text = agent(
        &bridge,
        OutboundMessageSpec::text(&to, "Here is the map").with_content(attachment(
            "Image",
            &map_url,
            "image/png",
            "map.png",
        )),
    )
    .await;
    assert_eq!(
        wait_receipt(&bridge, &with_text).await["status"],
        "Delivered"
    );
    let uploaded = bridge.slack.uploaded();
    assert_eq!(uploaded.len(), 1);
    assert_eq!(uploaded[0].channel, channel);
    assert_eq!(
        uploaded[0].initial_comment.as_deref(),
        Some("Here is the map")
    );
    assert_eq!(uploaded[0].thread_ts, None);
    assert_eq!(uploaded[0].sha256, sha256_hex(&map));
    assert!(
        bridge.slack.posted_to(&channel).is_empty(),
        "the text was posted apart from the file"
    );

    // The guest answers inside a thread: replies and files follow there.
    let in_thread =
        bridge
            .slack
            .thread_reply_event(TEAM, "U0DAN", &channel, &parent, "which floor?");
    assert_eq!(bridge.send(&in_thread).await, Some(200));
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 2).await);
    let floor = agent(&bridge, OutboundMessageSpec::text(&to, "Second floor")).await;
    assert_eq!(wait_receipt(&bridge, &floor).await["status"], "Delivered");
    let reply = bridge
        .slack
        .posted_to(&channel)
        .pop()
        .expect("reply posted");
    assert_eq!(reply.text.as_deref(), Some("Second floor"));
    assert_eq!(
        reply.thread_ts.as_deref(),
        Some(parent.as_str()),
        "the reply is not in the guest's thread"
    );
    let plan: Vec<u8> = (0..7000u32).map(|i| (i % 11) as u8).collect();
    let plan_url = serve_file("plan.pdf", "application/pdf", plan.clone()).await;
    let plan_message = agent(
        &bridge,
        OutboundMessageSpec::attachment(
            &to,
            "File",
            &plan_url,
            "application/pdf",
            Some("plan.pdf"),
        ),
    )
    .await;
    assert_eq!(
        wait_receipt(&bridge, &plan_message).await["status"],
        "Delivered"
    );
    let uploaded = bridge.slack.uploaded();
    assert_eq!(uploaded[1].filename, "plan.pdf");
    assert_eq!(uploaded[1].sha256, sha256_hex(&plan));
    assert_eq!(uploaded[1].thread_ts.as_deref(), Some(parent.as_str()));

    // A file and a question with buttons whose post fails once: the retry
    // does not upload the file a second time.
    bridge
        .slack
        .inject_error("chat.postMessage", 500, "internal_error", 1);
    let form_url = serve_file("form.pdf", "application/pdf", vec![1u8; 3000]).await;
    let question = agent(
        &bridge,
        OutboundMessageSpec::quick_replies(
            &to,
            "Fill this in?",
            &[("Yes", "form-yes"), ("No", "form-no")],
        )
        .with_content(attachment("File", &form_url, "application/pdf", "form.pdf")),
    )
    .await;
    assert_eq!(
        wait_receipt(&bridge, &question).await["status"],
        "Delivered"
    );
    let forms = bridge
        .slack
        .uploaded()
        .into_iter()
        .filter(|file| file.filename == "form.pdf")
        .count();
    assert_eq!(forms, 1, "the file was uploaded again on the retry");
    assert!(
        calls_of(&bridge, "chat.postMessage").ends_with(&[500, 200]),
        "{:?}",
        calls_of(&bridge, "chat.postMessage")
    );
    let prompt = bridge.slack.posted_to(&channel).pop().expect("prompt");
    assert_eq!(prompt.thread_ts.as_deref(), Some(parent.as_str()));

    // The guest writes in the channel again: replies leave the thread.
    let back = bridge
        .slack
        .message_event(TEAM, "U0DAN", &channel, "back in the channel");
    assert_eq!(bridge.send(&back).await, Some(200));
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 3).await);
    let noted = agent(&bridge, OutboundMessageSpec::text(&to, "Noted")).await;
    assert_eq!(wait_receipt(&bridge, &noted).await["status"], "Delivered");
    let top_level = bridge.slack.posted_to(&channel).pop().expect("posted");
    assert_eq!(top_level.text.as_deref(), Some("Noted"));
    assert_eq!(top_level.thread_ts, None, "still answering in the thread");

    // A tap on the button in the thread brings the replies back there.
    let action_id = prompt.blocks.as_ref().expect("blocks")[1]["elements"][0]["action_id"]
        .as_str()
        .expect("action_id")
        .to_owned();
    let tap = bridge
        .slack
        .block_actions(&prompt, "U0DAN", &action_id)
        .expect("button found");
    let tapped = bridge
        .slack
        .send_interaction(&bridge.webhook_url, &tap)
        .await;
    assert_eq!(tapped.status(), Some(200));
    assert!(eventually(WAIT, || !bridge.genesys.structured_responses().is_empty()).await);
    let great = agent(&bridge, OutboundMessageSpec::text(&to, "Great")).await;
    assert_eq!(wait_receipt(&bridge, &great).await["status"], "Delivered");
    let after_tap = bridge.slack.posted_to(&channel).pop().expect("posted");
    assert_eq!(after_tap.text.as_deref(), Some("Great"));
    assert_eq!(after_tap.thread_ts.as_deref(), Some(parent.as_str()));

    // Over the connector's cap: a Failed receipt that says so, nothing
    // asked of Slack.
    let uploads_before = bridge.slack.uploaded().len();
    let upload_urls_before = calls_of(&bridge, "files.getUploadURLExternal").len();
    let big_url = serve_file("scan.pdf", "application/pdf", vec![7u8; 100_000]).await;
    let too_big = agent(
        &bridge,
        OutboundMessageSpec::attachment(&to, "File", &big_url, "application/pdf", Some("scan.pdf")),
    )
    .await;
    let failed = wait_receipt(&bridge, &too_big).await;
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["reasons"][0]["code"], "InvalidMediaContentLength");
    let why = failed["reasons"][0]["message"].as_str().unwrap_or("");
    assert!(why.contains("scan.pdf") && why.contains("65536"), "{why}");
    assert_eq!(bridge.slack.uploaded().len(), uploads_before);
    assert_eq!(
        calls_of(&bridge, "files.getUploadURLExternal").len(),
        upload_urls_before
    );

    // The bot was removed from the channel: Slack refuses the share.
    bridge
        .slack
        .inject_error("files.completeUploadExternal", 200, "not_in_channel", 1);
    let removed = agent(
        &bridge,
        OutboundMessageSpec::attachment(
            &to,
            "File",
            &plan_url,
            "application/pdf",
            Some("plan.pdf"),
        ),
    )
    .await;
    let failed = wait_receipt(&bridge, &removed).await;
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["reasons"][0]["code"], "RecipientOptedOut");
    assert_eq!(bridge.slack.uploaded().len(), uploads_before);

    // The install lacks files:write: an image falls back to an image block
    // by URL; a document fails and says why.
    bridge.slack.revoke_scope(TEAM, "files:write");
    let shown = agent(
        &bridge,
        OutboundMessageSpec::text(&to, "The map again").with_content(attachment(
            "Image",
            &map_url,
            "image/png",
            "map.png",
        )),
    )
    .await;
    assert_eq!(wait_receipt(&bridge, &shown).await["status"], "Delivered");
    let fallback = bridge.slack.posted_to(&channel).pop().expect("fallback");
    let blocks = fallback.blocks.expect("blocks");
    assert_eq!(blocks[0]["text"]["text"], "The map again");
    assert_eq!(blocks[1]["type"], "image");
    assert_eq!(blocks[1]["image_url"], map_url.as_str());
    assert_eq!(fallback.thread_ts.as_deref(), Some(parent.as_str()));
    let refused = agent(
        &bridge,
        OutboundMessageSpec::attachment(
            &to,
            "File",
            &plan_url,
            "application/pdf",
            Some("plan.pdf"),
        ),
    )
    .await;
    let failed = wait_receipt(&bridge, &refused).await;
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["reasons"][0]["code"], "MessageNotAllowed");
    let why = failed["reasons"][0]["message"].as_str().unwrap_or("");
    assert!(why.contains("files:write"), "{why}");
    assert_eq!(bridge.slack.uploaded().len(), uploads_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uninstall_forgets_the_workspace_and_fails_its_messages() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = SlackBridge::start(&amqp, &redis).await;
    install_via_oauth(&bridge, OTHER_TEAM).await;
    let beta = bridge.slack.open_dm(OTHER_TEAM, "U0CARL");
    let to_beta = format!("{OTHER_TEAM}:{beta}");
    let acme = bridge.slack.open_dm(TEAM, "U0DORA");
    let to_acme = format!("{TEAM}:{acme}");
    for (team, user, channel) in [(OTHER_TEAM, "U0CARL", &beta), (TEAM, "U0DORA", &acme)] {
        let hello = bridge.slack.message_event(team, user, channel, "hello");
        assert_eq!(bridge.send(&hello).await, Some(200));
    }
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 2).await);
    let welcome = agent(&bridge, OutboundMessageSpec::text(&to_beta, "Welcome")).await;
    assert_eq!(wait_receipt(&bridge, &welcome).await["status"], "Delivered");
    let install_key = format!(
        "{}:slack:{}:slack-install:{OTHER_TEAM}",
        bridge.bus_namespace, bridge.tenant_key
    );
    let note_key = format!(
        "{}:slack:{}:slack-uninstalled:{OTHER_TEAM}",
        bridge.bus_namespace, bridge.tenant_key
    );
    assert!(redis_get(&redis, &install_key).await.is_some());

    // Slack uninstalls the app: the token is revoked and both events come,
    // each answered 200 at the first attempt.
    assert!(bridge.slack.uninstall(OTHER_TEAM));
    for event in [
        bridge.slack.app_uninstalled_event(OTHER_TEAM),
        bridge.slack.tokens_revoked_event(OTHER_TEAM),
    ] {
        let delivery = bridge.slack.send_event(&bridge.webhook_url, &event).await;
        assert_eq!(delivery.status(), Some(200), "{event}");
        assert_eq!(delivery.attempts.len(), 1, "{event}");
    }
    assert_eq!(
        redis_get(&redis, &install_key).await,
        None,
        "the install (and its token) is still stored"
    );
    let note = redis_get(&redis, &note_key).await.expect("uninstall noted");
    assert!(note.contains("app_uninstalled"), "{note}");
    assert!(!note.contains("xoxb-"), "a token in the note: {note}");

    // An agent message there: a Failed receipt naming the uninstall, and
    // no call to Slack at all (neither the revoked token nor a retry).
    let posts_before = calls_of(&bridge, "chat.postMessage").len();
    let after = agent(&bridge, OutboundMessageSpec::text(&to_beta, "Still there?")).await;
    let failed = wait_receipt(&bridge, &after).await;
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["reasons"][0]["code"], "MessageNotAllowed");
    let why = failed["reasons"][0]["message"].as_str().unwrap_or("");
    assert!(
        why.contains(&format!("uninstalled from workspace {OTHER_TEAM}")),
        "{why}"
    );
    assert_eq!(calls_of(&bridge, "chat.postMessage").len(), posts_before);

    // Installed again (Slack issues a new token): messages flow again, and
    // an uninstall event from before the new install changes nothing.
    install_via_oauth(&bridge, OTHER_TEAM).await;
    assert_eq!(redis_get(&redis, &note_key).await, None);
    let mut late = bridge.slack.app_uninstalled_event(OTHER_TEAM);
    late["event_time"] = serde_json::json!(chrono::Utc::now().timestamp() - 3600);
    assert_eq!(bridge.send(&late).await, Some(200));
    assert!(redis_get(&redis, &install_key).await.is_some());
    let again = agent(&bridge, OutboundMessageSpec::text(&to_beta, "Welcome back")).await;
    assert_eq!(wait_receipt(&bridge, &again).await["status"], "Delivered");
    assert_eq!(
        bridge.slack.posted_to(&beta).pop().and_then(|m| m.text),
        Some("Welcome back".to_owned())
    );

    // The tenant's own configured token revoked: the same ending.
    bridge.slack.uninstall(TEAM);
    assert_eq!(
        bridge.send(&bridge.slack.tokens_revoked_event(TEAM)).await,
        Some(200)
    );
    let posts_before = calls_of(&bridge, "chat.postMessage").len();
    let gone = agent(&bridge, OutboundMessageSpec::text(&to_acme, "Hello?")).await;
    let failed = wait_receipt(&bridge, &gone).await;
    assert_eq!(failed["status"], "Failed");
    let why = failed["reasons"][0]["message"].as_str().unwrap_or("");
    assert!(why.contains("tokens_revoked"), "{why}");
    assert_eq!(calls_of(&bridge, "chat.postMessage").len(), posts_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guest_files_behind_a_sign_in_page_or_over_the_cap_are_not_served() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = SlackBridge::start_with(&amqp, &redis, &[FILE_CAP]).await;
    let channel = bridge.slack.open_dm(TEAM, "U0EVE");
    let share = |name: &str, mime: &str, bytes: Vec<u8>| {
        let file = bridge.slack.add_file(TEAM, name, mime, bytes);
        bridge
            .slack
            .file_event(TEAM, "U0EVE", &channel, "", vec![file])
    };
    let media_url = |index: usize| {
        bridge.inbound_bodies()[index]["content"][0]["attachment"]["url"]
            .as_str()
            .expect("attachment url")
            .to_owned()
    };

    // The install lacks files:read: Slack answers the download with its
    // sign-in page (HTML, 200). That page is not the guest's photo.
    bridge.slack.revoke_scope(TEAM, "files:read");
    let photo: Vec<u8> = (0..3000u32).map(|i| (i % 19) as u8).collect();
    assert_eq!(
        bridge
            .send(&share("photo.jpg", "image/jpeg", photo.clone()))
            .await,
        Some(200)
    );
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 1).await);
    let photo_url = media_url(0);
    let refused = reqwest::get(&photo_url).await.expect("media fetch");
    assert_eq!(refused.status(), 502);
    let body = refused.text().await.unwrap_or_default();
    assert!(
        !body.contains("<html") && !body.contains("Sign in"),
        "the sign-in page was served: {body}"
    );
    assert!(body.contains("files:read"), "{body}");
    let download = bridge.slack.downloads().pop().expect("download tried");
    assert_eq!(download.http_status, 200);
    assert!(
        download
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("text/html")),
        "{download:?}"
    );
    // With the scope back, the same URL serves the photo.
    bridge.slack.grant_scope(TEAM, "files:read");
    let served = reqwest::get(&photo_url).await.expect("media fetch");
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap().as_ref(), photo.as_slice());

    // Over the cap: not served.
    assert_eq!(
        bridge
            .send(&share("clip.mp4", "video/mp4", vec![3u8; 100_000]))
            .await,
        Some(200)
    );
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 2).await);
    let too_big = reqwest::get(&media_url(1)).await.expect("media fetch");
    assert_eq!(too_big.status(), 502);
    let body = too_big.text().await.unwrap_or_default();
    assert!(body.contains("65536"), "{body}");

    // A shared HTML file is the guest's file: served, as bytes to download
    // (a browser must not render it under the connector's origin).
    let menu = b"<!doctype html><html><body>menu</body></html>".to_vec();
    assert_eq!(
        bridge
            .send(&share("menu.html", "text/html", menu.clone()))
            .await,
        Some(200)
    );
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 3).await);
    let html = reqwest::get(&media_url(2)).await.expect("media fetch");
    assert_eq!(html.status(), 200);
    assert_eq!(html.headers()["content-type"], "application/octet-stream");
    assert_eq!(html.headers()["content-disposition"], "attachment");
    assert_eq!(html.headers()["x-content-type-options"], "nosniff");
    assert_eq!(html.bytes().await.unwrap().as_ref(), menu.as_slice());
}

/// Stage 25-sdk-slack: requests signed by Slack's Python SDK
/// (`UM_SLACK_SDK_SIGNED`) must pass the connector's verification, and the
/// simulator's signatures and the connector's blocks go back to the SDK
/// (`UM_SLACK_SDK_FIXTURE`). Without the variables (plain `cargo test`)
/// there is nothing to check.
#[test]
fn sdk_fixture_round_trip() {
    use um_connector::machinery::envelope::{
        Attachment, Card, CardAction, Content, Direction, Envelope, MediaType, QuickReply,
    };
    use um_connector::platform::{MessagingPlatform, WebhookRequest};
    use um_connector::platforms::slack::Slack;
    use um_connector::platforms::slack::inbound::{SlackRequest, parse_request};
    use um_connector::platforms::slack::outbound::{Destination, SlackCall, to_slack};

    let (Ok(signed_path), Ok(fixture_path)) = (
        std::env::var("UM_SLACK_SDK_SIGNED"),
        std::env::var("UM_SLACK_SDK_FIXTURE"),
    ) else {
        eprintln!("SKIPPED: run through e2e/tests.d/25-sdk-slack.sh");
        return;
    };
    let signed: Value =
        serde_json::from_slice(&std::fs::read(signed_path).expect("SDK fixture")).expect("JSON");
    let tenant_with = |secret: &str| {
        TenantConfig::new(
            "sdk.slack",
            "SDK",
            Platform::Slack,
            "https://um.example/slack/sdk.slack",
        )
        .with_messaging(MessagingConfig::Slack(SlackConfig {
            signing_secret: Secret::new(secret),
            bot_token: Secret::new("xoxb-unused"),
            app_id: None,
            client_id: None,
            client_secret: None,
            api_base_url: None,
        }))
    };
    let tenant = tenant_with(signed["signing_secret"].as_str().unwrap());
    let requests = signed["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 3);
    for request in requests {
        let kind = request["kind"].as_str().unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "content-type",
            request["content_type"].as_str().unwrap().parse().unwrap(),
        );
        headers.insert(
            "x-slack-request-timestamp",
            request["timestamp"].as_str().unwrap().parse().unwrap(),
        );
        headers.insert(
            "x-slack-signature",
            request["signature"].as_str().unwrap().parse().unwrap(),
        );
        let body = bytes::Bytes::from(request["body"].as_str().unwrap().to_owned());
        let method = http::Method::POST;
        let webhook = WebhookRequest {
            method: &method,
            headers: &headers,
            query: None,
            body: &body,
        };
        assert_eq!(
            Slack.verify(&tenant, &webhook),
            Ok(()),
            "{kind}: SDK signature refused"
        );
        assert!(
            Slack
                .verify(&tenant_with("another-secret"), &webhook)
                .is_err(),
            "{kind}: another secret accepted"
        );
        let tampered = bytes::Bytes::from(format!("{} ", request["body"].as_str().unwrap()));
        let forged = WebhookRequest {
            body: &tampered,
            ..webhook
        };
        assert!(
            Slack.verify(&tenant, &forged).is_err(),
            "{kind}: tampered body accepted"
        );
        let parsed = parse_request(request["content_type"].as_str(), &body).expect("parsed");
        match (kind, parsed) {
            ("event_callback", SlackRequest::Event(event)) => assert_eq!(event.event_id, "Ev0SDK1"),
            ("url_verification", SlackRequest::UrlVerification { challenge }) => {
                assert_eq!(challenge, "sdk-challenge");
                let reply = Slack.handshake(&tenant, &webhook).expect("handshake");
                assert_eq!(reply.body.as_ref(), b"sdk-challenge");
            }
            ("block_actions", SlackRequest::Interaction(payload)) => {
                assert_eq!(payload.actions[0].value.as_deref(), Some("yes"))
            }
            (kind, other) => panic!("{kind}: parsed as {other:?}"),
        }
    }

    // The other way: the simulator's signatures and the connector's blocks.
    let secret = "sim-signing-secret-77";
    let now = chrono::Utc::now().timestamp();
    let sim_signed: Vec<Value> = [
        (
            "event_callback",
            serde_json::json!({"type": "event_callback", "event_id": "Ev1"}).to_string(),
        ),
        (
            "block_actions",
            "payload=%7B%22type%22%3A%22block_actions%22%7D".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(kind, body)| {
        serde_json::json!({"kind": kind, "timestamp": now.to_string(), "body": body,
            "signature": um_simulators::slack::sign(secret, now, body.as_bytes())})
    })
    .collect();
    let envelope = |content: Content| {
        Envelope::message(
            "sdk.slack",
            Platform::Slack,
            Direction::AgentToGuest,
            "T1:D1",
            content,
        )
        .with_id("sdk")
    };
    let card = |title: &str| Card {
        title: title.into(),
        description: Some("A fine thing & more".into()),
        image_url: Some(format!("https://img.example/{title}.png")),
        actions: vec![
            CardAction::Postback {
                text: "Buy".into(),
                payload: format!("buy-{title}"),
            },
            CardAction::Link {
                text: "Details".into(),
                url: "https://shop.example/x".into(),
            },
        ],
    };
    let contents = [
        (
            "quick replies",
            Content {
                text: Some("Did that help?".into()),
                quick_replies: vec![
                    QuickReply {
                        text: "Yes".into(),
                        payload: "help-yes".into(),
                        image_url: None,
                    },
                    QuickReply {
                        text: "No".into(),
                        payload: "help-no".into(),
                        image_url: None,
                    },
                ],
                ..Content::default()
            },
        ),
        (
            "carousel",
            Content {
                cards: vec![card("one"), card("two"), card("three")],
                ..Content::default()
            },
        ),
        (
            "image",
            Content {
                text: Some("Here is the map".into()),
                attachments: vec![Attachment {
                    media_type: MediaType::Image,
                    url: "https://cdn.example/map.png".into(),
                    mime: "image/png".into(),
                    filename: Some("map.png".into()),
                    size_bytes: None,
                    caption: None,
                    sha256: None,
                }],
                ..Content::default()
            },
        ),
    ];
    let messages: Vec<Value> = contents
        .into_iter()
        .map(|(what, content)| {
            let calls = to_slack(
                &envelope(content),
                Destination::channel("D1"),
                &MessagingOptions::default(),
            )
            .expect(what);
            // An image is uploaded; its image-block fallback is what goes
            // through Block Kit.
            let body = match &calls[0] {
                SlackCall::PostMessage(body) => body,
                SlackCall::UploadFile(upload) => upload
                    .fallback
                    .as_ref()
                    .unwrap_or_else(|| panic!("{what}: upload without a fallback")),
            };
            serde_json::json!({"what": what, "blocks": body["blocks"]})
        })
        .collect();
    let fixture =
        serde_json::json!({"signing_secret": secret, "signed": sim_signed, "messages": messages});
    std::fs::write(fixture_path, fixture.to_string()).expect("fixture written");
}

/// Requests a server saw: target and `Authorization`.
type Recorded = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A server on 127.0.0.1 that records every request with its
/// `Authorization` (and answers 200 with a PNG).
async fn recording_server() -> (String, Recorded) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let requests: Recorded = Arc::default();
    let log = requests.clone();
    let app = Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap| {
            let log = log.clone();
            async move {
                let authorization = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                log.lock().unwrap().push((uri.to_string(), authorization));
                ([("content-type", "image/png")], vec![0u8; 16])
            }
        },
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, requests)
}

/// A redirect to `to`, served where the agents' files are (allowed).
async fn serve_redirect(to: String) -> String {
    let listener = tokio::net::TcpListener::bind((DOWNLOADS_IP, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route(
        "/downloads/moved.pdf",
        get(move || {
            let to = to.clone();
            async move { (axum::http::StatusCode::FOUND, [("location", to)], "") }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/downloads/moved.pdf")
}

/// The bot token goes to Slack's file host only: a guest's file whose
/// `url_private` names another host is not fetched. An agent's file on an
/// allowed host that redirects to 127.0.0.1 is not fetched there either.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_elsewhere_than_slack_or_redirected_to_loopback_are_not_fetched() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = SlackBridge::start(&amqp, &redis).await;
    let (recorder, requests) = recording_server().await;
    let channel = bridge.slack.open_dm(TEAM, "U0MAL");
    let to = format!("{TEAM}:{channel}");

    // A signed event (as if from Slack) with a file on another host.
    let mut file = bridge
        .slack
        .add_file(TEAM, "photo.png", "image/png", vec![1u8; 64]);
    let elsewhere = format!("{recorder}/files-pri/{TEAM}-F0EVIL/photo.png");
    file["url_private"] = Value::String(elsewhere.clone());
    file["url_private_download"] = Value::String(format!("{elsewhere}?download=1"));
    let shared = bridge
        .slack
        .file_event(TEAM, "U0MAL", &channel, "", vec![file]);
    assert_eq!(bridge.send(&shared).await, Some(200));
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 1).await);
    let url = bridge.inbound_bodies()[0]["content"][0]["attachment"]["url"]
        .as_str()
        .expect("attachment url")
        .to_owned();
    let refused = reqwest::get(&url).await.expect("media fetch");
    assert_eq!(refused.status(), 502);
    let body = refused.text().await.unwrap_or_default();
    assert!(body.contains("files.slack.com"), "{body}");
    assert!(bridge.slack.downloads().is_empty());

    // An agent's file whose host redirects to 127.0.0.1: a Failed receipt.
    let moved = serve_redirect(format!("{recorder}/internal/plan.pdf")).await;
    let message_id = agent(
        &bridge,
        OutboundMessageSpec::text(&to, "the plan").with_content(attachment(
            "File",
            &moved,
            "application/pdf",
            "plan.pdf",
        )),
    )
    .await;
    let failed = wait_receipt(&bridge, &message_id).await;
    assert_eq!(failed["status"], "Failed", "{failed}");
    let why = failed["reasons"][0]["message"].as_str().unwrap_or("");
    assert!(why.contains("loopback"), "{why}");
    assert!(bridge.slack.uploaded().is_empty());

    let seen = requests.lock().unwrap().clone();
    assert!(seen.is_empty(), "contacted (the bot token sent?): {seen:?}");
}
