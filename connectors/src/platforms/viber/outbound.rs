//! Agent envelope → Viber `send_message` bodies (pure).
//!
//! One envelope can take several messages (text, then each attachment,
//! location, sticker, cards); quick replies become a `keyboard` on the last
//! one and cards a `rich_media` carousel. Text over Viber's limit is split,
//! never truncated; what cannot be expressed is refused with a reason.

use serde_json::{Map, Value, json};
use um_config::MessagingOptions;

use super::tracking::Tracking;
use crate::machinery::envelope::{
    Attachment, Body, ButtonKind, Card, CardAction, Content, Envelope, MediaType, QuickReply,
    ReasonCode,
};
use crate::machinery::text::{self, TextUnit};

/// Characters of a `text` message.
pub const MAX_TEXT: usize = 7000;
/// Characters of the description of a `picture` message.
pub const MAX_PICTURE_TEXT: usize = 120;
/// Cards of one `rich_media` message.
pub const MAX_CAROUSEL: usize = 6;
/// Rows of one carousel block (Viber: 1–7).
pub const MAX_ROWS: usize = 7;
const IMAGE_ROWS: usize = 3;
/// `min_api_version` of plain messages and of rich media.
pub const MIN_API_VERSION: u32 = 1;
pub const RICH_MEDIA_MIN_API_VERSION: u32 = 2;
/// Native payload types an agent may send as is.
const NATIVE_TYPES: [&str; 9] = [
    "text",
    "picture",
    "video",
    "file",
    "location",
    "contact",
    "sticker",
    "url",
    "rich_media",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot send envelope {id} to Viber: {what}")]
pub struct Refused {
    pub id: String,
    pub reason: ReasonCode,
    pub what: String,
}

/// Who the messages come from (the tenant's `senderName`/`senderAvatar`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender<'a> {
    pub name: &'a str,
    pub avatar: Option<&'a str>,
}

struct Builder<'a> {
    receiver: &'a str,
    sender: Sender<'a>,
    messages: Vec<Value>,
    tracking: Tracking,
}

impl Builder<'_> {
    fn push(&mut self, kind: &str, fields: Value) {
        let mut message = json!({
            "receiver": self.receiver,
            "min_api_version": MIN_API_VERSION,
            "sender": {"name": self.sender.name},
            "type": kind,
        });
        if let Some(avatar) = self.sender.avatar.filter(|a| !a.is_empty()) {
            message["sender"]["avatar"] = json!(avatar);
        }
        if let (Some(target), Value::Object(fields)) = (message.as_object_mut(), fields) {
            target.extend(fields);
        }
        self.messages.push(message);
    }

    fn text(&mut self, text: &str) {
        for part in split_text(text, MAX_TEXT) {
            self.push("text", json!({ "text": part }));
        }
    }
}

fn split_text(text: &str, limit: usize) -> Vec<String> {
    text::split_text(text, limit, TextUnit::Chars)
}

fn prefixed(agent_name: Option<&str>, options: &MessagingOptions, text: &str) -> String {
    match agent_name.filter(|name| options.prefix_agent_name && !name.is_empty()) {
        Some(name) => format!("{name}: {text}"),
        None => text.to_owned(),
    }
}

fn file_name(attachment: &Attachment) -> String {
    attachment.filename.clone().unwrap_or_else(|| {
        let path = attachment.url.split(['?', '#']).next().unwrap_or_default();
        path.rsplit('/')
            .next()
            .filter(|name| !name.is_empty())
            .unwrap_or("file")
            .to_owned()
    })
}

