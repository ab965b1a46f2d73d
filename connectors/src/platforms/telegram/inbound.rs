//! Telegram `Update` → envelope (pure).
//!
//! Files are not fetched here: the caller supplies `media_url`, which turns a
//! Telegram file reference into a URL of the connector (signed, expiring), so
//! the Bot API file URL, which embeds the bot token, never leaves the
//! connector.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use um_config::{Platform, TenantConfig};

use super::outbound::CARD_CALLBACK_PREFIX;
use super::types::{FileObject, Message, Update, User};
use crate::machinery::envelope::{
    Attachment, Body, ButtonKind, ButtonResponse, Contact, Content, Conversation, Direction,
    ENVELOPE_VERSION, Envelope, Guest, Location, MediaType, Sticker,
};

/// A Telegram file the connector will serve under its own URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    pub file_id: String,
    pub mime: String,
    pub filename: Option<String>,
}

/// What one update asks of the bridge.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundUpdate {
    /// The envelope for Genesys, or None for updates the bridge does not
    /// relay (service messages, polls, games, ...).
    pub envelope: Option<Envelope>,
    /// A callback query must be answered, relayed or not, or the guest's
    /// button keeps spinning.
    pub callback_query_id: Option<String>,
}

/// Envelope id (and de-duplication key) of an update: `update_id` is unique
/// per bot, and a bot belongs to one tenant.
pub fn envelope_id(tenant: &str, update_id: i64) -> String {
    format!("{tenant}:tg:{update_id}")
}

fn guest(user: Option<&User>, chat_id: i64) -> Guest {
    let Some(user) = user else {
        return Guest {
            id: chat_id.to_string(),
            ..Guest::default()
        };
    };
    let full_name = match &user.last_name {
        Some(last) => format!("{} {last}", user.first_name),
        None => user.first_name.clone(),
    };
    Guest {
        id: user.id.to_string(),
        nickname: user
            .username
            .clone()
            .or(Some(full_name))
            .filter(|n| !n.is_empty()),
        first_name: Some(user.first_name.clone()).filter(|n| !n.is_empty()),
        last_name: user.last_name.clone(),
        locale: user.language_code.clone(),
        ..Guest::default()
    }
}

fn custom_data(user: Option<&User>) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([(
        "media".to_owned(),
        Platform::Telegram.display_name().to_owned(),
    )]);
    if let Some(user) = user {
        if let Some(username) = &user.username {
            data.insert("telegramUsername".to_owned(), username.clone());
        }
        if let Some(language) = &user.language_code {
            data.insert("locale".to_owned(), language.clone());
        }
    }
    data
}

fn file_attachment(
    file: &FileObject,
    media_type: MediaType,
    default_mime: &str,
    media_url: &dyn Fn(&MediaRef) -> String,
) -> Attachment {
    let mime = file
        .mime_type
        .clone()
        .unwrap_or_else(|| default_mime.to_owned());
    Attachment {
        media_type,
        url: media_url(&MediaRef {
            file_id: file.file_id.clone(),
            mime: mime.clone(),
            filename: file.file_name.clone(),
        }),
        mime,
        filename: file.file_name.clone(),
        size_bytes: file.file_size,
        caption: None,
        sha256: None,
    }
}

