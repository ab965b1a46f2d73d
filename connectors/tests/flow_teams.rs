//! Microsoft Teams end to end on real RabbitMQ and Redis: the `teams` and
//! `gcloudcx` connector processes between the Teams (Bot Framework +
//! identity platform) and Genesys simulators.
//!
//! Guest text, an inline image (fetched with the bot token) and a file
//! (pre-authenticated download URL) reach Genesys under the connector's
//! signed URLs; every forged token (expired, wrong audience, wrong issuer,
//! bad signature, serviceUrl mismatch, key not endorsed for msteams,
//! unknown key, none) is refused with 401 and nothing is published; a key
//! rotation is picked up; a redelivered activity arrives once. Agent text,
//! an image, quick replies (suggested actions in a personal chat, an
//! Adaptive Card with Action.Submit in a group chat) and a card reach Teams
//! with one cached token; taps come back as button responses; receipts
//! reach Genesys; a 429 is honoured; a blocked conversation gives a Failed
//! receipt RecipientOptedOut; an unreachable key server is a 503 (retried
//! by the channel), not a 401. The key cache is also checked in-process.
//!
//! Only the `msteams` channel is taken: an authentic Web Chat activity (a
//! key endorsed for Web Chat too, as Microsoft's are) is refused with 403
//! and its `contentUrl` on 127.0.0.1 is never contacted; a Teams
//! activity's `contentUrl` on a loopback address that is neither allowed
//! nor the configured origin is not fetched either. Media is served with
//! `nosniff`, a PDF as an `application/octet-stream` attachment.

mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};
use support::{Connector, PlatformBridge, eventually, free_port, services, unique};
use um_config::{MessagingConfig, Platform, Secret, ServiceConfig, TeamsConfig, TenantConfig};
use um_connector::machinery::store::Store;
use um_connector::platforms::teams::auth::{AuthError, BOT_FRAMEWORK_ISSUER, KeyCache};
use um_connector::platforms::teams::manifest::PackageState;
use um_connector::platforms::teams::platform::PACKAGE_KIND;
use um_simulators::genesys::{Card, CardAction, GenesysSimulator, OutboundMessageSpec};
use um_simulators::teams::{
    ActivitySpec, TeamsConversation, TeamsOptions, TeamsSimulator, TeamsUser, TokenFault,
};

const WAIT: Duration = Duration::from_secs(20);
const APP_ID: &str = "5f4c2a1b-7d1e-4c3b-9a8f-0123456789ab";
const APP_PASSWORD: &str = "teams~bot~password~0123456789";

struct TeamsBridge {
    tenant_key: String,
    teams_config: ServiceConfig,
    genesys: GenesysSimulator,
    teams: TeamsSimulator,
    integration_id: String,
    teams_connector: Connector,
    _gcloudcx_connector: Connector,
    webhook_url: String,
    bus_namespace: String,
}

