//! LINE end to end: the LINE simulator, the `line` and `gcloudcx`
//! connector processes, real RabbitMQ and Redis, the Genesys simulator.

mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use serde_json::Value;
use support::{Connector, PlatformBridge, eventually, services, unique};
use um_config::{
    LineConfig, LineSwitcherConfig, MessagingConfig, Platform, Secret, ServiceConfig, TenantConfig,
};
use um_simulators::genesys::{GenesysSimulator, OutboundMessageSpec};
use um_simulators::line::{
    ChannelSpec, Guest, LineError, LineOptions, LineSimulator, RedeliveryPolicy,
};

const WAIT: Duration = Duration::from_secs(20);

struct LineBridge {
    genesys: GenesysSimulator,
    line: LineSimulator,
    channel_id: String,
    access_token: String,
    integration_id: String,
    line_connector: Connector,
    _gcloudcx_connector: Connector,
}

impl LineBridge {
    async fn start(amqp: &str, redis: &str) -> Self {
        let channel_id = format!(
            "{}",
            1_600_000_000u64 + uuid::Uuid::new_v4().as_u128() as u64 % 100_000_000
        );
        let channel_secret = uuid::Uuid::new_v4().simple().to_string();
        let access_token = unique("token-");
        let line = LineSimulator::start(LineOptions {
            redelivery: RedeliveryPolicy {
                max_attempts: 1,
                interval: Duration::from_millis(50),
                timeout: Duration::from_secs(15),
            },
            ..LineOptions::default().with_channel(
                ChannelSpec::new(&channel_id, &channel_secret).with_access_token(&access_token),
            )
        })
        .await
        .expect("LINE simulator");
        let base = PlatformBridge::start(
            amqp,
            redis,
            Platform::Line,
            MessagingConfig::Line(LineConfig {
                channel_id: Some(channel_id.clone()),
                channel_secret: Secret::new(channel_secret.clone()),
                channel_access_token: Some(Secret::new(access_token.clone())),
                switcher: None,
                api_base_url: Some(line.base_url()),
            }),
            &[],
        )
        .await;
        let tenant_key = base.tenant_key;
        let bridge = Self {
            genesys: base.genesys,
            line,
            channel_id,
            access_token,
            integration_id: base.integration_id,
            line_connector: base.platform_connector,
            _gcloudcx_connector: base.gcloudcx_connector,
        };
        // The connector sets the webhook endpoint when it sees the tenant.
        assert!(
            eventually(Duration::from_secs(15), || bridge
                .line
                .webhook_url(&bridge.channel_id)
                .is_some())
            .await,
            "the webhook endpoint was not set"
        );
        assert!(
            bridge
                .line
                .webhook_url(&bridge.channel_id)
                .unwrap()
                .ends_with(&format!("/line/{tenant_key}"))
        );
        bridge
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

    async fn send(&self, event: Value) -> Option<u16> {
        self.line
            .send_events(&self.channel_id, vec![event])
            .await
            .expect("event sent")
            .status()
    }
}

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
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/downloads/map.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guest_text_image_redelivery_and_bad_signature() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = LineBridge::start(&amqp, &redis).await;
    let guest = Guest::new("Bob").with_language("ja");
    bridge.line.add_user(&guest);

    let text = bridge
        .line
        .text_event(&bridge.channel_id, &guest, "hello from LINE");
    assert_eq!(bridge.send(text.clone()).await, Some(200));
    assert!(
        eventually(WAIT, || bridge.inbound_bodies().len() == 1).await,
        "text did not arrive"
    );
    let body = &bridge.inbound_bodies()[0];
    assert_eq!(body["text"], "hello from LINE");
    assert_eq!(body["channel"]["from"]["id"], guest.user_id.as_str());
    assert_eq!(body["channel"]["from"]["nickname"], "Bob");
    let attributes = &body["channel"]["metadata"]["customAttributes"];
    assert_eq!(attributes["media"], "LINE");
    assert_eq!(attributes["locale"], "ja");

    // LINE redelivers the same event (same webhookEventId): accepted, not relayed.
    let mut again = text.clone();
    again["deliveryContext"]["isRedelivery"] = Value::Bool(true);
    assert_eq!(bridge.send(again).await, Some(200));