fn message_content(message: &Message, media_url: &dyn Fn(&MediaRef) -> String) -> Content {
    let mut content = Content {
        text: message
            .text
            .clone()
            .or_else(|| message.caption.clone())
            .filter(|text| !text.is_empty()),
        ..Content::default()
    };
    // Telegram sends every size of a photo; the last is the largest, but pick
    // by area so the order does not matter.
    if let Some(photo) = message
        .photo
        .iter()
        .max_by_key(|size| u64::from(size.width) * u64::from(size.height))
    {
        let file = FileObject {
            file_id: photo.file_id.clone(),
            file_unique_id: photo.file_unique_id.clone(),
            file_name: None,
            mime_type: None,
            file_size: photo.file_size,
        };
        content.attachments.push(file_attachment(
            &file,
            MediaType::Image,
            "image/jpeg",
            media_url,
        ));
    }
    let files = [
        (
            &message.document,
            MediaType::File,
            "application/octet-stream",
        ),
        (&message.video, MediaType::Video, "video/mp4"),
        (&message.video_note, MediaType::Video, "video/mp4"),
        (&message.animation, MediaType::Video, "video/mp4"),
        (&message.voice, MediaType::Audio, "audio/ogg"),
        (&message.audio, MediaType::Audio, "audio/mpeg"),
    ];
    for (file, media_type, default_mime) in files {
        if let Some(file) = file {
            content
                .attachments
                .push(file_attachment(file, media_type, default_mime, media_url));
        }
    }
    if let Some(sticker) = &message.sticker {
        // Static stickers are WebP images, video stickers WebM; animated
        // (Lottie .tgs) ones have no format an agent desktop shows.
        let shown = match (sticker.is_animated, sticker.is_video) {
            (false, false) => Some((MediaType::Image, "image/webp")),
            (_, true) => Some((MediaType::Video, "video/webm")),
            (true, false) => None,
        };
        let mut image_url = None;
        if let Some((media_type, mime)) = shown {
            let file = FileObject {
                file_id: sticker.file_id.clone(),
                file_unique_id: String::new(),
                file_name: None,
                mime_type: Some(mime.to_owned()),
                file_size: None,
            };
            let attachment = file_attachment(&file, media_type, mime, media_url);
            image_url = Some(attachment.url.clone());
            content.attachments.push(attachment);
        }
        content.sticker = Some(Sticker {
            id: sticker.file_id.clone(),
            emoji: sticker.emoji.clone(),
            image_url,
        });
    }
    if let Some(venue) = &message.venue {
        content.location = Some(Location {
            latitude: venue.location.latitude,
            longitude: venue.location.longitude,
            title: Some(venue.title.clone()).filter(|t| !t.is_empty()),
            address: Some(venue.address.clone()).filter(|a| !a.is_empty()),
        });
    } else if let Some(location) = &message.location {
        content.location = Some(Location {
            latitude: location.latitude,
            longitude: location.longitude,
            title: None,
            address: None,
        });
    }
    if let Some(contact) = &message.contact {
        let name = match &contact.last_name {
            Some(last) => format!("{} {last}", contact.first_name),
            None => contact.first_name.clone(),
        };
        content.contact = Some(Contact {
            name: Some(name).filter(|n| !n.is_empty()),
            phone: Some(contact.phone_number.clone()),
        });
    }
    content
}

fn is_empty(content: &Content) -> bool {
    content.text.is_none()
        && content.attachments.is_empty()
        && content.location.is_none()
        && content.contact.is_none()
        && content.sticker.is_none()
}

fn time_of(unix_seconds: i64, now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(unix_seconds, 0).unwrap_or(now)
}

/// The label of the inline button whose `callback_data` is `data`.
fn button_label(message: Option<&Message>, data: &str) -> Option<String> {
    message?
        .reply_markup
        .as_ref()?
        .inline_keyboard
        .iter()
        .flatten()
        .find(|button| button.callback_data.as_deref() == Some(data))
        .map(|button| button.text.clone())
}