impl TeamsBridge {
    async fn start(amqp: &str, redis: &str) -> Self {
        let teams = TeamsSimulator::start(TeamsOptions::default().with_bot(
            APP_ID,
            APP_PASSWORD,
            "ACME Bot",
        ))
        .await
        .expect("Teams simulator");
        let base = PlatformBridge::start(
            amqp,
            redis,
            Platform::Teams,
            MessagingConfig::Teams(TeamsConfig {
                app_id: APP_ID.to_owned(),
                app_password: Secret::new(APP_PASSWORD),
                app_tenant_id: None,
                app: Default::default(),
                api_base_url: Some(teams.base_url()),
            }),
            // Rotation is checked right after the keys were fetched.
            &[("UM_TEAMS_KEY_REFRESH_MIN_MS", "0")],
        )
        .await;
        teams.set_messaging_endpoint(APP_ID, &base.webhook_url);
        Self {
            tenant_key: base.tenant_key,
            teams_config: base.platform_config,
            genesys: base.genesys,
            teams,
            integration_id: base.integration_id,
            teams_connector: base.platform_connector,
            _gcloudcx_connector: base.gcloudcx_connector,
            webhook_url: base.webhook_url,
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

    async fn say(&self, spec: ActivitySpec) {
        let delivery = self
            .teams
            .send_activity(APP_ID, spec)
            .await
            .expect("activity");
        assert_eq!(delivery.status, Some(200), "{delivery:?}");
    }

    async fn agent(&self, spec: OutboundMessageSpec) -> String {
        let sent = self
            .genesys
            .send_agent_message(&self.integration_id, spec)
            .await
            .expect("agent message");
        assert_eq!(sent.final_status(), Some(200));
        sent.message_id
    }
}

async fn fetch(url: &str) -> (u16, String, Vec<u8>) {
    let (status, headers, bytes) = fetch_with_headers(url).await;
    (status, header_of(&headers, "content-type"), bytes)
}

async fn fetch_with_headers(url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = reqwest::get(url).await.expect("media fetch");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.bytes().await.expect("bytes").to_vec(),
    )
}

fn header_of(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guest_activities_are_authenticated_and_reach_genesys_once() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = TeamsBridge::start(&amqp, &redis).await;
    let user = TeamsUser::new("29:1megan", "Megan Bowen");
    let chat = TeamsConversation::personal("a:1megan-personal");
    bridge.say(ActivitySpec::bot_added(&chat, &user)).await;
    bridge
        .say(ActivitySpec::message(&chat, &user, "hello from Teams").with_id("1700000000111"))
        .await;
    assert!(
        eventually(WAIT, || bridge.inbound_bodies().len() == 1).await,
        "text did not arrive"
    );
    let text = &bridge.inbound_bodies()[0];
    assert_eq!(text["text"], "hello from Teams");
    assert_eq!(text["channel"]["from"]["id"], "a:1megan-personal");
    assert_eq!(text["channel"]["from"]["nickname"], "Megan Bowen");
    let attributes = &text["channel"]["metadata"]["customAttributes"];
    assert_eq!(attributes["media"], "Microsoft Teams");
    assert_eq!(attributes["teamsScope"], "personal");
    assert_eq!(attributes["teamsTenantId"], "tenant-1");

    // Redelivery of the same activity id: accepted, not relayed again.
    bridge
        .say(ActivitySpec::message(&chat, &user, "hello from Teams").with_id("1700000000111"))
        .await;

    // An inline image (needs the bot token) and a file (pre-authenticated).
    let picture: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let inline = bridge
        .teams
        .upload_inline_image(picture.clone(), "image/png");
    bridge
        .say(ActivitySpec::message(&chat, &user, "my screen").with_attachment(inline))
        .await;
    let report = b"%PDF-1.7 quarterly report".to_vec();
    let file = bridge
        .teams
        .upload_file(report.clone(), "application/pdf", "report.pdf");
    bridge
        .say(ActivitySpec::message(&chat, &user, "").with_attachment(file))
        .await;
    assert!(
        eventually(WAIT, || bridge.inbound_bodies().len() >= 3).await,
        "media did not arrive"
    );
    let bodies = bridge.inbound_bodies();
    assert_eq!(
        bodies.len(),
        3,
        "the redelivered text arrived twice: {bodies:#?}"
    );
    let image = &bodies[1]["content"][0]["attachment"];
    assert_eq!(bodies[1]["text"], "my screen");
    assert_eq!(image["mediaType"], "Image");
    let pdf = &bodies[2]["content"][0]["attachment"];
    assert_eq!(pdf["mediaType"], "File");
    assert_eq!(pdf["filename"], "report.pdf");
    // The PDF is served as bytes to download, not as a document a
    // browser renders under the connector's origin.
    for (attachment, bytes, mime, disposition) in [
        (image, &picture, "image/png", ""),
        (pdf, &report, "application/octet-stream", "attachment"),
    ] {
        let url = attachment["url"].as_str().expect("url");
        assert!(url.starts_with(&bridge.teams_connector.base_url()), "{url}");
        assert!(
            !url.contains(&bridge.teams.base_url()),
            "the Teams URL leaked: {url}"
        );
        assert!(
            !url.contains("tempauth"),
            "the file's pre-authentication leaked: {url}"
        );
        let (status, headers, served) = fetch_with_headers(url).await;
        assert_eq!(
            (status, header_of(&headers, "content-type").as_str()),
            (200, mime)
        );
        assert_eq!(header_of(&headers, "x-content-type-options"), "nosniff");
        assert_eq!(header_of(&headers, "content-disposition"), disposition);
        assert_eq!(&served, bytes);
        let tampered = url.replace("sig=", "sig=00");
        assert_eq!(fetch(&tampered).await.0, 401);
    }
    let downloads = bridge.teams.downloads();
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    assert!(
        downloads[0].authorized,
        "the inline image was fetched without the bot token"
    );
    assert_eq!(
        downloads.iter().map(|d| d.status).collect::<Vec<_>>(),
        [200, 200]
    );

    // Forged tokens: 401 each, nothing published.
    for fault in [
        TokenFault::Missing,
        TokenFault::Expired,
        TokenFault::WrongAudience,
        TokenFault::WrongIssuer,
        TokenFault::BadSignature,
        TokenFault::ServiceUrlMismatch,
        TokenFault::NotEndorsed,
        TokenFault::UnknownKey,
    ] {
        let forged = bridge
            .teams
            .send_activity_with(APP_ID, ActivitySpec::message(&chat, &user, "forged"), fault)
            .await
            .expect("post");
        assert_eq!(forged.status, Some(401), "{fault:?} was not refused");
    }
    // A malformed body with a valid-looking bearer: 400.
    let malformed = reqwest::Client::new()
        .post(&bridge.webhook_url)
        .bearer_auth("x.y.z")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(malformed.status(), 400);

    // The channel rotates its signing key: the connector fetches the new
    // key set and accepts the new signature.
    let fetches_before = bridge.teams.key_fetches().len();
    bridge.teams.rotate_keys().expect("rotation");
    bridge.teams.retire_old_keys();
    bridge
        .say(ActivitySpec::message(&chat, &user, "after rotation"))
        .await;
    assert!(
        bridge.teams.key_fetches().len() > fetches_before,
        "keys were not refreshed"
    );
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() >= 4).await);
    let bodies = bridge.inbound_bodies();
    assert_eq!(bodies.len(), 4);
    assert_eq!(bodies[3]["text"], "after rotation");
    assert!(bodies.iter().all(|b| b["text"] != "forged"));
}

