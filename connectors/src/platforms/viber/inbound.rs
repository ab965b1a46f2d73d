//! Viber callback → envelope (pure).
//!
//! Media are not fetched here: the caller supplies `media_url`, which turns
//! a [`MediaRef`] into the connector's signed, expiring URL.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use um_config::{Platform, TenantConfig};

use super::media_ref::{MediaRef, mime_from_name};
use super::tracking::Tracking;
use super::types::{Callback, InMessage, UserDetails, ViberUser};
use crate::machinery::envelope::{
    Attachment, Body, ButtonResponse, Contact, Content, Conversation, Direction, ENVELOPE_VERSION,
    Envelope, Guest, Location, MediaType, Sticker,
};
use crate::platform::event_envelope_id;

/// The callback events that carry a guest message.
pub const MESSAGE_EVENT: &str = "message";

/// Key under which a redelivered callback is recognised.
pub fn dedup_key(token: &str) -> String {
    format!("msg:{token}")
}

fn time(callback: &Callback, now: DateTime<Utc>) -> DateTime<Utc> {
    callback
        .timestamp
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .unwrap_or(now)
}

fn guest(sender: &ViberUser) -> Guest {
    Guest {
        id: sender.id.clone(),
        nickname: sender.name.clone().filter(|n| !n.is_empty()),
        avatar_url: sender.avatar.clone().filter(|a| !a.is_empty()),
        locale: sender.language.clone().filter(|l| !l.is_empty()),
        ..Guest::default()
    }
}

/// `country`, `deviceOS`, `deviceType`, `locale` from `get_user_details`
/// where known, else from the callback's sender.
pub fn custom_data(sender: &ViberUser, details: Option<&UserDetails>) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    let mut put = |key: &str, value: Option<&String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            data.insert(key.to_owned(), value.clone());
        }
    };
    put(
        "country",
        details
            .and_then(|d| d.country.as_ref())
            .or(sender.country.as_ref()),
    );
    put(
        "locale",
        details
            .and_then(|d| d.language.as_ref())
            .or(sender.language.as_ref()),
    );
    put(
        "deviceOS",
        details.and_then(|d| d.primary_device_os.as_ref()),
    );
    put("deviceType", details.and_then(|d| d.device_type.as_ref()));
    data
}

fn media_attachment(
    message: &InMessage,
    media_type: MediaType,
    media_url: &dyn Fn(&MediaRef) -> String,
) -> Option<Attachment> {
    let url = message.media.clone().filter(|u| !u.is_empty())?;
    let reference = MediaRef {
        kind: message.kind.clone(),
        url,
        file_name: message.file_name.clone(),
    };
    let mime = match message.kind.as_str() {
        "file" => message
            .file_name
            .as_deref()
            .and_then(mime_from_name)
            .unwrap_or("application/octet-stream"),
        _ => reference.default_mime(),
    };
    Some(Attachment {
        media_type,
        url: media_url(&reference),
        mime: mime.to_owned(),
        filename: message.file_name.clone(),
        size_bytes: message.size,
        caption: None,
        sha256: None,
    })
}

/// The body of a guest message, or None for a type the bridge does not relay.
pub fn message_body(message: &InMessage, media_url: &dyn Fn(&MediaRef) -> String) -> Option<Body> {
    let text = message.text.clone().filter(|t| !t.is_empty());
    let mut content = Content::default();
    match message.kind.as_str() {
        "text" => {
            let text = text?;
            let tracked = message.tracking_data.as_deref().and_then(Tracking::decode);
            if let Some((kind, button)) = tracked.as_ref().and_then(|t| t.find(&text)) {
                return Some(Body::ButtonResponse(ButtonResponse {
                    kind,
                    text: button.t.clone(),
                    payload: button.p.clone(),
                    originating_message_id: None,
                }));
            }
            content.text = Some(text);
        }
        "picture" | "video" | "file" => {
            let media_type = match message.kind.as_str() {
                "picture" => MediaType::Image,
                "video" => MediaType::Video,
                _ => MediaType::File,
            };
            content.text = text;
            content
                .attachments
                .extend(media_attachment(message, media_type, media_url));
            if content.attachments.is_empty() && content.text.is_none() {
                return None;
            }
        }
        "sticker" => {
            let attachment = media_attachment(message, MediaType::Image, media_url);
            content.sticker = Some(Sticker {
                id: message
                    .sticker_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                emoji: None,
                image_url: attachment.as_ref().map(|a| a.url.clone()),
            });
            content.attachments.extend(attachment);
        }
        "location" => {
            let location = message.location.as_ref()?;
            content.location = Some(Location {
                latitude: location.lat,
                longitude: location.lon,
                title: None,
                address: location.address.clone().filter(|a| !a.is_empty()),
            });
        }
        "contact" => {
            let contact = message.contact.as_ref()?;
            content.contact = Some(Contact {
                name: contact.name.clone(),
                phone: contact.phone_number.clone(),
            });
        }
        // A shared link: its URL is the message.
        "url" => content.text = message.media.clone().or(text).filter(|t| !t.is_empty()),
        _ => return None,
    }
    if content == Content::default() {
        return None;
    }
    Some(Body::Message(content))
}

