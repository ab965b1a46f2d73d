//! LINE webhook events → envelopes (pure).
//!
//! Media is not fetched here: `media_url` turns a LINE message id into a
//! signed, expiring URL of the connector, which fetches the content API
//! with the channel access token only when that URL is followed. Profiles
//! (display name, picture, language) are looked up by the caller and
//! passed in.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use um_config::{Platform, TenantConfig};

use super::postback;
use super::types::{Event, Message, Profile, Source};
use crate::machinery::envelope::{
    Attachment, Body, ButtonResponse, Content, Conversation, Direction, ENVELOPE_VERSION, Envelope,
    Guest, Location, MediaType, Sticker,
};
use crate::platform::event_envelope_id;

/// A change of the guest's friendship with the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Friendship {
    /// `follow` (added or unblocked), or any message: the guest is reachable.
    Following,
    /// `unfollow`: the guest blocked the account; pushes will not reach them.
    Blocked,
}

/// What one event asks of the bridge.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundLineEvent {
    /// `event:<webhookEventId>`.
    pub dedup_key: Option<String>,
    /// None for events the bridge does not relay (follow, standby, ...).
    pub envelope: Option<Envelope>,
    /// `(conversation id, reply token)` to remember for the first answer.
    pub reply_token: Option<(String, String)>,
    /// `(user id, change)`.
    pub friendship: Option<(String, Friendship)>,
}

/// The address of the conversation: the user for 1:1 chats, else the group
/// or room (push `to` takes any of the three).
pub fn conversation_id(source: &Source) -> Option<&str> {
    match source.kind.as_str() {
        "group" => source.group_id.as_deref(),
        "room" => source.room_id.as_deref(),
        _ => source.user_id.as_deref(),
    }
}

/// The public preview of a LINE sticker (no credential needed).
pub fn sticker_image_url(sticker_id: &str) -> String {
    format!(
        "https://stickershop.line-scdn.net/stickershop/v1/sticker/{sticker_id}/android/sticker.png"
    )
}

fn guest(user_id: &str, profile: Option<&Profile>) -> Guest {
    Guest {
        id: user_id.to_owned(),
        nickname: profile
            .map(|p| p.display_name.clone())
            .filter(|name| !name.is_empty()),
        avatar_url: profile.and_then(|p| p.picture_url.clone()),
        locale: profile.and_then(|p| p.language.clone()),
        ..Guest::default()
    }
}

fn custom_data(profile: Option<&Profile>) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([("media".to_owned(), Platform::Line.display_name().to_owned())]);
    if let Some(language) = profile.and_then(|p| p.language.as_ref()) {
        data.insert("locale".to_owned(), language.clone());
    }
    data
}

fn media_attachment(
    message: &Message,
    media_type: MediaType,
    mime: &str,
    media_url: &dyn Fn(&str) -> String,
) -> Attachment {
    let external = message
        .content_provider
        .as_ref()
        .filter(|provider| provider.kind == "external")
        .and_then(|provider| provider.original_content_url.clone());
    Attachment {
        media_type,
        // External content is already public; LINE-hosted content needs the
        // channel access token, so it goes through the connector.
        url: external.unwrap_or_else(|| media_url(&message.id)),
        mime: mime.to_owned(),
        filename: message.file_name.clone(),
        size_bytes: message.file_size,
        caption: None,
        sha256: None,
    }
}

fn file_mime(file_name: Option<&str>) -> &'static str {
    let extension = file_name
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