    // A tampered signature: 401, nothing published.
    let forged = serde_json::to_vec(&serde_json::json!({"destination": "U0", "events": [
        bridge.line.text_event(&bridge.channel_id, &guest, "forged")]}))
    .unwrap();
    let signature = bridge
        .line
        .sign(&bridge.channel_id, b"something else")
        .unwrap();
    let status = bridge
        .line
        .post_raw(&bridge.channel_id, forged.clone(), Some(&signature))
        .await
        .unwrap();
    assert_eq!(status, Some(401));
    assert_eq!(
        bridge
            .line
            .post_raw(&bridge.channel_id, forged, None)
            .await
            .unwrap(),
        Some(401)
    );

    // An image: served by the connector with the channel's token, under a
    // URL that carries no credential.
    let image_bytes: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    let image = bridge.line.image_event(
        &bridge.channel_id,
        &guest,
        image_bytes.clone(),
        "image/jpeg",
    );
    assert_eq!(bridge.send(image).await, Some(200));
    assert!(
        eventually(WAIT, || bridge.inbound_bodies().len() >= 2).await,
        "image did not arrive"
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
    assert!(url.starts_with(&bridge.line_connector.base_url()), "{url}");
    assert!(
        !url.contains(&bridge.access_token),
        "the access token leaked: {url}"
    );
    let fetched = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .expect("media fetch");
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "image/jpeg");
    assert_eq!(
        fetched.bytes().await.unwrap().as_ref(),
        image_bytes.as_slice()
    );
    let content_calls: Vec<_> = bridge
        .line
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("/content"))
        .collect();
    assert_eq!(content_calls.len(), 1);
    assert_eq!(
        content_calls[0].channel_id.as_deref(),
        Some(bridge.channel_id.as_str())
    );
}