/// A file server standing in for Genesys' download host.
async fn serve_image(bytes: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route(
        "/downloads/map.png",
        get(move || {
            let bytes = bytes.clone();
            async move { ([("content-type", "image/png")], bytes) }
        }),
    );
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(120), axum::serve(listener, app)).await;
    });
    format!("http://{addr}/downloads/map.png")
}

fn receipt_for<'a>(receipts: &'a [Value], id: &str) -> Option<&'a Value> {
    receipts.iter().find(|r| r["id"] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_messages_cards_taps_receipts_throttling_and_blocking() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = TeamsBridge::start(&amqp, &redis).await;
    let user = TeamsUser::new("29:1adele", "Adele Vance");
    let chat = TeamsConversation::personal("a:1adele-personal");
    let to = chat.id.clone();
    bridge.say(ActivitySpec::message(&chat, &user, "hi")).await;
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 1).await);

    // Agent text: plain text from the bot to the user.
    let text_id = bridge
        .agent(OutboundMessageSpec::text(&to, "How can I help?"))
        .await;
    assert!(
        eventually(WAIT, || bridge.teams.sent_to(&to).len() == 1).await,
        "text not sent"
    );
    let sent = &bridge.teams.sent_to(&to)[0];
    assert_eq!(sent.app_id.as_deref(), Some(APP_ID));
    assert_eq!(sent.activity["type"], "message");
    assert_eq!(sent.activity["text"], "How can I help?");
    assert_eq!(sent.activity["from"]["id"], format!("28:{APP_ID}"));
    assert_eq!(sent.activity["recipient"]["id"], user.id);

    // An image by URL: the channel can fetch it.
    let image: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
    let url = serve_image(image.clone()).await;
    let image_id = bridge
        .agent(OutboundMessageSpec::attachment(
            &to,
            "Image",
            &url,
            "image/png",
            Some("map.png"),
        ))
        .await;
    assert!(
        eventually(WAIT, || bridge.teams.sent_to(&to).len() == 2).await,
        "image not sent"
    );
    let sent = &bridge.teams.sent_to(&to)[1];
    assert_eq!(sent.activity["attachments"][0]["contentType"], "image/png");
    assert_eq!(sent.fetched_images, [image.len()]);

    // Quick replies: suggested actions; the channel throttles the first try.
    bridge.teams.inject_fault(429, Some(1), 1);
    let started = Instant::now();
    let quick_id = bridge
        .agent(OutboundMessageSpec::quick_replies(
            &to,
            "Did that help?",
            &[("Yes", "help-yes"), ("No", "help-no")],
        ))
        .await;
    assert!(
        eventually(WAIT, || bridge.teams.sent_to(&to).len() == 3).await,
        "quick replies not sent"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    let statuses: Vec<u16> = bridge
        .teams
        .sent_activities()
        .iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(statuses, [201, 201, 429, 201]);
    let prompt = &bridge.teams.sent_to(&to)[2].activity;
    assert_eq!(prompt["text"], "Did that help?");
    assert_eq!(prompt["suggestedActions"]["actions"][0]["type"], "imBack");
    assert_eq!(prompt["suggestedActions"]["actions"][1]["value"], "No");

    // The guest taps "No": Teams posts its title as text.
    bridge.say(ActivitySpec::message(&chat, &user, "No")).await;
    assert!(
        eventually(WAIT, || !bridge.genesys.structured_responses().is_empty()).await,
        "no structured response"
    );
    let response = &bridge.genesys.structured_responses()[0].body;
    assert_eq!(response["buttonResponse"]["type"], "QuickReply");
    assert_eq!(response["buttonResponse"]["payload"], "help-no");

    // A card: an Adaptive Card; its Action.Submit comes back as a button.
    let card_id = bridge
        .agent(OutboundMessageSpec::card(
            &to,
            Card {
                title: "Blue shirt".into(),
                description: Some("100% cotton".into()),
                image: Some("https://cdn.example/shirt.png".into()),
                actions: vec![
                    CardAction::link("Details", "https://shop.example/1"),
                    CardAction::postback("Buy", "buy-1"),
                ],
            },
        ))
        .await;
    assert!(
        eventually(WAIT, || bridge.teams.sent_to(&to).len() == 4).await,
        "card not sent"
    );
    let card = &bridge.teams.sent_to(&to)[3].activity["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["body"][0]["text"], "Blue shirt");
    let submit = card["content"]["actions"][1].clone();
    assert_eq!(submit["type"], "Action.Submit");
    bridge
        .say(ActivitySpec::submit(&chat, &user, submit["data"].clone()))
        .await;
    assert!(eventually(WAIT, || bridge.genesys.structured_responses().len() >= 2).await);
    let response = &bridge.genesys.structured_responses()[1].body;
    assert_eq!(response["buttonResponse"]["type"], "Button");
    assert_eq!(response["buttonResponse"]["payload"], "buy-1");
    assert_eq!(response["buttonResponse"]["text"], "Buy");

    // A group chat: quick replies become Action.Submit buttons.
    let group = TeamsConversation::group_chat("19:group-chat@thread.v2");
    bridge
        .say(ActivitySpec::message(
            &group,
            &user,
            "<at>ACME Bot</at> help",
        ))
        .await;
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() >= 2).await);
    assert_eq!(bridge.inbound_bodies()[1]["text"], "help");
    bridge
        .agent(OutboundMessageSpec::quick_replies(
            &group.id,
            "Which one?",
            &[("A", "pick-a")],
        ))
        .await;
    assert!(eventually(WAIT, || bridge.teams.sent_to(&group.id).len() == 1).await);
    let buttons = &bridge.teams.sent_to(&group.id)[0].activity;
    assert!(buttons.get("suggestedActions").is_none());
    let action = &buttons["attachments"][0]["content"]["actions"][0];
    assert_eq!(action["type"], "Action.Submit");
    bridge
        .say(ActivitySpec::submit(&group, &user, action["data"].clone()))
        .await;
    assert!(eventually(WAIT, || bridge.genesys.structured_responses().len() >= 3).await);
    let response = &bridge.genesys.structured_responses()[2].body;
    assert_eq!(response["buttonResponse"]["type"], "QuickReply");
    assert_eq!(response["buttonResponse"]["payload"], "pick-a");

    // Delivered receipts; one token served every send (cached in Redis).
    let delivered = [&text_id, &image_id, &quick_id, &card_id];
    assert!(
        eventually(WAIT, || {
            let receipts = bridge.receipts();
            delivered
                .iter()
                .all(|id| receipt_for(&receipts, id).is_some())
        })
        .await,
        "receipts missing"
    );
    for id in delivered {
        assert_eq!(
            receipt_for(&bridge.receipts(), id).expect("receipt")["status"],
            "Delivered"
        );
    }
    let tokens = bridge.teams.token_requests();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0].authority, "botframework.com");
    assert_eq!(tokens[0].scope, "https://api.botframework.com/.default");

    // The user blocked the bot: Failed, RecipientOptedOut.
    bridge.teams.block_conversation(&to);
    let blocked = bridge
        .agent(OutboundMessageSpec::text(&to, "Still there?"))
        .await;
    assert!(
        eventually(WAIT, || receipt_for(&bridge.receipts(), &blocked).is_some()).await,
        "no receipt for the blocked conversation"
    );
    let failed = receipt_for(&bridge.receipts(), &blocked)
        .cloned()
        .expect("receipt");
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["reasons"][0]["code"], "RecipientOptedOut");
    assert_eq!(bridge.teams.sent_to(&to).len(), 4);

    // A conversation no activity ever came from: InvalidDestination.
    let stranger = bridge
        .agent(OutboundMessageSpec::text("a:1never-seen", "Hello?"))
        .await;
    assert!(
        eventually(WAIT, || receipt_for(&bridge.receipts(), &stranger)
            .is_some())
        .await
    );
    let failed = receipt_for(&bridge.receipts(), &stranger)
        .cloned()
        .expect("receipt");
    assert_eq!(failed["reasons"][0]["code"], "InvalidDestination");
}

