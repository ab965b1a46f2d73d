//! Guest messages from the Telegram simulator reach the Genesys simulator
//! as valid Open Messaging inbound messages, through the real broker and
//! both connector processes.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Bridge, BridgeOptions, eventually, services};
use um_simulators::telegram::UpdateSpec;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guest_text_photo_and_redelivery_reach_genesys_once() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bridge = Bridge::start(&amqp, &redis, BridgeOptions::default()).await;
    let guest = bridge.guest(4242);

    // Text.
    let sent = bridge
        .telegram
        .send_update(
            &bridge.bot_token,
            UpdateSpec::text(&guest, "hello from Telegram"),
        )
        .await
        .expect("update sent");
    assert_eq!(sent.status(), Some(200), "{sent:?}");
    assert!(
        eventually(WAIT, || bridge.inbound_bodies().len() == 1).await,
        "text did not arrive"
    );
    let text = &bridge.inbound_bodies()[0];
    assert_eq!(text["text"], "hello from Telegram");
    assert_eq!(text["channel"]["from"]["id"], "4242");
    assert_eq!(text["channel"]["from"]["idType"], "Opaque");
    assert_eq!(text["channel"]["from"]["firstName"], "Bob");
    assert_eq!(text["channel"]["from"]["lastName"], "Minion");
    assert_eq!(text["channel"]["from"]["nickname"], "bob4242");
    assert!(
        text["channel"]["time"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let attributes = &text["channel"]["metadata"]["customAttributes"];
    assert_eq!(attributes["media"], "Telegram");
    assert_eq!(attributes["brand"], "ACME", "tenant custom data");
    assert_eq!(attributes["locale"], "ja");
    let message_id = text["channel"]["messageId"]
        .as_str()
        .expect("messageId")
        .to_owned();
    assert!(
        message_id.contains(&sent.update_id.to_string()),
        "{message_id}"
    );

    // Participant data as Genesys keeps it.
    let conversation = bridge
        .genesys
        .conversation_id(&bridge.integration_id, "4242")
        .expect("conversation");
    assert_eq!(
        bridge.genesys.participant_data(&conversation)["media"],
        "Telegram"
    );

    // The same update_id again (Telegram's redelivery): accepted, not relayed.
    let again = bridge
        .telegram
        .send_update(
            &bridge.bot_token,
            UpdateSpec::text(&guest, "hello from Telegram").with_update_id(sent.update_id),
        )
        .await
        .expect("redelivery sent");
    assert_eq!(again.status(), Some(200));

    // Photo with caption: largest size, served by the connector.
    let photo_bytes: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let sizes = bridge
        .telegram
        .upload_photo(photo_bytes.clone(), "image/jpeg");
    let photo = bridge
        .telegram
        .send_update(
            &bridge.bot_token,
            UpdateSpec::photo(&guest, &sizes).with_caption("my cat"),
        )
        .await
        .expect("photo sent");
    assert_eq!(photo.status(), Some(200));
    assert!(
        eventually(WAIT, || bridge.inbound_bodies().len() >= 2).await,
        "photo did not arrive"
    );
    // Ordered per conversation: the photo comes after the text, and the
    // redelivered text did not arrive a second time.
    let bodies = bridge.inbound_bodies();
    assert_eq!(bodies.len(), 2, "{bodies:#?}");
    let photo_message = &bodies[1];
    assert_eq!(photo_message["text"], "my cat");
    let attachment = &photo_message["content"][0]["attachment"];
    assert_eq!(photo_message["content"][0]["contentType"], "Attachment");
    assert_eq!(attachment["mediaType"], "Image");
    assert_eq!(attachment["mime"], "image/jpeg");
    let url = attachment["url"].as_str().expect("attachment url");
    assert!(
        !url.contains(&bridge.bot_token),
        "the bot token leaked: {url}"
    );
    let secret_part = bridge.bot_token.split(':').nth(1).unwrap_or_default();
    assert!(!url.contains(secret_part), "the bot token leaked: {url}");
    assert!(
        url.starts_with(&bridge.telegram_connector.base_url()),
        "{url}"
    );

    let client = reqwest::Client::new();
    let fetched = client.get(url).send().await.expect("media fetch");
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "image/jpeg");
    let largest = fetched.bytes().await.expect("media bytes");
    assert_eq!(
        largest.as_ref(),
        photo_bytes.as_slice(),
        "not the largest size"
    );

    // A tampered signature does not open the file.
    let tampered = url.replace("sig=", "sig=00");
    assert_eq!(
        client.get(&tampered).send().await.expect("fetch").status(),
        401
    );

    let _: &Value = photo_message;
}