fn receipt<'a>(receipts: &'a [Value], id: &str) -> Option<&'a Value> {
    receipts.iter().find(|receipt| receipt["id"] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_reply_push_quick_replies_retry_key_429_and_blocked() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = LineBridge::start(&amqp, &redis).await;
    let guest = Guest::new("Ann");
    bridge.line.add_user(&guest);
    let to = guest.user_id.clone();

    let hi = bridge.line.text_event(&bridge.channel_id, &guest, "hi");
    assert_eq!(bridge.send(hi).await, Some(200));
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 1).await);

    // The first answer uses the fresh reply token.
    let first = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(&to, "How can I help?"),
        )
        .await
        .expect("webhook sent");
    assert_eq!(first.final_status(), Some(200));
    assert!(
        eventually(WAIT, || bridge.line.sent_to(&to).len() == 1).await,
        "text not sent"
    );
    let sent = bridge.line.sent_to(&to)[0].clone();
    assert_eq!(sent.via, "reply");
    assert_eq!(sent.messages[0]["text"], "How can I help?");

    // The token is spent: an image goes by push, with a retry key.
    let image: Vec<u8> = (0..4000u32).map(|i| (i % 13) as u8).collect();
    let url = serve_image(image.clone()).await;
    let picture = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::attachment(&to, "Image", &url, "image/png", Some("map.png")),
        )
        .await
        .expect("webhook sent");
    assert_eq!(picture.final_status(), Some(200));
    assert!(
        eventually(WAIT, || bridge.line.sent_to(&to).len() == 2).await,
        "image not sent"
    );
    let sent = bridge.line.sent_to(&to)[1].clone();
    assert_eq!(sent.via, "push");
    assert!(uuid::Uuid::parse_str(sent.retry_key.as_deref().unwrap_or_default()).is_ok());
    assert_eq!(sent.messages[0]["type"], "image");
    assert_eq!(sent.messages[0]["originalContentUrl"], url.as_str());
    assert_eq!(sent.media[0].bytes_len, image.len() as u64);

    // Quick replies become LINE quickReply postback items; the tap comes
    // back to Genesys as a structured response.
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
        eventually(WAIT, || bridge.line.sent_to(&to).len() == 3).await,
        "quick replies not sent"
    );
    let prompt = bridge.line.sent_to(&to)[2].messages[0].clone();
    assert_eq!(prompt["text"], "Did that help?");
    let items = prompt["quickReply"]["items"]
        .as_array()
        .expect("quickReply items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["action"]["type"], "postback");
    assert_eq!(items[0]["action"]["label"], "Yes");
    let data = items[0]["action"]["data"]
        .as_str()
        .expect("postback data")
        .to_owned();
    let tap = bridge
        .line
        .postback_event(&bridge.channel_id, &guest, &data);
    assert_eq!(bridge.send(tap).await, Some(200));
    assert!(
        eventually(WAIT, || !bridge.genesys.structured_responses().is_empty()).await,
        "no structured response"
    );
    let response = &bridge.genesys.structured_responses()[0].body;
    assert_eq!(response["buttonResponse"]["type"], "QuickReply");
    assert_eq!(response["buttonResponse"]["payload"], "help-yes");
    assert_eq!(response["buttonResponse"]["text"], "Yes");

    // The tap's reply token answers the next message; delivered receipts.
    for id in [&first.message_id, &picture.message_id, &quick.message_id] {
        assert!(
            eventually(WAIT, || receipt(&bridge.receipts(), id).is_some()).await,
            "no receipt for {id}"
        );
        assert_eq!(
            receipt(&bridge.receipts(), id).unwrap()["status"],
            "Delivered"
        );
    }

    // A push LINE accepted but whose answer was lost (500): the retry with
    // the same key gets 409 and sends nothing twice.
    bridge
        .line
        .inject_error_after_accept(LineError::new(500, "Internal server error"), 1);
    // Spend the tap's reply token first so the next message is pushed.
    let spend = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(&to, "Great."),
        )
        .await
        .expect("webhook sent");
    assert!(
        eventually(WAIT, || receipt(&bridge.receipts(), &spend.message_id)
            .is_some())
        .await
    );
    assert_eq!(bridge.line.sent_to(&to)[3].via, "reply");
    let lost = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(&to, "exactly once"),
        )
        .await
        .expect("webhook sent");
    assert!(
        eventually(WAIT, || receipt(&bridge.receipts(), &lost.message_id)
            .is_some())
        .await,
        "no receipt after the lost answer"
    );
    assert_eq!(
        receipt(&bridge.receipts(), &lost.message_id).unwrap()["status"],
        "Delivered"
    );
    let once: Vec<_> = bridge
        .line
        .sent_to(&to)
        .into_iter()
        .filter(|s| s.messages[0]["text"] == "exactly once")
        .collect();
    assert_eq!(once.len(), 1, "sent twice despite the retry key");
    let statuses: Vec<u16> = bridge
        .line
        .calls()
        .into_iter()
        .filter(|c| c.retry_key == once[0].retry_key)
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, vec![500, 409]);

    // 429 (LINE sends no Retry-After): retried after the default back-off.
    bridge.line.inject_rate_limit(Some("push"), 1);
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
        started.elapsed() >= Duration::from_secs(1),
        "the 429 back-off was not honoured"
    );
    assert_eq!(
        bridge.line.sent_to(&to).last().unwrap().messages[0]["text"],
        "after the limit"
    );

    // The guest blocks the account: a Failed receipt, nothing pushed.
    let sent_before = bridge.line.sent_to(&to).len();
    let unfollow = bridge.line.unfollow_event(&guest);
    assert_eq!(bridge.send(unfollow).await, Some(200));
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
    assert_eq!(
        bridge.line.sent_to(&to).len(),
        sent_before,
        "something was sent to the blocked guest"
    );
}

