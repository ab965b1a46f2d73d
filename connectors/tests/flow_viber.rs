//! Viber end to end on real RabbitMQ and Redis: the `viber` and `gcloudcx`
//! connector processes between the Viber and Genesys simulators.
//! Guest text, picture (re-served under the connector's signed URL) and a
//! keyboard tap reach Genesys with the user's custom data; agent text,
//! picture, quick replies (keyboard) and a carousel (rich media) reach
//! Viber; receipts reach Genesys; a tampered signature is refused; a
//! redelivered callback arrives once; status 12 is retried; an
//! unsubscribed guest gives a Failed receipt RecipientOptedOut.

mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use support::{Connector, PlatformBridge, eventually, services, unique};
use um_config::{MessagingConfig, MessagingOptions, Platform, Secret, TenantConfig, ViberConfig};
use um_simulators::genesys::{GenesysSimulator, OutboundMessageSpec};
use um_simulators::viber::{CallbackSpec, ViberOptions, ViberSimulator, ViberUser};

const WAIT: Duration = Duration::from_secs(20);

struct ViberBridge {
    genesys: GenesysSimulator,
    viber: ViberSimulator,
    token: String,
    integration_id: String,
    viber_connector: Connector,
    _gcloudcx_connector: Connector,
    webhook_url: String,
}