/// The content of a message event; None for kinds the bridge does not relay.
fn message_content(message: &Message, media_url: &dyn Fn(&str) -> String) -> Option<Content> {
    let mut content = Content::default();
    match message.kind.as_str() {
        "text" => content.text = message.text.clone().filter(|t| !t.is_empty()),
        // LINE re-encodes photos as JPEG, videos as MP4 and voice as M4A.
        "image" => content.attachments.push(media_attachment(
            message,
            MediaType::Image,
            "image/jpeg",
            media_url,
        )),
        "video" => content.attachments.push(media_attachment(
            message,
            MediaType::Video,
            "video/mp4",
            media_url,
        )),
        "audio" => content.attachments.push(media_attachment(
            message,
            MediaType::Audio,
            "audio/mp4",
            media_url,
        )),
        "file" => content.attachments.push(media_attachment(
            message,
            MediaType::File,
            file_mime(message.file_name.as_deref()),
            media_url,
        )),
        "location" => {
            content.location = Some(Location {
                latitude: message.latitude?,
                longitude: message.longitude?,
                title: message.title.clone().filter(|t| !t.is_empty()),
                address: message.address.clone().filter(|a| !a.is_empty()),
            });
        }
        "sticker" => {
            let sticker_id = message.sticker_id.clone()?;
            let package_id = message.package_id.clone().unwrap_or_default();
            content.sticker = Some(Sticker {
                id: format!("{package_id}/{sticker_id}"),
                emoji: message.keywords.first().cloned(),
                image_url: Some(sticker_image_url(&sticker_id)),
            });
            // Agents see stickers as text plus the preview.
            content.text = Some(match message.keywords.first() {
                Some(keyword) => format!("(sticker: {keyword})"),
                None => "(sticker)".to_owned(),
            });
        }
        _ => return None,
    }
    let empty = content.text.is_none()
        && content.attachments.is_empty()
        && content.location.is_none()
        && content.sticker.is_none();
    (!empty).then_some(content)
}

fn time_of(millis: i64, now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or(now)
}

