//! Agent messages from the Genesys simulator reach the Telegram simulator;
//! the guest's tap on a quick reply comes back as a structured response;
//! receipts (Delivered, and Failed with the mapped reason) reach Genesys.

mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serde_json::Value;
use support::{Bridge, BridgeOptions, eventually, services};
use um_simulators::genesys::{Card, CardAction, OutboundMessageSpec};
use um_simulators::telegram::UpdateSpec;

const WAIT: Duration = Duration::from_secs(20);
const GUEST: i64 = 4343;

/// A file server standing in for Genesys' download host.
async fn serve_image(bytes: Vec<u8>) -> (String, tokio::task::JoinHandle<()>) {
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
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/downloads/map.png"), task)
}

fn receipt_for<'a>(receipts: &'a [Value], message_id: &str) -> Option<&'a Value> {
    receipts.iter().find(|receipt| receipt["id"] == message_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_messages_quick_replies_and_receipts() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = Bridge::start(
        &amqp,
        &redis,
        BridgeOptions {
            prefix_agent_name: true,
            ..BridgeOptions::default()
        },
    )
    .await;
    let guest = bridge.guest(GUEST);
    let to = GUEST.to_string();

    // The guest opens the conversation.
    bridge
        .telegram
        .send_update(&bridge.bot_token, UpdateSpec::text(&guest, "hi"))
        .await
        .expect("update sent");
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 1).await);

    // Agent text, with the agent name prefixed (tenant option).
    let text = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(&to, "How can I help?"),
        )
        .await
        .expect("webhook sent");
    assert_eq!(text.final_status(), Some(200), "{text:?}");
    assert!(
        eventually(WAIT, || bridge.telegram.sent_to(GUEST).len() == 1).await,
        "text not sent"
    );
    let sent = &bridge.telegram.sent_to(GUEST)[0];
    assert_eq!(sent.method, "sendMessage");
    let shown = sent.message["text"].as_str().unwrap_or_default();
    assert!(shown.ends_with(": How can I help?"), "{shown}");

    // An attachment by URL.
    let image: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
    let (url, _server) = serve_image(image.clone()).await;
    let attachment = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::attachment(&to, "Image", &url, "image/png", Some("map.png")),
        )
        .await
        .expect("webhook sent");
    assert_eq!(attachment.final_status(), Some(200));
    assert!(
        eventually(WAIT, || bridge.telegram.sent_to(GUEST).len() == 2).await,
        "photo not sent"
    );
    let photo = &bridge.telegram.sent_to(GUEST)[1];
    assert_eq!(photo.method, "sendPhoto");
    let fetched = photo
        .media
        .as_ref()
        .expect("the simulator fetched the photo URL");
    assert_eq!(fetched.bytes_len, image.len() as u64);

    // Quick replies: an inline keyboard on the prompt.
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
        eventually(WAIT, || bridge.telegram.sent_to(GUEST).len() == 3).await,
        "quick replies not sent"
    );
    let prompt = &bridge.telegram.sent_to(GUEST)[2];
    let keyboard = &prompt.message["reply_markup"]["inline_keyboard"];
    assert_eq!(keyboard[0][0]["text"], "Yes");
    assert_eq!(keyboard[0][0]["callback_data"], "help-yes");
    assert_eq!(keyboard[1][0]["callback_data"], "help-no");

    // The tap comes back as a structured response, and the callback query
    // is answered.
    let message_id = prompt.message["message_id"].as_i64();
    let tap = bridge
        .telegram
        .send_update(
            &bridge.bot_token,
            UpdateSpec::callback_query(&guest, "help-yes", message_id),
        )
        .await
        .expect("tap sent");
    assert_eq!(tap.status(), Some(200));
    assert!(
        eventually(WAIT, || !bridge.genesys.structured_responses().is_empty()).await,
        "no structured response"
    );
    let response = &bridge.genesys.structured_responses()[0].body;
    assert_eq!(response["buttonResponse"]["type"], "QuickReply");
    assert_eq!(response["buttonResponse"]["payload"], "help-yes");
    assert_eq!(response["buttonResponse"]["text"], "Yes");
    assert_eq!(response["channel"]["from"]["id"], to);
    assert!(
        eventually(WAIT, || !bridge.telegram.callback_answers().is_empty()).await,
        "callback not answered"
    );

    // Delivered receipts for the three agent messages.
    let delivered = [&text.message_id, &attachment.message_id, &quick.message_id];
    assert!(
        eventually(WAIT, || {
            let receipts: Vec<Value> = bridge
                .genesys
                .receipts()
                .into_iter()
                .map(|r| r.body)
                .collect();
            delivered
                .iter()
                .all(|id| receipt_for(&receipts, id).is_some())
        })
        .await,
        "receipts missing: {:#?}",
        bridge.genesys.receipts()
    );
    let receipts: Vec<Value> = bridge
        .genesys
        .receipts()
        .into_iter()
        .map(|r| r.body)
        .collect();
    for id in delivered {
        let receipt = receipt_for(&receipts, id).expect("receipt");
        assert_eq!(receipt["status"], "Delivered", "{receipt}");
        assert_eq!(receipt["channel"]["to"]["id"], to);
    }

    // The guest blocked the bot: a Failed receipt with RecipientOptedOut.
    bridge.telegram.block_chat(GUEST);
    let blocked = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(&to, "Still there?"),
        )
        .await
        .expect("webhook sent");
    assert_eq!(
        blocked.final_status(),
        Some(200),
        "a failed delivery must not fail the webhook"
    );
    assert!(
        eventually(WAIT, || {
            let receipts: Vec<Value> = bridge
                .genesys
                .receipts()
                .into_iter()
                .map(|r| r.body)
                .collect();
            receipt_for(&receipts, &blocked.message_id).is_some()
        })
        .await,
        "no receipt for the blocked delivery"
    );
    let receipts: Vec<Value> = bridge
        .genesys
        .receipts()
        .into_iter()
        .map(|r| r.body)
        .collect();
    let failed = receipt_for(&receipts, &blocked.message_id).expect("receipt");
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["reasons"][0]["code"], "RecipientOptedOut");
    assert_eq!(
        bridge.telegram.sent_to(GUEST).len(),
        3,
        "nothing reached the blocked chat"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limited_send_is_retried_after_retry_after() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = Bridge::start(&amqp, &redis, BridgeOptions::default()).await;
    let guest = bridge.guest(4344);
    let to = "4344";
    bridge
        .telegram
        .send_update(&bridge.bot_token, UpdateSpec::text(&guest, "hi"))
        .await
        .expect("update sent");
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 1).await);

    bridge.telegram.inject_rate_limit(Some("sendMessage"), 1, 1);
    let started = std::time::Instant::now();
    let outcome = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::text(to, "after the limit"),
        )
        .await
        .expect("webhook sent");
    assert_eq!(outcome.final_status(), Some(200));
    assert!(
        eventually(WAIT, || bridge.telegram.sent_to(4344).len() == 1).await,
        "not sent after 429"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retry_after was not honoured"
    );
    assert_eq!(
        bridge.telegram.calls_of("sendMessage").len(),
        2,
        "one 429, one success"
    );
    assert_eq!(
        bridge.telegram.sent_to(4344)[0].message["text"],
        "after the limit"
    );
}