impl ViberBridge {
    async fn start(amqp: &str, redis: &str) -> Self {
        let token = format!("{}-{}", unique("4453b6ac"), unique("e02c5f1217"));
        let viber = ViberSimulator::start(ViberOptions::default().with_token(token.clone()))
            .await
            .expect("Viber simulator");
        let base = PlatformBridge::start(
            amqp,
            redis,
            Platform::Viber,
            MessagingConfig::Viber(ViberConfig {
                auth_token: Secret::new(token.clone()),
                sender_name: "ACME Support".to_owned(),
                sender_avatar: Some("https://acme.example/avatar.png".to_owned()),
                api_base_url: Some(viber.base_url()),
            }),
            &[],
        )
        .await;
        let bridge = Self {
            genesys: base.genesys,
            viber,
            token,
            integration_id: base.integration_id,
            viber_connector: base.platform_connector,
            _gcloudcx_connector: base.gcloudcx_connector,
            webhook_url: base.webhook_url,
        };
        // set_webhook succeeds only once the connector answered Viber's
        // signed `webhook` check.
        assert!(
            eventually(WAIT, || bridge.viber.webhook_url(&bridge.token).is_some()).await,
            "set_webhook did not succeed"
        );
        assert_eq!(
            bridge.viber.webhook_url(&bridge.token).as_deref(),
            Some(bridge.webhook_url.as_str())
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

    async fn say(&self, spec: CallbackSpec) {
        let sent = self
            .viber
            .send_callback(&self.token, spec)
            .await
            .expect("callback");
        assert_eq!(sent.status(), Some(200), "{sent:?}");
    }
}

fn guest(id: &str) -> ViberUser {
    ViberUser::new(id, "John McClane")
        .with_country("JP")
        .with_language("ja")
        .with_device("Android 14", "Pixel 8")
        .with_avatar("https://avatar.example/john.jpg")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guest_messages_reach_genesys_once_with_custom_data_and_served_media() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = ViberBridge::start(&amqp, &redis).await;
    let user = guest("pttm25kSGUo1919sBORWyA==");
    bridge.say(CallbackSpec::subscribed(&user)).await;
    bridge
        .say(CallbackSpec::text(&user, "hello from Viber").with_token(5_491_000_000_000_000_001))
        .await;
    assert!(
        eventually(WAIT, || bridge.inbound_bodies().len() == 1).await,
        "text did not arrive"
    );
    let text = &bridge.inbound_bodies()[0];
    assert_eq!(text["text"], "hello from Viber");
    assert_eq!(text["channel"]["from"]["id"], user.id);
    assert_eq!(text["channel"]["from"]["nickname"], "John McClane");
    let attributes = &text["channel"]["metadata"]["customAttributes"];
    assert_eq!(attributes["media"], "Viber");
    assert_eq!(attributes["country"], "JP");
    assert_eq!(attributes["locale"], "ja");
    assert_eq!(attributes["deviceOS"], "Android 14");
    assert_eq!(attributes["deviceType"], "Pixel 8");

    // Redelivery of the same message_token: accepted, not relayed again.
    bridge
        .say(CallbackSpec::text(&user, "hello from Viber").with_token(5_491_000_000_000_000_001))
        .await;

    // A picture: Genesys gets the connector's signed URL, which serves
    // Viber's bytes.
    let picture: Vec<u8> = (0..30_000u32).map(|i| (i % 253) as u8).collect();
    let media = bridge.viber.upload_media(picture.clone(), "image/jpeg");
    bridge
        .say(CallbackSpec::picture(
            &user,
            &media,
            Some("my cat"),
            picture.len() as u64,
        ))
        .await;
    assert!(
        eventually(WAIT, || bridge.inbound_bodies().len() >= 2).await,
        "picture did not arrive"
    );
    let bodies = bridge.inbound_bodies();
    assert_eq!(
        bodies.len(),
        2,
        "the redelivered text arrived twice: {bodies:#?}"
    );
    let attachment = &bodies[1]["content"][0]["attachment"];
    assert_eq!(bodies[1]["text"], "my cat");
    assert_eq!(attachment["mediaType"], "Image");
    let url = attachment["url"].as_str().expect("url");
    assert!(url.starts_with(&bridge.viber_connector.base_url()), "{url}");
    assert!(
        !url.contains(&bridge.viber.base_url()),
        "Viber's URL leaked: {url}"
    );
    assert!(!url.contains(&bridge.token), "the auth token leaked: {url}");
    let fetched = reqwest::get(url).await.expect("media fetch");
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "image/jpeg");
    assert_eq!(
        fetched.bytes().await.expect("bytes").as_ref(),
        picture.as_slice()
    );
    assert_eq!(bridge.viber.media_downloads().len(), 1);
    let tampered = url.replace("sig=", "sig=00");
    assert_eq!(reqwest::get(&tampered).await.expect("fetch").status(), 401);
    // Once Viber's URL expired, the connector's URL answers 404 (not 502).
    bridge.viber.expire_media(&media);
    assert_eq!(reqwest::get(url).await.expect("fetch").status(), 404);

    // The user details were asked once (Viber's quota) and cached.
    assert_eq!(bridge.viber.calls_of("get_user_details").len(), 1);

    // A tampered signature: 401 and nothing published.
    let body = json!({"event": "message", "timestamp": 1, "message_token": 42,
        "sender": {"id": user.id, "name": "Mallory"}, "message": {"type": "text", "text": "forged"}})
    .to_string();
    let forged = reqwest::Client::new()
        .post(&bridge.webhook_url)
        .header("X-Viber-Content-Signature", "0".repeat(64))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 401);
    // A later message arrives; the forged one never does.
    bridge
        .say(CallbackSpec::location(&user, 35.68, 139.76))
        .await;
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() >= 3).await);
    let bodies = bridge.inbound_bodies();
    assert_eq!(bodies.len(), 3);
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
async fn agent_messages_keyboards_receipts_rate_limit_and_opt_out() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = ViberBridge::start(&amqp, &redis).await;
    let user = guest("01234567890A=");
    let to = user.id.clone();
    bridge.say(CallbackSpec::text(&user, "hi")).await;
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 1).await);

    // Agent text, with the tenant's sender.
    let text = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(&to, "How can I help?"),
        )
        .await
        .expect("webhook");
    assert_eq!(text.final_status(), Some(200));
    assert!(
        eventually(WAIT, || bridge.viber.sent_to(&to).len() == 1).await,
        "text not sent"
    );
    let sent = &bridge.viber.sent_to(&to)[0].message;
    assert_eq!(sent["type"], "text");
    assert_eq!(sent["text"], "How can I help?");
    assert_eq!(sent["sender"]["name"], "ACME Support");
    assert_eq!(sent["sender"]["avatar"], "https://acme.example/avatar.png");
    assert_eq!(sent["min_api_version"], 1);

    // A picture by URL.
    let image: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
    let url = serve_image(image.clone()).await;
    let picture = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::attachment(&to, "Image", &url, "image/png", Some("map.png")),
        )
        .await
        .expect("webhook");
    assert_eq!(picture.final_status(), Some(200));
    assert!(
        eventually(WAIT, || bridge.viber.sent_to(&to).len() == 2).await,
        "picture not sent"
    );
    let sent = &bridge.viber.sent_to(&to)[1];
    assert_eq!(sent.message["type"], "picture");
    assert_eq!(
        sent.media.as_ref().expect("fetched").bytes_len,
        image.len() as u64
    );

    // Quick replies: a keyboard; Viber rate-limits the first try (status 12).
    bridge.viber.inject_status(Some("send_message"), 12, 1);
    let started = Instant::now();
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
        .expect("webhook");
    assert_eq!(quick.final_status(), Some(200));
    assert!(
        eventually(WAIT, || bridge.viber.sent_to(&to).len() == 3).await,
        "keyboard not sent"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "tooManyRequests was not backed off"
    );
    let statuses: Vec<i64> = bridge
        .viber
        .calls_of("send_message")
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [0, 0, 12, 0]);
    let prompt = &bridge.viber.sent_to(&to)[2].message;
    assert_eq!(prompt["text"], "Did that help?");
    assert_eq!(prompt["keyboard"]["Type"], "keyboard");
    assert_eq!(prompt["keyboard"]["Buttons"][0]["ActionType"], "reply");
    assert_eq!(prompt["keyboard"]["Buttons"][0]["ActionBody"], "help-yes");
    assert_eq!(prompt["keyboard"]["Buttons"][1]["Text"], "No");

    // The guest taps "Yes": a structured response with the label.
    bridge.say(CallbackSpec::tap(&user, "help-yes")).await;
    assert!(
        eventually(WAIT, || !bridge.genesys.structured_responses().is_empty()).await,
        "no structured response"
    );
    let response = &bridge.genesys.structured_responses()[0].body;
    assert_eq!(response["buttonResponse"]["type"], "QuickReply");
    assert_eq!(response["buttonResponse"]["payload"], "help-yes");
    assert_eq!(response["buttonResponse"]["text"], "Yes");

    // Delivered receipts.
    let delivered = [&text.message_id, &picture.message_id, &quick.message_id];
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

    // The guest unsubscribed: Failed, RecipientOptedOut, nothing sent.
    bridge.say(CallbackSpec::unsubscribed(&user)).await;
    let blocked = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(&to, "Still there?"),
        )
        .await
        .expect("webhook");
    assert_eq!(blocked.final_status(), Some(200));
    assert!(
        eventually(WAIT, || receipt_for(
            &bridge.receipts(),
            &blocked.message_id
        )
        .is_some())
        .await,
        "no receipt for the unsubscribed guest"
    );
    let failed = receipt_for(&bridge.receipts(), &blocked.message_id)
        .cloned()
        .expect("receipt");
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["reasons"][0]["code"], "RecipientOptedOut");
    assert_eq!(bridge.viber.sent_to(&to).len(), 3);
}