async fn package_state(store: &Store, tenant: &str) -> Option<PackageState> {
    let text = store
        .get(tenant, PACKAGE_KIND, "state")
        .await
        .expect("redis")?;
    serde_json::from_str(&text).ok()
}

/// The app package is built at start and its version moves when the
/// tenant's bot name or accent color changes (configuration reload).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_app_package_is_versioned_by_content() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let mut bridge = TeamsBridge::start(&amqp, &redis).await;
    let store = Store::connect(&redis, "teams")
        .await
        .expect("redis")
        .in_namespace(&bridge.bus_namespace);
    let tenant = bridge.tenant_key.clone();
    let first = wait_for_package(&store, &tenant, |_| true).await;
    assert_eq!(first.version, "1.0.0");
    use base64::Engine;
    let zip = store
        .get(&tenant, PACKAGE_KIND, "zip")
        .await
        .expect("redis")
        .expect("zip");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(zip)
        .expect("base64");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).expect("zip");
    let manifest: Value =
        serde_json::from_reader(archive.by_name("manifest.json").expect("manifest")).expect("json");
    assert_eq!(manifest["bots"][0]["botId"], APP_ID);
    assert_eq!(manifest["name"]["short"], "Flow");
    assert_eq!(manifest["version"], "1.0.0");
    assert!(archive.by_name("color.png").is_ok() && archive.by_name("outline.png").is_ok());

    // The registration page and the package download.
    let base = bridge.teams_connector.base_url();
    let page = reqwest::get(format!("{base}/teams/{tenant}/register"))
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("html");
    assert!(page.contains(APP_ID), "{page}");
    assert!(page.contains(&bridge.webhook_url));
    assert!(page.contains("version 1.0.0"));
    assert!(!page.contains(APP_PASSWORD));
    let download = reqwest::get(format!("{base}/teams/{tenant}/app-package.zip"))
        .await
        .expect("zip");
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "application/zip");
    assert_eq!(
        download.bytes().await.expect("bytes").as_ref(),
        bytes.as_slice()
    );
    let unknown = reqwest::get(format!("{base}/teams/flow.nobody/register"))
        .await
        .expect("page");
    assert_eq!(unknown.status(), 404);

    let mut config = bridge.teams_config.clone();
    if let Some(TenantConfig {
        messaging: Some(MessagingConfig::Teams(teams)),
        ..
    }) = config.tenants.get_mut(&tenant)
    {
        teams.app.bot_name = Some("ACME Help".into());
        teams.app.accent_color = Some("#FF8800".into());
    }
    bridge.teams_connector.rewrite_config(&config);
    bridge.teams_config = config;
    let second = wait_for_package(&store, &tenant, |s| s != &first).await;
    assert_eq!(second.version, "1.0.1");
    assert_ne!(second.content_hash, first.content_hash);
}