/// Rich content end to end: a Genesys Card becomes a photo with an inline
/// keyboard (link and postback buttons), a Carousel one such message per
/// card, the tap on a card's postback comes back as a Button structured
/// response, and the agent's typing indicator becomes sendChatAction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cards_carousels_and_typing_reach_telegram() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = Bridge::start(&amqp, &redis, BridgeOptions::default()).await;
    const GUEST: i64 = 4545;
    let guest = bridge.guest(GUEST);
    let to = GUEST.to_string();
    let (image_url, _server) = serve_image(vec![0x89, b'P', b'N', b'G', 1, 2, 3]).await;
    bridge
        .telegram
        .send_update(&bridge.bot_token, UpdateSpec::text(&guest, "show me shoes"))
        .await
        .expect("update sent");
    assert!(eventually(WAIT, || bridge.inbound_bodies().len() == 1).await);

    let shoe = |title: &str, payload: &str| Card {
        title: title.into(),
        description: Some("Size 42".into()),
        image: Some(image_url.clone()),
        actions: vec![
            CardAction::link("Buy", format!("https://shop.example/{payload}")),
            CardAction::postback("More like this", payload),
        ],
    };
    let card = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::card(&to, shoe("Red shoe", "more-red")),
        )
        .await
        .expect("webhook sent");
    assert_eq!(card.final_status(), Some(200), "{card:?}");
    assert!(
        eventually(WAIT, || bridge.telegram.sent_to(GUEST).len() == 1).await,
        "card not sent"
    );
    let sent = &bridge.telegram.sent_to(GUEST)[0];
    assert_eq!(sent.method, "sendPhoto");
    assert!(
        sent.message["caption"]
            .as_str()
            .is_some_and(|c| c.starts_with("Red shoe")),
        "{sent:?}"
    );
    let keyboard = &sent.message["reply_markup"]["inline_keyboard"];
    assert_eq!(keyboard[0][0]["url"], "https://shop.example/more-red");
    assert_eq!(keyboard[1][0]["text"], "More like this");
    let data = keyboard[1][0]["callback_data"]
        .as_str()
        .expect("callback data")
        .to_owned();

    let carousel = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::carousel(
                &to,
                vec![
                    shoe("Blue shoe", "more-blue"),
                    shoe("Green shoe", "more-green"),
                ],
            ),
        )
        .await
        .expect("webhook sent");
    assert_eq!(carousel.final_status(), Some(200));
    assert!(
        eventually(WAIT, || bridge.telegram.sent_to(GUEST).len() == 3).await,
        "carousel not sent as one message per card"
    );
    let cards = bridge.telegram.sent_to(GUEST);
    for (sent, payload) in cards[1..].iter().zip(["more-blue", "more-green"]) {
        assert_eq!(
            sent.message["reply_markup"]["inline_keyboard"][0][0]["url"],
            format!("https://shop.example/{payload}")
        );
    }

    // The guest taps "More like this" on the first card.
    let message_id = sent.message["message_id"].as_i64();
    let tap = bridge
        .telegram
        .send_update(
            &bridge.bot_token,
            UpdateSpec::callback_query(&guest, &data, message_id),
        )
        .await
        .expect("tap sent");
    assert_eq!(tap.status(), Some(200));
    assert!(
        eventually(WAIT, || !bridge.genesys.structured_responses().is_empty()).await,
        "no structured response"
    );
    let response = &bridge.genesys.structured_responses()[0].body;
    assert_eq!(response["buttonResponse"]["payload"], "more-red");
    assert_eq!(response["buttonResponse"]["type"], "Button");

    // Typing: a chat action, no message.
    let typing = bridge
        .genesys
        .send_agent_message(
            &bridge.integration_id,
            OutboundMessageSpec::typing(&to, Some(3000)),
        )
        .await
        .expect("webhook sent");
    assert_eq!(typing.final_status(), Some(200));
    assert!(
        eventually(WAIT, || !bridge
            .telegram
            .calls_of("sendChatAction")
            .is_empty())
        .await,
        "typing not relayed"
    );
    let action = &bridge.telegram.calls_of("sendChatAction")[0];
    assert_eq!(action.params["action"], "typing");
    assert_eq!(action.params["chat_id"].to_string().trim_matches('"'), to);
    assert_eq!(
        bridge.telegram.sent_to(GUEST).len(),
        3,
        "typing sent a message"
    );
}