fn attachment(builder: &mut Builder<'_>, attachment: &Attachment) {
    let caption = attachment.caption.clone().filter(|c| !c.is_empty());
    match (attachment.media_type, attachment.size_bytes) {
        (MediaType::Image, _) => {
            let short = caption
                .as_deref()
                .filter(|c| c.chars().count() <= MAX_PICTURE_TEXT);
            let mut fields = json!({"media": attachment.url});
            if let Some(text) = short {
                fields["text"] = json!(text);
            }
            builder.push("picture", fields);
            if short.is_none()
                && let Some(caption) = caption
            {
                builder.text(&caption);
            }
            return;
        }
        // Viber needs the size of videos and files; without it the guest
        // gets the link.
        (MediaType::Video, Some(size)) => {
            builder.push("video", json!({"media": attachment.url, "size": size}));
        }
        (MediaType::File | MediaType::Audio, Some(size)) => builder.push(
            "file",
            json!({"media": attachment.url, "size": size, "file_name": file_name(attachment)}),
        ),
        _ => builder.push("url", json!({"media": attachment.url})),
    }
    if let Some(caption) = caption {
        builder.text(&caption);
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Rows a card needs with a one-row text block.
fn card_min_rows(card: &Card) -> usize {
    card.image_url.as_ref().map_or(0, |_| IMAGE_ROWS) + 1 + card.actions.len()
}

fn carousel(builder: &mut Builder<'_>, envelope_id: &str, cards: &[Card]) -> Result<(), Refused> {
    if let Some(card) = cards.iter().find(|c| card_min_rows(c) > MAX_ROWS) {
        return Err(Refused {
            id: envelope_id.to_owned(),
            reason: ReasonCode::InvalidMessageStructure,
            what: format!(
                "card {:?} has {} actions; a Viber carousel block has {MAX_ROWS} rows",
                card.title,
                card.actions.len()
            ),
        });
    }
    for chunk in cards.chunks(MAX_CAROUSEL) {
        // Every block of a carousel has the same height: the text block of
        // each card takes the rows its image and actions leave.
        let rows = chunk
            .iter()
            .map(|c| card_min_rows(c) + 1)
            .max()
            .unwrap_or(1)
            .min(MAX_ROWS);
        let mut buttons = Vec::new();
        for card in chunk {
            if let Some(image) = &card.image_url {
                buttons.push(
                    json!({"Columns": 6, "Rows": IMAGE_ROWS, "ActionType": "none", "Image": image}),
                );
            }
            let image_rows = card.image_url.as_ref().map_or(0, |_| IMAGE_ROWS);
            let mut text = format!("<b>{}</b>", escape(&card.title));
            if let Some(description) = card.description.as_deref().filter(|d| !d.is_empty()) {
                text.push_str("<br>");
                text.push_str(&escape(description));
            }
            buttons.push(json!({
                "Columns": 6,
                "Rows": rows - image_rows - card.actions.len(),
                "ActionType": "none",
                "Text": text,
                "TextHAlign": "left",
                "TextVAlign": "top",
            }));
            for action in &card.actions {
                buttons.push(match action {
                    CardAction::Link { text, url } => json!({
                        "Columns": 6, "Rows": 1, "ActionType": "open-url",
                        "ActionBody": url, "Text": escape(text),
                    }),
                    CardAction::Postback { text, payload } => {
                        builder.tracking.push(ButtonKind::Button, payload, text);
                        json!({
                            "Columns": 6, "Rows": 1, "ActionType": "reply",
                            "ActionBody": payload, "Text": escape(text),
                        })
                    }
                });
            }
        }
        let alt_text: Vec<&str> = chunk.iter().map(|c| c.title.as_str()).collect();
        builder.push(
            "rich_media",
            json!({
                "min_api_version": RICH_MEDIA_MIN_API_VERSION,
                "alt_text": alt_text.join("\n"),
                "rich_media": {
                    "Type": "rich_media",
                    "ButtonsGroupColumns": 6,
                    "ButtonsGroupRows": rows,
                    "BgColor": "#FFFFFF",
                    "Buttons": buttons,
                },
            }),
        );
    }
    Ok(())
}

/// The `keyboard` of quick replies: up to three buttons a row.
pub fn keyboard(quick_replies: &[QuickReply]) -> Value {
    let per_row = quick_replies.len().clamp(1, 3);
    let buttons: Vec<Value> = quick_replies
        .iter()
        .map(|reply| {
            let mut button = json!({
                "Columns": 6 / per_row,
                "Rows": 1,
                "ActionType": "reply",
                "ActionBody": reply.payload,
                "Text": escape(&reply.text),
            });
            if let Some(image) = &reply.image_url {
                button["Image"] = json!(image);
            }
            button
        })
        .collect();
    json!({"Type": "keyboard", "DefaultHeight": false, "Buttons": buttons})
}

fn native_message(
    envelope_id: &str,
    builder: &mut Builder<'_>,
    native: &Value,
) -> Result<(), Refused> {
    let refuse = |what: String| Refused {
        id: envelope_id.to_owned(),
        reason: ReasonCode::InvalidMessageStructure,
        what,
    };
    let Some(object) = native.as_object() else {
        return Err(refuse("native Viber payload is not an object".to_owned()));
    };
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("native Viber payload has no \"type\"".to_owned()))?;
    if !NATIVE_TYPES.contains(&kind) {
        return Err(refuse(format!("native Viber type {kind:?} is not allowed")));
    }
    // The receiver is always the conversation's; the sender the tenant's
    // unless the payload names one.
    let mut fields: Map<String, Value> = object.clone();
    fields.remove("receiver");
    let kind = kind.to_owned();
    builder.push(&kind, Value::Object(fields));
    Ok(())
}

fn content_messages(
    envelope: &Envelope,
    content: &Content,
    builder: &mut Builder<'_>,
    options: &MessagingOptions,
) -> Result<(), Refused> {
    let refuse = |reason, what: &str| Refused {
        id: envelope.id.clone(),
        reason,
        what: what.to_owned(),
    };
    if let Some(native) = &content.native {
        return native_message(&envelope.id, builder, native);
    }
    if let Some(text) = content.text.as_deref().filter(|t| !t.is_empty()) {
        builder.text(&prefixed(content.agent_name.as_deref(), options, text));
    }
    for item in &content.attachments {
        attachment(builder, item);
    }
    if let Some(location) = &content.location {
        builder.push(
            "location",
            json!({"location": {"lat": location.latitude, "lon": location.longitude}}),
        );
    }
    if let Some(sticker) = &content.sticker {
        match (sticker.id.parse::<i64>(), &sticker.image_url) {
            (Ok(id), _) => builder.push("sticker", json!({ "sticker_id": id })),
            (Err(_), Some(image)) => builder.push("picture", json!({ "media": image })),
            (Err(_), None) => {
                return Err(refuse(
                    ReasonCode::UnsupportedMessage,
                    "sticker is not a Viber sticker id and has no image",
                ));
            }
        }
    }
    if let Some(contact) = &content.contact {
        match (&contact.name, &contact.phone) {
            (Some(name), Some(phone)) => builder.push(
                "contact",
                json!({"contact": {"name": name, "phone_number": phone}}),
            ),
            _ => {
                return Err(refuse(
                    ReasonCode::InvalidMessageStructure,
                    "a Viber contact needs a name and a phone number",
                ));
            }
        }
    }
    if !content.cards.is_empty() {
        carousel(builder, &envelope.id, &content.cards)?;
    }
    if !content.quick_replies.is_empty() {
        for reply in &content.quick_replies {
            builder
                .tracking
                .push(ButtonKind::QuickReply, &reply.payload, &reply.text);
        }
        let Some(last) = builder.messages.last_mut() else {
            return Err(refuse(
                ReasonCode::InvalidMessageStructure,
                "quick replies without a message to attach them to",
            ));
        };
        last["keyboard"] = keyboard(&content.quick_replies);
    }
    if let (Some(data), Some(last)) = (builder.tracking.encode(), builder.messages.last_mut()) {
        last["tracking_data"] = json!(data);
    }
    if builder.messages.is_empty() {
        return Err(refuse(
            ReasonCode::InvalidMessageStructure,
            "the message has no content Viber can show",
        ));
    }
    Ok(())
}

/// The `send_message` bodies of an agent envelope, in order. Typing and
/// receipts have no Viber form and yield none.
pub fn to_viber(
    envelope: &Envelope,
    sender: Sender<'_>,
    options: &MessagingOptions,
) -> Result<Vec<Value>, Refused> {
    let Body::Message(content) = &envelope.body else {
        return Ok(Vec::new());
    };
    let mut builder = Builder {
        receiver: &envelope.conversation.id,
        sender,
        messages: Vec::new(),
        tracking: Tracking::default(),
    };
    content_messages(envelope, content, &mut builder, options)?;
    Ok(builder.messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machinery::envelope::{Location, Sticker};
    use um_config::Platform;

    const SENDER: Sender<'static> = Sender {
        name: "ACME Support",
        avatar: Some("https://acme.example/a.png"),
    };

    fn envelope(content: Content) -> Envelope {
        crate::machinery::envelope::fixtures::agent_message(
            Platform::Viber,
            "env-1",
            "01234567890A=",
            content,
        )
    }

    fn send(content: Content) -> Vec<Value> {
        to_viber(&envelope(content), SENDER, &MessagingOptions::default()).unwrap()
    }

    #[test]
    fn text_with_sender_and_min_api_version() {
        let messages = send(Content {
            text: Some("Hello".into()),
            ..Content::default()
        });
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(m["receiver"], "01234567890A=");
        assert_eq!(m["type"], "text");
        assert_eq!(m["text"], "Hello");
        assert_eq!(m["min_api_version"], 1);
        assert_eq!(m["sender"]["name"], "ACME Support");
        assert_eq!(m["sender"]["avatar"], "https://acme.example/a.png");
        assert!(m.get("keyboard").is_none() && m.get("tracking_data").is_none());
    }

    #[test]
    fn agent_name_prefix_follows_the_tenant_option() {
        let content = Content {
            text: Some("Hi".into()),
            agent_name: Some("Ann".into()),
            ..Content::default()
        };
        let options = MessagingOptions {
            prefix_agent_name: true,
            ..MessagingOptions::default()
        };
        let messages = to_viber(&envelope(content.clone()), SENDER, &options).unwrap();
        assert_eq!(messages[0]["text"], "Ann: Hi");
        assert_eq!(send(content)[0]["text"], "Hi");
    }

    #[test]
    fn long_text_is_split_not_truncated() {
        let word = "abcdefghi ";
        let text = word.repeat(1500); // 15,000 characters
        let messages = send(Content {
            text: Some(text.clone()),
            ..Content::default()
        });
        assert_eq!(messages.len(), 3);
        let mut joined = String::new();
        for m in &messages {
            let part = m["text"].as_str().unwrap();
            assert!(part.chars().count() <= MAX_TEXT);
            joined.push_str(part);
            joined.push(' ');
        }
        assert_eq!(joined.split_whitespace().count(), 1500);
        assert_eq!(
            split_text(&"é".repeat(7001), MAX_TEXT).len(),
            2,
            "counts characters"
        );
    }

    #[test]
    fn attachments() {
        let image = Attachment {
            media_type: MediaType::Image,
            url: "https://cdn.example/map.png".into(),
            mime: "image/png".into(),
            filename: None,
            size_bytes: None,
            caption: Some("the map".into()),
            sha256: None,
        };
        let video = Attachment {
            media_type: MediaType::Video,
            url: "https://cdn.example/v.mp4".into(),
            mime: "video/mp4".into(),
            size_bytes: Some(1000),
            caption: None,
            ..image.clone()
        };
        let file = Attachment {
            media_type: MediaType::File,
            url: "https://cdn.example/docs/r.pdf?sig=1".into(),
            mime: "application/pdf".into(),
            size_bytes: Some(5),
            caption: None,
            ..image.clone()
        };
        let unsized_file = Attachment {
            size_bytes: None,
            ..file.clone()
        };
        let messages = send(Content {
            attachments: vec![image, video, file, unsized_file],
            ..Content::default()
        });
        assert_eq!(messages[0]["type"], "picture");
        assert_eq!(messages[0]["media"], "https://cdn.example/map.png");
        assert_eq!(messages[0]["text"], "the map");
        assert_eq!(messages[1]["type"], "video");
        assert_eq!(messages[1]["size"], 1000);
        assert_eq!(messages[2]["type"], "file");
        assert_eq!(messages[2]["file_name"], "r.pdf");
        assert_eq!(messages[3]["type"], "url");
    }

    #[test]
    fn quick_replies_are_a_keyboard_on_the_last_message() {
        let messages = send(Content {
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
        });
        assert_eq!(messages.len(), 1);
        let keyboard = &messages[0]["keyboard"];
        assert_eq!(keyboard["Type"], "keyboard");
        assert_eq!(keyboard["Buttons"][0]["ActionType"], "reply");
        assert_eq!(keyboard["Buttons"][0]["ActionBody"], "help-yes");
        assert_eq!(keyboard["Buttons"][0]["Text"], "Yes");
        assert_eq!(keyboard["Buttons"][1]["Columns"], 3);
        let tracking = Tracking::decode(messages[0]["tracking_data"].as_str().unwrap()).unwrap();
        assert_eq!(tracking.find("help-no").unwrap().1.t, "No");
        let alone = to_viber(
            &envelope(Content {
                quick_replies: vec![QuickReply {
                    text: "a".into(),
                    payload: "b".into(),
                    image_url: None,
                }],
                ..Content::default()
            }),
            SENDER,
            &MessagingOptions::default(),
        );
        assert_eq!(
            alone.unwrap_err().reason,
            ReasonCode::InvalidMessageStructure
        );
    }

    fn card(title: &str, actions: usize) -> Card {
        Card {
            title: title.into(),
            description: Some("desc <b>".into()),
            image_url: Some("https://cdn.example/c.png".into()),
            actions: (0..actions)
                .map(|i| {
                    if i == 0 {
                        CardAction::Link {
                            text: "Open".into(),
                            url: "https://acme.example".into(),
                        }
                    } else {
                        CardAction::Postback {
                            text: format!("Buy {i}"),
                            payload: format!("buy-{title}-{i}"),
                        }
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn cards_are_a_rich_media_carousel_with_equal_blocks() {
        let messages = send(Content {
            cards: vec![card("A", 2), card("B", 1)],
            ..Content::default()
        });
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(m["type"], "rich_media");
        assert_eq!(m["min_api_version"], 2);
        let rich = &m["rich_media"];
        assert_eq!(rich["Type"], "rich_media");
        let rows = rich["ButtonsGroupRows"].as_u64().unwrap();
        assert!(rows <= 7);
        let buttons = rich["Buttons"].as_array().unwrap();
        let total: u64 = buttons
            .iter()
            .map(|b| b["Rows"].as_u64().unwrap() * b["Columns"].as_u64().unwrap())
            .sum();
        assert_eq!(total, 2 * rows * 6, "each card fills exactly one block");
        assert!(buttons.iter().any(|b| b["ActionType"] == "open-url"));
        assert!(buttons.iter().any(|b| b["ActionBody"] == "buy-A-1"));
        assert!(buttons.iter().any(|b| {
            b["Text"]
                .as_str()
                .is_some_and(|t| t.contains("desc &lt;b&gt;"))
        }));
        let tracking = Tracking::decode(m["tracking_data"].as_str().unwrap()).unwrap();
        assert_eq!(tracking.find("buy-A-1").unwrap().0, ButtonKind::Button);
    }

    #[test]
    fn large_carousels_split_and_overfull_cards_are_refused() {
        let cards: Vec<Card> = (0..8).map(|i| card(&i.to_string(), 1)).collect();
        let messages = send(Content {
            cards,
            ..Content::default()
        });
        assert_eq!(messages.len(), 2);
        let refused = to_viber(
            &envelope(Content {
                cards: vec![card("X", 4)],
                ..Content::default()
            }),
            SENDER,
            &MessagingOptions::default(),
        )
        .unwrap_err();
        assert_eq!(refused.reason, ReasonCode::InvalidMessageStructure);
    }

    #[test]
    fn sticker_location_and_native() {
        let messages = send(Content {
            sticker: Some(Sticker {
                id: "46105".into(),
                emoji: None,
                image_url: None,
            }),
            location: Some(Location {
                latitude: 1.5,
                longitude: 2.5,
                title: None,
                address: None,
            }),
            ..Content::default()
        });
        assert_eq!(messages[0]["type"], "location");
        assert_eq!(messages[0]["location"]["lon"], 2.5);
        assert_eq!(messages[1]["type"], "sticker");
        assert_eq!(messages[1]["sticker_id"], 46105);
        let native = send(Content {
            native: Some(json!({"type": "text", "text": "raw", "receiver": "someone-else"})),
            ..Content::default()
        });
        assert_eq!(native[0]["receiver"], "01234567890A=");
        assert_eq!(native[0]["text"], "raw");
        let bad = to_viber(
            &envelope(Content {
                native: Some(json!({"type": "broadcast"})),
                ..Content::default()
            }),
            SENDER,
            &MessagingOptions::default(),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn typing_and_receipts_send_nothing() {
        let mut typing = envelope(Content::default());
        typing.body = Body::Typing { duration_ms: None };
        assert!(
            to_viber(&typing, SENDER, &MessagingOptions::default())
                .unwrap()
                .is_empty()
        );
    }
}