/// The platform itself against the simulator and a real Redis (no broker):
/// a short-lived token issued from channel id and secret (and reused from
/// Redis), the webhook endpoint set on a tenant change, cards as Flex the
/// simulator's validation accepts, and the (proposed) Switcher hand-over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_token_webhook_endpoint_flex_and_switcher() {
    use um_connector::machinery::envelope::{Card, CardAction, Content, Direction, Envelope};
    use um_connector::platform::MessagingPlatform;
    use um_simulators::line::SwitcherSpec;

    let Some((_, redis)) = services() else {
        return;
    };
    let channel_id = format!(
        "{}",
        1_700_000_000u64 + uuid::Uuid::new_v4().as_u128() as u64 % 100_000_000
    );
    let channel_secret = uuid::Uuid::new_v4().simple().to_string();
    let line = LineSimulator::start(LineOptions::default().with_channel(
        ChannelSpec::new(&channel_id, &channel_secret).with_switcher(SwitcherSpec {
            service_code: "svc-flow".into(),
            secret: "switcher-secret".into(),
            destinations: vec!["dest-after-chat".into()],
        }),
    ))
    .await
    .expect("LINE simulator");
    let tenant_key = format!("flow.{}", unique("s"));
    let tenant = TenantConfig::new(
        tenant_key.clone(),
        "Flow",
        Platform::Line,
        format!("http://127.0.0.1:9/line/{tenant_key}"),
    )
    .with_messaging(MessagingConfig::Line(LineConfig {
        channel_id: Some(channel_id.clone()),
        channel_secret: Secret::new(channel_secret.clone()),
        channel_access_token: None,
        switcher: Some(LineSwitcherConfig {
            service_code: "svc-flow".into(),
            destination_id: "dest-after-chat".into(),
            secret: Secret::new("switcher-secret"),
        }),
        api_base_url: Some(line.base_url()),
    }));
    let mut config = ServiceConfig::new("line");
    config.tenants.insert(tenant_key.clone(), tenant.clone());
    let ctx = um_connector::platform::PlatformContext {
        service: "line".into(),
        http: um_connector::machinery::http_client::HttpClients::new(&Default::default())
            .expect("HTTP client"),
        store: um_connector::machinery::store::Store::connect(&redis, &unique("line-"))
            .await
            .expect("Redis"),
        metrics: um_connector::machinery::metrics::Metrics::new("line"),
        media: um_connector::machinery::media::MediaSigner::new(None, Duration::from_secs(60)),
        config: um_connector::machinery::config_watch::ConfigWatcher::fixed(config),
    };
    let platform = um_connector::platforms::line::Line;

    platform
        .tenant_changed(&ctx, &tenant, None)
        .await
        .expect("webhook endpoint set");
    assert_eq!(
        line.webhook_url(&channel_id),
        Some(tenant.webhook_url.clone())
    );

    let guest = Guest::new("Gus");
    let envelope = |id: &str, content: Content| {
        Envelope::message(
            &tenant_key,
            Platform::Line,
            Direction::AgentToGuest,
            &guest.user_id,
            content,
        )
        .with_id(id)
        .with_origin_id(id)
    };
    let cards: Vec<Card> = (1..=3)
        .map(|n| Card {
            title: format!("Plan {n}"),
            description: Some("monthly".into()),
            image_url: Some("https://cdn.example/plan.png".into()),
            actions: vec![
                CardAction::Postback {
                    text: "Choose this plan please".into(),
                    payload: format!("plan-{n}"),
                },
                CardAction::Link {
                    text: "Details".into(),
                    url: "https://shop.example/plans".into(),
                },
            ],
        })
        .collect();
    platform
        .deliver(
            &ctx,
            &tenant,
            &envelope(
                "e-cards",
                Content {
                    cards,
                    ..Content::default()
                },
            ),
        )
        .await
        .expect("carousel accepted by the simulator's validation");
    let sent = line.sent_to(&guest.user_id);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].messages[0]["type"], "flex");
    assert_eq!(sent[0].messages[0]["contents"]["type"], "carousel");
    assert_eq!(
        sent[0].messages[0]["contents"]["contents"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    let switch = Content {
        native: Some(serde_json::json!({"switcher": {"note": "chat closed"}})),
        ..Content::default()
    };
    platform
        .deliver(&ctx, &tenant, &envelope("e-switch", switch))
        .await
        .expect("switched");
    let switches = line.switches();
    assert_eq!(switches.len(), 1);
    assert_eq!(switches[0].destination_id, "dest-after-chat");
    assert_eq!(switches[0].user_id, guest.user_id);
    assert_eq!(switches[0].note.as_deref(), Some("chat closed"));

    let issued = line
        .calls()
        .into_iter()
        .filter(|c| c.path == "/v2/oauth/accessToken")
        .count();
    assert_eq!(issued, 1, "the issued token is reused from Redis");
}