/// Translates one update for `tenant`. `now` dates callback queries, which
/// carry no time of their own.
pub fn from_update(
    update: &Update,
    tenant: &TenantConfig,
    now: DateTime<Utc>,
    media_url: &dyn Fn(&MediaRef) -> String,
) -> InboundUpdate {
    let envelope = |chat_id: i64, user: Option<&User>, time: DateTime<Utc>, body: Body| Envelope {
        v: ENVELOPE_VERSION,
        id: envelope_id(&tenant.key, update.update_id),
        tenant: tenant.key.clone(),
        platform: Platform::Telegram,
        direction: Direction::GuestToAgent,
        time,
        conversation: Conversation {
            id: chat_id.to_string(),
            guest: guest(user, chat_id),
            cx_conversation_id: None,
        },
        body,
        custom_data: custom_data(user),
        origin_id: Some(update.update_id.to_string()),
        traceparent: None,
    };

    if let Some(query) = &update.callback_query {
        let relayed = match (&query.data, &query.message) {
            (Some(data), Some(message)) => {
                let (kind, payload) = match data.strip_prefix(CARD_CALLBACK_PREFIX) {
                    Some(payload) => (ButtonKind::Button, payload),
                    None => (ButtonKind::QuickReply, data.as_str()),
                };
                Some(envelope(
                    message.chat.id,
                    Some(&query.from),
                    now,
                    Body::ButtonResponse(ButtonResponse {
                        kind,
                        text: button_label(Some(message), data)
                            .unwrap_or_else(|| payload.to_owned()),
                        payload: payload.to_owned(),
                        originating_message_id: None,
                    }),
                ))
            }
            _ => None,
        };
        return InboundUpdate {
            envelope: relayed,
            callback_query_id: Some(query.id.clone()),
        };
    }

    let (message, edited) = match (&update.message, &update.edited_message) {
        (Some(message), _) => (message, false),
        (None, Some(message)) => (message, true),
        (None, None) => {
            return InboundUpdate {
                envelope: None,
                callback_query_id: None,
            };
        }
    };
    let mut content = message_content(message, media_url);
    if is_empty(&content) {
        return InboundUpdate {
            envelope: None,
            callback_query_id: None,
        };
    }
    if edited {
        content.text = Some(format!("(edited) {}", content.text.unwrap_or_default()));
    }
    InboundUpdate {
        envelope: Some(envelope(
            message.chat.id,
            message.from.as_ref(),
            time_of(message.date, now),
            Body::Message(content),
        )),
        callback_query_id: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;
    use um_config::{MessagingConfig, Secret};

    pub(crate) fn tenant() -> TenantConfig {
        TenantConfig::new(
            "shop.acme",
            "ACME",
            Platform::Telegram,
            "https://um.example/telegram/shop.acme",
        )
        .with_messaging(MessagingConfig::Telegram(um_config::TelegramConfig {
            bot_token: Secret::new("123:ABC"),
            webhook_secret_token: None,
            api_base_url: None,
        }))
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn media_url(media: &MediaRef) -> String {
        format!(
            "https://um.example/media/{}?mime={}",
            media.file_id, media.mime
        )
    }

    fn update(message: serde_json::Value) -> Update {
        let mut base = json!({
            "message_id": 5,
            "from": {"id": 7, "is_bot": false, "first_name": "Bob", "last_name": "Minion",
                     "username": "bobby", "language_code": "ja"},
            "chat": {"id": 7, "type": "private"},
            "date": 1_700_000_000
        });
        if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), message) {
            base.extend(extra);
        }
        serde_json::from_value(json!({"update_id": 1001, "message": base})).unwrap()
    }

    fn translate(update: &Update) -> Envelope {
        from_update(update, &tenant(), now(), &media_url)
            .envelope
            .expect("an envelope")
    }

    fn content(envelope: &Envelope) -> Content {
        match &envelope.body {
            Body::Message(content) => content.clone(),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn text_message() {
        let envelope = translate(&update(json!({"text": "hello"})));
        assert_eq!(envelope.id, "shop.acme:tg:1001");
        assert_eq!(envelope.origin_id.as_deref(), Some("1001"));
        assert_eq!(envelope.tenant, "shop.acme");
        assert_eq!(envelope.direction, Direction::GuestToAgent);
        assert_eq!(envelope.time.timestamp(), 1_700_000_000);
        assert_eq!(envelope.conversation.id, "7");
        let guest = &envelope.conversation.guest;
        assert_eq!(guest.nickname.as_deref(), Some("bobby"));
        assert_eq!(guest.first_name.as_deref(), Some("Bob"));
        assert_eq!(guest.last_name.as_deref(), Some("Minion"));
        assert_eq!(envelope.custom_data["media"], "Telegram");
        assert_eq!(envelope.custom_data["locale"], "ja");
        assert_eq!(content(&envelope).text.as_deref(), Some("hello"));
    }

    #[test]
    fn photo_takes_largest_size_and_caption() {
        let envelope = translate(&update(json!({
        "caption": "my cat",
        "photo": [
            {"file_id": "small", "file_unique_id": "u1", "width": 90, "height": 90, "file_size": 1000},
            {"file_id": "large", "file_unique_id": "u3", "width": 1280, "height": 1280, "file_size": 90000},
            {"file_id": "medium", "file_unique_id": "u2", "width": 320, "height": 320}
        ]})));
        let content = content(&envelope);
        assert_eq!(content.text.as_deref(), Some("my cat"));
        assert_eq!(content.attachments.len(), 1);
        let photo = &content.attachments[0];
        assert_eq!(photo.media_type, MediaType::Image);
        assert_eq!(photo.mime, "image/jpeg");
        assert_eq!(photo.url, "https://um.example/media/large?mime=image/jpeg");
        assert_eq!(photo.size_bytes, Some(90000));
    }

    #[test]
    fn document_video_voice_audio() {
        let cases = [
            (
                "document",
                json!({"file_id": "d", "file_name": "a.pdf", "mime_type": "application/pdf"}),
                MediaType::File,
                "application/pdf",
            ),
            (
                "video",
                json!({"file_id": "v", "duration": 3, "width": 1, "height": 1}),
                MediaType::Video,
                "video/mp4",
            ),
            (
                "voice",
                json!({"file_id": "o", "duration": 2, "mime_type": "audio/ogg"}),
                MediaType::Audio,
                "audio/ogg",
            ),
            (
                "audio",
                json!({"file_id": "m", "duration": 2, "title": "song"}),
                MediaType::Audio,
                "audio/mpeg",
            ),
        ];
        for (field, object, media_type, mime) in cases {
            let envelope = translate(&update(json!({ field: object })));
            let attachments = content(&envelope).attachments;
            assert_eq!(attachments.len(), 1, "{field}");
            assert_eq!(attachments[0].media_type, media_type, "{field}");
            assert_eq!(attachments[0].mime, mime, "{field}");
        }
        let envelope = translate(&update(
            json!({"document": {"file_id": "d", "file_name": "a.pdf"}}),
        ));
        assert_eq!(
            content(&envelope).attachments[0].filename.as_deref(),
            Some("a.pdf")
        );
    }

    #[test]
    fn location_venue_and_contact() {
        let envelope = translate(&update(
            json!({"location": {"latitude": 35.5, "longitude": 139.25}}),
        ));
        let location = content(&envelope).location.unwrap();
        assert_eq!((location.latitude, location.longitude), (35.5, 139.25));

        let envelope = translate(&update(json!({"venue": {
            "location": {"latitude": 1.0, "longitude": 2.0}, "title": "Cafe", "address": "Main St 1"},
            "location": {"latitude": 1.0, "longitude": 2.0}})));
        let location = content(&envelope).location.unwrap();
        assert_eq!(location.title.as_deref(), Some("Cafe"));
        assert_eq!(location.address.as_deref(), Some("Main St 1"));

        let envelope = translate(&update(
            json!({"contact": {"phone_number": "+8130", "first_name": "Ann", "last_name": "Lee"}}),
        ));
        assert_eq!(
            content(&envelope).contact,
            Some(Contact {
                name: Some("Ann Lee".into()),
                phone: Some("+8130".into())
            })
        );
    }

    #[test]
    fn static_sticker_becomes_image_animated_only_emoji() {
        let envelope = translate(&update(json!({"sticker": {"file_id": "s1", "emoji": "😀",
            "type": "regular", "width": 512, "height": 512, "is_animated": false, "is_video": false}})));
        let content = content(&envelope);
        assert_eq!(content.attachments[0].mime, "image/webp");
        let sticker = content.sticker.unwrap();
        assert_eq!(sticker.emoji.as_deref(), Some("😀"));
        assert_eq!(
            sticker.image_url.as_deref(),
            Some(content.attachments[0].url.as_str())
        );

        let envelope = translate(&update(json!({"sticker": {"file_id": "s2", "emoji": "🎉",
            "is_animated": true, "is_video": false}})));
        let content = super::tests::content(&envelope);
        assert!(content.attachments.is_empty());
        assert_eq!(content.sticker.unwrap().image_url, None);
    }

    #[test]
    fn media_url_never_contains_the_bot_token() {
        let envelope = translate(&update(
            json!({"photo": [{"file_id": "f", "width": 1, "height": 1}]}),
        ));
        let json = serde_json::to_string(&envelope).unwrap();
        assert!(!json.contains("123:ABC"), "{json}");
    }

    #[test]
    fn callback_query_becomes_button_response_with_label() {
        let update: Update = serde_json::from_value(json!({
            "update_id": 1002,
            "callback_query": {
                "id": "cq-1",
                "from": {"id": 7, "is_bot": false, "first_name": "Bob"},
                "chat_instance": "ci",
                "data": "yes-1",
                "message": {"message_id": 9, "chat": {"id": 7, "type": "private"}, "date": 1_700_000_000,
                    "text": "Pick one",
                    "reply_markup": {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes-1"}],
                                                          [{"text": "No", "callback_data": "no-1"}]]}}
            }
        }))
        .unwrap();
        let inbound = from_update(&update, &tenant(), now(), &media_url);
        assert_eq!(inbound.callback_query_id.as_deref(), Some("cq-1"));
        let envelope = inbound.envelope.unwrap();
        assert_eq!(envelope.time, now());
        assert_eq!(envelope.conversation.id, "7");
        assert_eq!(
            envelope.body,
            Body::ButtonResponse(ButtonResponse {
                kind: ButtonKind::QuickReply,
                text: "Yes".into(),
                payload: "yes-1".into(),
                originating_message_id: None,
            })
        );
    }

    #[test]
    fn a_card_button_tap_is_a_button_response_with_the_bare_payload() {
        let update: Update = serde_json::from_value(json!({
            "update_id": 1004,
            "callback_query": {
                "id": "cq-3",
                "from": {"id": 7, "is_bot": false, "first_name": "Bob"},
                "chat_instance": "ci",
                "data": "um:b:more-red",
                "message": {"message_id": 10, "chat": {"id": 7, "type": "private"}, "date": 1_700_000_000,
                    "caption": "Red shoe",
                    "reply_markup": {"inline_keyboard": [[{"text": "Buy", "url": "https://shop/r"}],
                                                          [{"text": "More like this", "callback_data": "um:b:more-red"}]]}}
            }
        }))
        .unwrap();
        let envelope = from_update(&update, &tenant(), now(), &media_url)
            .envelope
            .unwrap();
        assert_eq!(
            envelope.body,
            Body::ButtonResponse(ButtonResponse {
                kind: ButtonKind::Button,
                text: "More like this".into(),
                payload: "more-red".into(),
                originating_message_id: None,
            })
        );
    }

    #[test]
    fn callback_query_without_data_is_answered_not_relayed() {
        let update: Update = serde_json::from_value(json!({
            "update_id": 1003,
            "callback_query": {"id": "cq-2", "from": {"id": 7, "first_name": "Bob"}, "game_short_name": "g"}
        }))
        .unwrap();
        let inbound = from_update(&update, &tenant(), now(), &media_url);
        assert_eq!(inbound.callback_query_id.as_deref(), Some("cq-2"));
        assert!(inbound.envelope.is_none());
    }

    #[test]
    fn service_messages_and_unknown_updates_are_not_relayed() {
        let joined = update(json!({"new_chat_members": [{"id": 8, "first_name": "X"}]}));
        assert!(
            from_update(&joined, &tenant(), now(), &media_url)
                .envelope
                .is_none()
        );
        let poll: Update =
            serde_json::from_value(json!({"update_id": 5, "poll": {"id": "p"}})).unwrap();
        assert!(
            from_update(&poll, &tenant(), now(), &media_url)
                .envelope
                .is_none()
        );
    }

    #[test]
    fn edited_message_is_marked() {
        let mut edited = update(json!({"text": "fixed"}));
        edited.edited_message = edited.message.take();
        let envelope = translate(&edited);
        assert_eq!(content(&envelope).text.as_deref(), Some("(edited) fixed"));
    }
}