/// The envelope of a `message` callback; None for other events, for
/// messages without a sender or token, and for types the bridge does not
/// relay.
pub fn from_callback(
    callback: &Callback,
    tenant: &TenantConfig,
    details: Option<&UserDetails>,
    now: DateTime<Utc>,
    media_url: &dyn Fn(&MediaRef) -> String,
) -> Option<Envelope> {
    if callback.event != MESSAGE_EVENT {
        return None;
    }
    let sender = callback.sender.as_ref().filter(|s| !s.id.is_empty())?;
    let token = callback.token()?;
    let body = message_body(callback.message.as_ref()?, media_url)?;
    Some(Envelope {
        v: ENVELOPE_VERSION,
        id: event_envelope_id(Platform::Viber, &tenant.key, &token),
        tenant: tenant.key.clone(),
        platform: Platform::Viber,
        direction: Direction::GuestToAgent,
        time: time(callback, now),
        conversation: Conversation {
            id: sender.id.clone(),
            guest: guest(sender),
            cx_conversation_id: None,
        },
        body,
        custom_data: custom_data(sender, details),
        origin_id: Some(token),
        traceparent: None,
    })
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
            Platform::Viber,
            "https://um.example/viber/shop.acme",
        )
        .with_messaging(MessagingConfig::Viber(um_config::ViberConfig {
            auth_token: Secret::new("445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"),
            sender_name: "ACME Support".into(),
            sender_avatar: Some("https://acme.example/a.png".into()),
            api_base_url: None,
        }))
    }

    fn now() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_700_000_000_000).unwrap()
    }

    fn signed(reference: &MediaRef) -> String {
        format!(
            "https://um.example/viber/shop.acme/media/{}?exp=1&sig=x",
            reference.encode()
        )
    }

    fn callback(message: serde_json::Value) -> Callback {
        serde_json::from_value(json!({
            "event": "message",
            "timestamp": 1_457_764_197_627_i64,
            "message_token": 4_912_661_846_655_238_145_u64,
            "sender": {
                "id": "01234567890A=", "name": "John McClane",
                "avatar": "https://avatar.example.com", "country": "UK",
                "language": "en", "api_version": 1
            },
            "message": message
        }))
        .unwrap()
    }

    fn envelope(message: serde_json::Value) -> Option<Envelope> {
        from_callback(&callback(message), &tenant(), None, now(), &signed)
    }

    #[test]
    fn text_message() {
        let envelope =
            envelope(json!({"type": "text", "text": "a message to the service"})).unwrap();
        assert_eq!(envelope.conversation.id, "01234567890A=");
        assert_eq!(
            envelope.conversation.guest.nickname.as_deref(),
            Some("John McClane")
        );
        assert_eq!(envelope.origin_id.as_deref(), Some("4912661846655238145"));
        assert_eq!(envelope.time.timestamp_millis(), 1_457_764_197_627);
        assert_eq!(envelope.custom_data["country"], "UK");
        assert_eq!(envelope.custom_data["locale"], "en");
        assert!(!envelope.custom_data.contains_key("deviceOS"));
        assert_eq!(
            envelope.id,
            event_envelope_id(Platform::Viber, "shop.acme", "4912661846655238145")
        );
        match envelope.body {
            Body::Message(content) => {
                assert_eq!(content.text.as_deref(), Some("a message to the service"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn user_details_win_over_sender() {
        let details = UserDetails {
            country: Some("JP".into()),
            language: Some("ja".into()),
            primary_device_os: Some("Android 13".into()),
            device_type: Some("Pixel 7".into()),
            ..UserDetails::default()
        };
        let envelope = from_callback(
            &callback(json!({"type": "text", "text": "hi"})),
            &tenant(),
            Some(&details),
            now(),
            &signed,
        )
        .unwrap();
        assert_eq!(envelope.custom_data["country"], "JP");
        assert_eq!(envelope.custom_data["locale"], "ja");
        assert_eq!(envelope.custom_data["deviceOS"], "Android 13");
        assert_eq!(envelope.custom_data["deviceType"], "Pixel 7");
    }

    #[test]
    fn picture_is_re_served_under_the_connector_url() {
        let media = "https://dl-media.viber.com/1/share/2/long/vibes/icon/image/0x0/95e0/5688fdffdaa81d71f9fd9.jpg";
        let envelope =
            envelope(json!({"type": "picture", "text": "look", "media": media, "size": 1234}))
                .unwrap();
        let Body::Message(content) = envelope.body else {
            panic!()
        };
        assert_eq!(content.text.as_deref(), Some("look"));
        let attachment = &content.attachments[0];
        assert_eq!(attachment.media_type, MediaType::Image);
        assert_eq!(attachment.mime, "image/jpeg");
        assert_eq!(attachment.size_bytes, Some(1234));
        assert!(
            attachment
                .url
                .starts_with("https://um.example/viber/shop.acme/media/picture.")
        );
        assert!(!attachment.url.contains("dl-media.viber.com"));
        let reference = attachment
            .url
            .split("/media/")
            .nth(1)
            .unwrap()
            .split('?')
            .next()
            .unwrap();
        assert_eq!(MediaRef::decode(reference).unwrap().url, media);
    }

    #[test]
    fn file_sticker_location_contact_url() {
        let Some(Body::Message(file)) = envelope(json!({"type": "file", "media": "https://m.example/f", "file_name": "a.pdf", "size": 10})).map(|e| e.body) else { panic!() };
        assert_eq!(file.attachments[0].mime, "application/pdf");
        assert_eq!(file.attachments[0].filename.as_deref(), Some("a.pdf"));
        let Some(Body::Message(sticker)) = envelope(
            json!({"type": "sticker", "sticker_id": 46105, "media": "https://m.example/s.png"}),
        )
        .map(|e| e.body) else {
            panic!()
        };
        assert_eq!(sticker.sticker.as_ref().unwrap().id, "46105");
        assert_eq!(
            sticker.sticker.unwrap().image_url.as_deref(),
            Some(sticker.attachments[0].url.as_str())
        );
        let Some(Body::Message(location)) =
            envelope(json!({"type": "location", "location": {"lat": 50.76891, "lon": 6.11499}}))
                .map(|e| e.body)
        else {
            panic!()
        };
        assert_eq!(location.location.unwrap().latitude, 50.76891);
        let Some(Body::Message(contact)) = envelope(json!({"type": "contact", "contact": {"name": "Alex", "phone_number": "+972511123123"}})).map(|e| e.body) else { panic!() };
        assert_eq!(
            contact.contact.unwrap().phone.as_deref(),
            Some("+972511123123")
        );
        let Some(Body::Message(url)) =
            envelope(json!({"type": "url", "media": "http://www.website.com/go_here"}))
                .map(|e| e.body)
        else {
            panic!()
        };
        assert_eq!(url.text.as_deref(), Some("http://www.website.com/go_here"));
    }

    #[test]
    fn tap_on_a_tracked_keyboard_button_is_a_button_response() {
        let mut tracking = Tracking::default();
        tracking.push(ButtonKind::QuickReply, "help-yes", "Yes");
        let data = tracking.encode().unwrap();
        let Some(Body::ButtonResponse(tap)) =
            envelope(json!({"type": "text", "text": "help-yes", "tracking_data": data}))
                .map(|e| e.body)
        else {
            panic!()
        };
        assert_eq!(tap.kind, ButtonKind::QuickReply);
        assert_eq!(tap.text, "Yes");
        assert_eq!(tap.payload, "help-yes");
        // Typed text that is no payload stays text.
        let Some(Body::Message(typed)) =
            envelope(json!({"type": "text", "text": "yes", "tracking_data": data})).map(|e| e.body)
        else {
            panic!()
        };
        assert_eq!(typed.text.as_deref(), Some("yes"));
    }

    #[test]
    fn other_events_and_unknown_types_yield_nothing() {
        let subscribed: Callback = serde_json::from_value(json!({
            "event": "subscribed", "timestamp": 1, "message_token": 2,
            "user": {"id": "u", "name": "n"}
        }))
        .unwrap();
        assert_eq!(
            from_callback(&subscribed, &tenant(), None, now(), &signed),
            None
        );
        assert_eq!(envelope(json!({"type": "rich_media"})), None);
        assert_eq!(envelope(json!({"type": "text", "text": ""})), None);
    }
}