/// Callbacks as the simulator signs them and send bodies as the connector
/// builds them: the connector verifies every signature here; with
/// `UM_VIBER_SDK_FIXTURE` set, they are also written to that file for
/// `e2e/simulators/conformance/viber-sdk.py`, where Viber's own Python SDK
/// (`viberbot`) verifies and parses them.
#[test]
fn sdk_fixture_of_signed_callbacks_and_send_bodies() {
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method};
    use um_connector::machinery::envelope::{
        Card, CardAction, Content, Direction, Envelope, Location, QuickReply, Sticker,
    };
    use um_connector::platform::{MessagingPlatform, WebhookRequest};
    use um_connector::platforms::viber::Viber;
    use um_connector::platforms::viber::outbound::{Sender, to_viber};
    use um_simulators::viber::sign;

    let token = "4453b6ac12345678-e02c5f12174805f9-daec9cbb5448c51f";
    let tenant = TenantConfig::new(
        "sdk.viber",
        "SDK",
        Platform::Viber,
        "https://um.example/viber/sdk.viber",
    )
    .with_messaging(MessagingConfig::Viber(ViberConfig {
        auth_token: Secret::new(token),
        sender_name: "ACME".to_owned(),
        sender_avatar: None,
        api_base_url: None,
    }));
    let user = guest("pttm25kSGUo1919sBORWyA==");
    let specs = [
        CallbackSpec::text(&user, "hello"),
        CallbackSpec::picture(&user, "https://dl-media.example/p.jpg", Some("cat"), 1234),
        CallbackSpec::file(&user, "https://dl-media.example/f.pdf", "f.pdf", 10),
        CallbackSpec::sticker(&user, 46105, "https://dl-media.example/s.png"),
        CallbackSpec::location(&user, 35.68, 139.76),
        CallbackSpec::subscribed(&user),
        CallbackSpec::conversation_started(&user),
        CallbackSpec::unsubscribed(&user),
    ];
    let mut callbacks = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let tracking = (index == 0).then_some("{\"umButtons\":[]}");
        let body = spec
            .assemble(
                5_491_000_000_000_000_100 + index as u64,
                1_700_000_000_000,
                tracking,
            )
            .to_string();
        let signature = sign(token, body.as_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-viber-content-signature",
            HeaderValue::from_str(&signature).unwrap(),
        );
        let bytes = Bytes::from(body.clone());
        let request = WebhookRequest {
            method: &Method::POST,
            headers: &headers,
            query: None,
            body: &bytes,
        };
        assert!(
            Viber.verify(&tenant, &request).is_ok(),
            "connector refused {body}"
        );
        callbacks.push(json!({"event": spec.event, "body": body, "signature": signature}));
    }

    let envelope = |content: Content| {
        Envelope::message(
            &tenant.key,
            Platform::Viber,
            Direction::AgentToGuest,
            &user.id,
            content,
        )
        .with_id("sdk-1")
    };
    let sender = Sender {
        name: "ACME",
        avatar: Some("https://acme.example/a.png"),
    };
    let contents = [
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
        Content {
            cards: vec![Card {
                title: "Shoe".into(),
                description: Some("Red".into()),
                image_url: Some("https://acme.example/shoe.png".into()),
                actions: vec![
                    CardAction::Link {
                        text: "Open".into(),
                        url: "https://acme.example/shoe".into(),
                    },
                    CardAction::Postback {
                        text: "Buy".into(),
                        payload: "buy-shoe".into(),
                    },
                ],
            }],
            ..Content::default()
        },
        Content {
            location: Some(Location {
                latitude: 1.5,
                longitude: 2.5,
                title: None,
                address: None,
            }),
            sticker: Some(Sticker {
                id: "46105".into(),
                emoji: None,
                image_url: None,
            }),
            ..Content::default()
        },
    ];
    let mut sends = Vec::new();
    for content in contents {
        sends.extend(
            to_viber(&envelope(content), sender, &MessagingOptions::default()).expect("translates"),
        );
    }
    assert_eq!(sends.len(), 4);
    if let Ok(path) = std::env::var("UM_VIBER_SDK_FIXTURE") {
        let fixture = json!({"auth_token": token, "callbacks": callbacks, "sends": sends});
        std::fs::write(&path, serde_json::to_vec_pretty(&fixture).unwrap())
            .expect("fixture written");
    }
}