/// Translates one event for `tenant`.
pub fn from_event(
    event: &Event,
    tenant: &TenantConfig,
    now: DateTime<Utc>,
    profiles: &HashMap<String, Profile>,
    media_url: &dyn Fn(&str) -> String,
) -> InboundLineEvent {
    let dedup_key = Some(event.webhook_event_id.clone())
        .filter(|id| !id.is_empty())
        .map(|id| format!("event:{id}"));
    let mut inbound = InboundLineEvent {
        dedup_key,
        envelope: None,
        reply_token: None,
        friendship: None,
    };
    let Some(source) = &event.source else {
        return inbound;
    };
    let user_id = source.user_id.clone().unwrap_or_default();
    match event.kind.as_str() {
        "follow" if !user_id.is_empty() => {
            inbound.friendship = Some((user_id, Friendship::Following));
            return inbound;
        }
        "unfollow" if !user_id.is_empty() => {
            inbound.friendship = Some((user_id, Friendship::Blocked));
            return inbound;
        }
        _ => {}
    }
    // In standby another channel module owns the chat: do not relay.
    if event.mode.as_deref() == Some("standby") {
        return inbound;
    }
    let Some(conversation) = conversation_id(source).map(str::to_owned) else {
        return inbound;
    };
    let body = match (event.kind.as_str(), &event.message, &event.postback) {
        ("message", Some(message), _) => message_content(message, media_url).map(Body::Message),
        ("postback", _, Some(postback)) => {
            let (kind, text, payload) = postback::decode(&postback.data);
            Some(Body::ButtonResponse(ButtonResponse {
                kind,
                text,
                payload,
                originating_message_id: None,
            }))
        }
        _ => None,
    };
    let Some(body) = body else {
        return inbound;
    };
    if !user_id.is_empty() {
        inbound.friendship = Some((user_id.clone(), Friendship::Following));
    }
    if let Some(token) = event.reply_token.clone().filter(|t| !t.is_empty()) {
        inbound.reply_token = Some((conversation.clone(), token));
    }
    let event_id = if event.webhook_event_id.is_empty() {
        event
            .message
            .as_ref()
            .map(|m| m.id.clone())
            .unwrap_or_else(|| event.timestamp.to_string())
    } else {
        event.webhook_event_id.clone()
    };
    let profile = profiles.get(&user_id);
    let guest_id = if user_id.is_empty() {
        conversation.clone()
    } else {
        user_id.clone()
    };
    inbound.envelope = Some(Envelope {
        v: ENVELOPE_VERSION,
        id: event_envelope_id(Platform::Line, &tenant.key, &event_id),
        tenant: tenant.key.clone(),
        platform: Platform::Line,
        direction: Direction::GuestToAgent,
        time: time_of(event.timestamp, now),
        conversation: Conversation {
            id: conversation,
            guest: guest(&guest_id, profile),
            cx_conversation_id: None,
        },
        body,
        custom_data: custom_data(profile),
        origin_id: Some(event_id),
        traceparent: None,
    });
    inbound
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::machinery::envelope::ButtonKind;
    use serde_json::json;
    use um_config::{MessagingConfig, Secret};

    pub(crate) fn tenant() -> TenantConfig {
        TenantConfig::new(
            "shop.acme",
            "ACME",
            Platform::Line,
            "https://um.example/line/shop.acme",
        )
        .with_messaging(MessagingConfig::Line(um_config::LineConfig {
            channel_id: None,
            channel_secret: Secret::new("chan-secret"),
            channel_access_token: Some(Secret::new("chan-token")),
            switcher: None,
            api_base_url: None,
        }))
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn media_url(id: &str) -> String {
        format!("https://um.example/line/shop.acme/media/{id}?sig=x")
    }

    fn event(extra: serde_json::Value) -> Event {
        let mut base = json!({
            "type": "message",
            "webhookEventId": "01HABCDEF",
            "deliveryContext": {"isRedelivery": false},
            "timestamp": 1_700_000_000_123i64,
            "source": {"type": "user", "userId": "U1234"},
            "replyToken": "rt-1",
            "mode": "active"
        });
        if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), extra) {
            base.extend(extra);
        }
        serde_json::from_value(base).unwrap()
    }

    fn profiles() -> HashMap<String, Profile> {
        HashMap::from([(
            "U1234".to_owned(),
            Profile {
                user_id: "U1234".into(),
                display_name: "Bob".into(),
                picture_url: Some("https://profile.line-scdn.net/p".into()),
                language: Some("ja".into()),
            },
        )])
    }

    fn translate(event: &Event) -> InboundLineEvent {
        from_event(event, &tenant(), now(), &profiles(), &media_url)
    }

    fn content(inbound: &InboundLineEvent) -> Content {
        match &inbound.envelope.as_ref().expect("an envelope").body {
            Body::Message(content) => content.clone(),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn text_message_with_profile_locale_and_reply_token() {
        let inbound = translate(&event(
            json!({"message": {"id": "m1", "type": "text", "text": "hello"}}),
        ));
        assert_eq!(inbound.dedup_key.as_deref(), Some("event:01HABCDEF"));
        assert_eq!(
            inbound.reply_token,
            Some(("U1234".to_owned(), "rt-1".to_owned()))
        );
        assert_eq!(
            inbound.friendship,
            Some(("U1234".to_owned(), Friendship::Following))
        );
        let envelope = inbound.envelope.clone().unwrap();
        assert_eq!(
            envelope.id,
            event_envelope_id(Platform::Line, "shop.acme", "01HABCDEF")
        );
        assert_eq!(envelope.origin_id.as_deref(), Some("01HABCDEF"));
        assert_eq!(envelope.time.timestamp_millis(), 1_700_000_000_123);
        assert_eq!(envelope.conversation.id, "U1234");
        assert_eq!(envelope.conversation.guest.nickname.as_deref(), Some("Bob"));
        assert_eq!(envelope.custom_data["media"], "LINE");
        assert_eq!(envelope.custom_data["locale"], "ja");
        assert_eq!(content(&inbound).text.as_deref(), Some("hello"));
    }

    #[test]
    fn no_locale_without_a_shared_language() {
        let inbound = from_event(
            &event(json!({"message": {"id": "m1", "type": "text", "text": "hi"}})),
            &tenant(),
            now(),
            &HashMap::new(),
            &media_url,
        );
        let envelope = inbound.envelope.unwrap();
        assert!(!envelope.custom_data.contains_key("locale"));
        assert_eq!(envelope.conversation.guest.nickname, None);
    }

    #[test]
    fn line_hosted_image_goes_through_the_connector_external_does_not() {
        let inbound = translate(&event(json!({"message": {"id": "m2", "type": "image",
            "contentProvider": {"type": "line"}}})));
        let attachment = &content(&inbound).attachments[0];
        assert_eq!(attachment.media_type, MediaType::Image);
        assert_eq!(attachment.mime, "image/jpeg");
        assert_eq!(attachment.url, media_url("m2"));

        let inbound = translate(&event(json!({"message": {"id": "m3", "type": "video",
            "contentProvider": {"type": "external", "originalContentUrl": "https://cdn.example/v.mp4",
                                "previewImageUrl": "https://cdn.example/v.jpg"}}})));
        assert_eq!(
            content(&inbound).attachments[0].url,
            "https://cdn.example/v.mp4"
        );
    }

    #[test]
    fn file_audio_location_sticker() {
        let inbound = translate(&event(json!({"message": {"id": "m4", "type": "file",
            "fileName": "report.pdf", "fileSize": 2048}})));
        let file = &content(&inbound).attachments[0];
        assert_eq!(
            (file.media_type, file.mime.as_str()),
            (MediaType::File, "application/pdf")
        );
        assert_eq!(file.filename.as_deref(), Some("report.pdf"));
        assert_eq!(file.size_bytes, Some(2048));

        let inbound = translate(&event(json!({"message": {"id": "m5", "type": "audio",
            "duration": 1760, "contentProvider": {"type": "line"}}})));
        assert_eq!(
            content(&inbound).attachments[0].media_type,
            MediaType::Audio
        );

        let inbound = translate(&event(json!({"message": {"id": "m6", "type": "location",
            "title": "Tower", "address": "Tokyo", "latitude": 35.65, "longitude": 139.74}})));
        let location = content(&inbound).location.unwrap();
        assert_eq!(location.title.as_deref(), Some("Tower"));
        assert_eq!((location.latitude, location.longitude), (35.65, 139.74));

        let inbound = translate(&event(json!({"message": {"id": "m7", "type": "sticker",
            "packageId": "446", "stickerId": "1988", "keywords": ["happy"]}})));
        let content = content(&inbound);
        let sticker = content.sticker.unwrap();
        assert_eq!(sticker.id, "446/1988");
        assert!(sticker.image_url.unwrap().contains("/1988/"));
        assert_eq!(content.text.as_deref(), Some("(sticker: happy)"));
    }

    #[test]
    fn postback_of_our_quick_reply_and_of_a_foreign_template() {
        let data = postback::encode(ButtonKind::QuickReply, "Yes", "help-yes").unwrap();
        let inbound = translate(&event(
            json!({"type": "postback", "postback": {"data": data}}),
        ));
        assert_eq!(
            inbound.envelope.unwrap().body,
            Body::ButtonResponse(ButtonResponse {
                kind: ButtonKind::QuickReply,
                text: "Yes".into(),
                payload: "help-yes".into(),
                originating_message_id: None,
            })
        );
        let inbound = translate(&event(
            json!({"type": "postback", "postback": {"data": "action=buy"}}),
        ));
        match inbound.envelope.unwrap().body {
            Body::ButtonResponse(response) => {
                assert_eq!(response.kind, ButtonKind::Button);
                assert_eq!(response.payload, "action=buy");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn follow_unfollow_standby_and_unknown_are_not_relayed() {
        let inbound = translate(&event(json!({"type": "unfollow", "replyToken": null})));
        assert!(inbound.envelope.is_none());
        assert_eq!(
            inbound.friendship,
            Some(("U1234".to_owned(), Friendship::Blocked))
        );
        let inbound = translate(&event(json!({"type": "follow"})));
        assert_eq!(
            inbound.friendship,
            Some(("U1234".to_owned(), Friendship::Following))
        );
        let inbound = translate(&event(json!({"mode": "standby", "replyToken": null,
            "message": {"id": "m1", "type": "text", "text": "hi"}})));
        assert!(inbound.envelope.is_none());
        assert!(inbound.reply_token.is_none());
        let inbound = translate(&event(json!({"type": "beacon"})));
        assert!(inbound.envelope.is_none());
        assert_eq!(inbound.dedup_key.as_deref(), Some("event:01HABCDEF"));
    }

    #[test]
    fn group_messages_address_the_group() {
        let inbound = translate(&event(json!({
            "source": {"type": "group", "groupId": "C99", "userId": "U1234"},
            "message": {"id": "m1", "type": "text", "text": "hi all"}})));
        let envelope = inbound.envelope.unwrap();
        assert_eq!(envelope.conversation.id, "C99");
        assert_eq!(envelope.conversation.guest.id, "U1234");
        assert_eq!(inbound.reply_token.unwrap().0, "C99");
    }

    #[test]
    fn media_urls_never_carry_the_channel_token() {
        let inbound = translate(&event(json!({"message": {"id": "m2", "type": "image",
            "contentProvider": {"type": "line"}}})));
        let json = serde_json::to_string(&inbound.envelope).unwrap();
        assert!(!json.contains("chan-token") && !json.contains("chan-secret"));
    }
}