/// The Bot Framework's key server down (and no cached key): the activity
/// cannot be judged, so it is a 503 the channel retries, not a 401 that
/// says the token is forged; nothing is published. Once the keys are
/// reachable again the next activity is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_key_server_is_503_and_nothing_is_published() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let mut bridge = TeamsBridge::start(&amqp, &redis).await;
    let tenant = bridge.tenant_key.clone();
    let chat = TeamsConversation::personal(&unique("a:1"));
    let user = TeamsUser::new("29:1ana", "Ana");
    let set_base = |config: &mut ServiceConfig, base: String| {
        if let Some(TenantConfig {
            messaging: Some(MessagingConfig::Teams(teams)),
            ..
        }) = config.tenants.get_mut(&tenant)
        {
            teams.api_base_url = Some(base);
        }
    };
    let mut down = bridge.teams_config.clone();
    set_base(&mut down, format!("http://127.0.0.1:{}", free_port()));
    bridge.teams_connector.rewrite_config(&down);

    let mut statuses = Vec::new();
    let deadline = Instant::now() + WAIT;
    let mut refused = false;
    while !refused && Instant::now() < deadline {
        // Accepted (200) until the connector has read the new file.
        let probe = format!("probe {}", statuses.len());
        let spec = ActivitySpec::message(&chat, &user, &probe);
        let status = bridge
            .teams
            .send_activity(APP_ID, spec)
            .await
            .ok()
            .and_then(|d| d.status);
        statuses.push(status);
        refused = status == Some(503);
        if !refused {
            // The connector picks the rewritten file up within a moment.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(
        refused,
        "no 503 while the keys are unreachable: {statuses:?}"
    );
    assert!(
        !statuses.contains(&Some(401)),
        "a token was called forged because the keys were unreachable: {statuses:?}"
    );

    let up = bridge.teams_config.clone();
    bridge.teams_connector.rewrite_config(&up);
    bridge.teams_config = up;
    let deadline = Instant::now() + WAIT;
    let mut accepted = false;
    while !accepted && Instant::now() < deadline {
        let spec = ActivitySpec::message(&chat, &user, "hello again");
        accepted = bridge
            .teams
            .send_activity(APP_ID, spec)
            .await
            .ok()
            .and_then(|d| d.status)
            == Some(200);
        if !accepted {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(accepted, "not accepted once the keys are reachable");
    assert!(
        eventually(WAIT, || bridge
            .inbound_bodies()
            .iter()
            .any(|b| b["text"] == "hello again"))
        .await,
        "the accepted activity did not reach Genesys"
    );
    let refused_probe = format!("probe {}", statuses.len() - 1);
    let texts: Vec<String> = bridge
        .inbound_bodies()
        .iter()
        .filter_map(|b| b["text"].as_str().map(str::to_owned))
        .collect();
    assert!(
        !texts.contains(&refused_probe),
        "the refused activity was published: {texts:?}"
    );
    assert_eq!(
        texts.last().map(String::as_str),
        Some("hello again"),
        "{texts:?}"
    );
}

/// The package state once `accept` takes it (polled with a deadline).
async fn wait_for_package(
    store: &Store,
    tenant: &str,
    accept: impl Fn(&PackageState) -> bool,
) -> PackageState {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(state) = package_state(store, tenant).await.filter(|s| accept(s)) {
            return state;
        }
        assert!(Instant::now() < deadline, "the package state did not come");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The key cache against the simulator's metadata: fetched once, reused,
/// refreshed for an unknown key id only after the least refresh interval.
#[tokio::test]
async fn key_cache_fetches_once_and_refreshes_on_rotation() {
    let teams = TeamsSimulator::start(TeamsOptions::default())
        .await
        .expect("simulator");
    let http = reqwest::Client::new();
    let metadata = format!("{}/v1/.well-known/openidconfiguration", teams.base_url());
    let eager = KeyCache::new(Duration::ZERO);
    let first = eager.key(&http, &metadata, "bf-key-1").await.expect("key");
    assert!(first.endorsements.iter().any(|e| e == "msteams"));
    eager
        .key(&http, &metadata, "bf-key-1")
        .await
        .expect("cached key");
    assert_eq!(teams.key_fetches(), ["openidconfiguration", "keys"]);

    let kid = teams.rotate_keys().expect("rotation");
    let lazy = KeyCache::new(Duration::from_secs(3600));
    lazy.key(&http, &metadata, "bf-key-1").await.expect("key");
    assert_eq!(
        lazy.key(&http, &metadata, "bf-key-9").await,
        Err(AuthError::UnknownKey("bf-key-9".into()))
    );
    assert_eq!(
        teams.key_fetches().len(),
        4,
        "an unknown key id refetched within the interval"
    );

    assert_eq!(
        eager
            .key(&http, &metadata, &kid)
            .await
            .expect("rotated key")
            .kid
            .as_deref(),
        Some(kid.as_str())
    );
    assert_eq!(teams.key_fetches().len(), 6);

    let unreachable = KeyCache::default();
    let error = unreachable
        .key(
            &http,
            "http://127.0.0.1:9/v1/.well-known/openidconfiguration",
            "k",
        )
        .await;
    assert!(
        matches!(error, Err(AuthError::KeysUnreachable(_))),
        "{error:?}"
    );
}

const SIGNING_KEY: &str = include_str!("../src/platforms/teams/testdata/signing-key.pem");
const SIGNING_KEY_MODULUS: &str = include_str!("../src/platforms/teams/testdata/signing-key.n");

/// The Bot Framework's OpenID metadata, key set and token endpoint, with
/// one signing key endorsed for Teams and Web Chat (as Microsoft's keys
/// are), so activities of any channel can be signed as the channel does.
async fn bot_framework() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let jwks_uri = format!("{base}/keys");
    let app = Router::new()
        .route(
            "/v1/.well-known/openidconfiguration",
            get(move || {
                let jwks_uri = jwks_uri.clone();
                async move { axum::Json(json!({"jwks_uri": jwks_uri})) }
            }),
        )
        .route(
            "/keys",
            get(|| async {
                axum::Json(json!({"keys": [{
                    "kty": "RSA", "use": "sig", "kid": "k-webchat-too",
                    "n": SIGNING_KEY_MODULUS.trim(), "e": "AQAB",
                    "endorsements": ["msteams", "webchat"],
                }]}))
            }),
        )
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(|| async { axum::Json(json!({"access_token": "bot-token", "expires_in": 3600})) }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// A server on 127.0.0.1 that records every request (and answers 200).
async fn recording_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let requests: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let log = requests.clone();
    let app = Router::new().fallback(move |uri: axum::http::Uri| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(uri.to_string());
            ([("content-type", "image/png")], vec![0u8; 16])
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, requests)
}

/// An activity of `channel` as the Bot Framework posts it, with its token.
fn signed_activity(
    channel: &str,
    id: &str,
    service_url: &str,
    content_url: &str,
) -> (Value, String) {
    let activity = json!({
        "type": "message", "id": id, "channelId": channel, "serviceUrl": service_url,
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "from": {"id": "29:1mallory", "name": "Mallory"},
        "conversation": {"id": format!("a:{channel}-{id}"), "conversationType": "personal"},
        "recipient": {"id": format!("28:{APP_ID}"), "name": "ACME Bot"},
        "text": format!("a picture from {channel}"),
        "attachments": [{"contentType": "image/png", "contentUrl": content_url}],
    });
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": BOT_FRAMEWORK_ISSUER, "aud": APP_ID, "exp": now + 3600,
                        "nbf": now - 5, "serviceurl": service_url});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("k-webchat-too".into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(SIGNING_KEY.as_bytes()).expect("key");
    let token = jsonwebtoken::encode(&header, &claims, &key).expect("token");
    (activity, token)
}

/// An Azure Bot with Web Chat enabled: whoever has its secret can make the
/// Bot Framework sign an activity with a `contentUrl` of their choosing.
/// The connector takes Teams activities only, and fetches no `contentUrl`
/// on an address nobody allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn web_chat_activities_are_refused_and_loopback_content_urls_not_fetched() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bot_framework = bot_framework().await;
    let (recorder, requests) = recording_server().await;
    let base = PlatformBridge::start(
        &amqp,
        &redis,
        Platform::Teams,
        MessagingConfig::Teams(TeamsConfig {
            app_id: APP_ID.to_owned(),
            app_password: Secret::new(APP_PASSWORD),
            app_tenant_id: None,
            app: Default::default(),
            api_base_url: Some(bot_framework),
        }),
        &[],
    )
    .await;
    let inbound = || {
        base.genesys
            .inbound_messages()
            .into_iter()
            .filter(|record| record.integration_id == base.integration_id)
            .map(|record| record.body)
            .collect::<Vec<Value>>()
    };
    let post = |(activity, token): (Value, String)| {
        let url = base.webhook_url.clone();
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&activity)
                .send()
                .await
                .expect("post");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    };
    let secret_png = format!("{recorder}/internal/secret.png");

    let (status, body) = post(signed_activity(
        "webchat",
        "wc-1",
        &format!("{recorder}/webchat/"),
        &secret_png,
    ))
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("webchat"),
        "the refusal names the channel: {body}"
    );

    // The same activity from Teams is authentic and accepted: the 403 was
    // the channel's, not the token's.
    let (status, body) = post(signed_activity(
        "msteams",
        "ms-1",
        &format!("{recorder}/teams/"),
        &secret_png,
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        eventually(WAIT, || !inbound().is_empty()).await,
        "the Teams activity did not arrive"
    );
    let bodies = inbound();
    assert_eq!(
        bodies.len(),
        1,
        "the Web Chat activity was relayed: {bodies:#?}"
    );
    assert_eq!(bodies[0]["text"], "a picture from msteams");
    // Its picture is on 127.0.0.1, neither allowed (UM_FETCH_ALLOW) nor
    // the configured Bot Framework origin: not fetched.
    let url = bodies[0]["content"][0]["attachment"]["url"]
        .as_str()
        .expect("attachment url");
    let (status, _, served) = fetch_with_headers(url).await;
    assert_eq!(status, 502);
    let text = String::from_utf8_lossy(&served);
    assert!(text.contains("loopback"), "{text}");
    assert!(
        requests.lock().unwrap().is_empty(),
        "the content URL was contacted: {:?}",
        requests.lock().unwrap()
    );
}
