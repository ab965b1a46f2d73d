//! Envelope → LINE message objects (pure).
//!
//! One agent message can become several LINE messages (long text, a
//! caption, cards); they are grouped into sends of at most five, LINE's
//! limit for reply and push. Long text is split at line or word boundaries;
//! what LINE cannot carry is refused with a reason the Failed receipt
//! reports. Two things are shortened on purpose, never content: a button
//! label over 20 characters gets an ellipsis (the full text is what the tap
//! shows in the chat), and a Flex `altText` (the notification preview) over
//! 400 characters.

use serde_json::{Map, Value, json};
use um_config::MessagingOptions;

use super::postback;
use crate::machinery::envelope::{
    Attachment, Body, ButtonKind, Card, CardAction, Content, Direction, Envelope, MediaType,
    QuickReply, ReasonCode,
};
use crate::machinery::text::{self, TextUnit};

/// Text message limit.
pub const MAX_TEXT: usize = 5000;
/// Messages per reply or push request.
pub const MAX_MESSAGES_PER_SEND: usize = 5;
/// Quick reply buttons per message.
pub const MAX_QUICK_REPLIES: usize = 13;
/// Action label limit (quick replies, buttons).
pub const MAX_LABEL: usize = 20;
/// Bubbles per Flex carousel.
pub const MAX_BUBBLES: usize = 12;
/// `altText` of Flex and template messages.
pub const MAX_ALT_TEXT: usize = 400;
/// Title and address of a location message.
pub const MAX_LOCATION_FIELD: usize = 100;

/// What delivering one envelope takes.
#[derive(Debug, Clone, PartialEq)]
pub enum LineDelivery {
    /// Message objects in order, grouped into sends of at most five.
    Messages(Vec<Vec<Value>>),
    /// Hand the guest to the Switcher destination (native `{"switcher":
    /// {"note"?}}`, the proposed end-of-chat contract, see `switcher`).
    Switch { note: Option<String> },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("envelope {id}: {what}")]
pub struct Refused {
    pub id: String,
    pub reason: ReasonCode,
    pub what: String,
}

fn split_text(text: &str, limit: usize) -> Vec<String> {
    text::split_text(text, limit, TextUnit::Utf16)
}

/// At most `limit` characters, the last one an ellipsis when cut.
pub fn abbreviate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(limit.saturating_sub(1)).collect();
    short.push('\u{2026}');
    short
}

fn text_messages(text: &str) -> Vec<Value> {
    split_text(text, MAX_TEXT)
        .into_iter()
        .map(|piece| json!({"type": "text", "text": piece}))
        .collect()
}

/// A postback action carrying payload and text; a message action (the tap
/// comes back as plain text) when the data would not fit.
fn button_action(kind: ButtonKind, text: &str, payload: &str) -> Value {
    let label = abbreviate(text, MAX_LABEL);
    match postback::encode(kind, text, payload) {
        Some(data) => {
            json!({"type": "postback", "label": label, "data": data, "displayText": text})
        }
        None => json!({"type": "message", "label": label, "text": text}),
    }
}

pub fn quick_reply(replies: &[QuickReply]) -> Value {
    let items: Vec<Value> = replies
        .iter()
        .map(|reply| {
            let mut item = json!({
                "type": "action",
                "action": button_action(ButtonKind::QuickReply, &reply.text, &reply.payload),
            });
            if let Some(image) = &reply.image_url {
                item["imageUrl"] = json!(image);
            }
            item
        })
        .collect();
    json!({ "items": items })
}

fn card_action(action: &CardAction) -> Value {
    match action {
        CardAction::Link { text, url } => {
            json!({"type": "uri", "label": abbreviate(text, MAX_LABEL), "uri": url})
        }
        CardAction::Postback { text, payload } => button_action(ButtonKind::Button, text, payload),
    }
}

/// One card as a Flex bubble: hero image, title and description, buttons.
pub fn bubble(card: &Card) -> Value {
    let mut body = vec![json!({"type": "text", "text": card.title, "weight": "bold",
                               "size": "lg", "wrap": true})];
    if let Some(description) = card.description.as_ref().filter(|d| !d.is_empty()) {
        body.push(json!({"type": "text", "text": description, "size": "sm",
                         "color": "#666666", "wrap": true}));
    }
    let mut bubble = json!({
        "type": "bubble",
        "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": body},
    });
    if let Some(image) = &card.image_url {
        bubble["hero"] = json!({"type": "image", "url": image, "size": "full",
                                "aspectRatio": "20:13", "aspectMode": "cover"});
    }
    if !card.actions.is_empty() {
        let buttons: Vec<Value> = card
            .actions
            .iter()
            .map(|action| {
                json!({"type": "button", "style": "link", "height": "sm",
                                 "action": card_action(action)})
            })
            .collect();
        bubble["footer"] =
            json!({"type": "box", "layout": "vertical", "spacing": "sm", "contents": buttons});
    }
    bubble
}

/// Cards as Flex messages: one bubble, or carousels of at most 12.
pub fn flex_messages(cards: &[Card]) -> Vec<Value> {
    if let [card] = cards {
        return vec![
            json!({"type": "flex", "altText": abbreviate(&card.title, MAX_ALT_TEXT),
                           "contents": bubble(card)}),
        ];
    }
    cards
        .chunks(MAX_BUBBLES)
        .map(|chunk| {
            let titles: Vec<&str> = chunk.iter().map(|card| card.title.as_str()).collect();
            json!({
                "type": "flex",
                "altText": abbreviate(&titles.join(" / "), MAX_ALT_TEXT),
                "contents": {"type": "carousel",
                             "contents": chunk.iter().map(bubble).collect::<Vec<_>>()},
            })
        })
        .collect()
}

fn attachment_messages(attachment: &Attachment) -> Vec<Value> {
    let mut messages = Vec::new();
    match attachment.media_type {
        MediaType::Image => messages.push(json!({
            "type": "image",
            "originalContentUrl": attachment.url,
            "previewImageUrl": attachment.url,
        })),
        // LINE bots cannot send files; video needs a preview image and audio
        // its duration, which Genesys does not give: all go as a link.
        MediaType::Video | MediaType::Audio | MediaType::File | MediaType::Link => {
            let name = attachment.filename.as_deref().unwrap_or("");
            let line = if name.is_empty() {
                attachment.url.clone()
            } else {
                format!("{name}\n{}", attachment.url)
            };
            messages.extend(text_messages(&line));
        }
    }
    if let Some(caption) = attachment.caption.as_ref().filter(|c| !c.is_empty()) {
        messages.extend(text_messages(caption));
    }
    messages
}

fn prefixed(agent_name: Option<&str>, options: &MessagingOptions, text: &str) -> String {
    match agent_name.filter(|name| options.prefix_agent_name && !name.is_empty()) {
        Some(name) => format!("{name}: {text}"),
        None => text.to_owned(),
    }
}

fn refuse(envelope: &Envelope, reason: ReasonCode, what: impl Into<String>) -> Refused {
    Refused {
        id: envelope.id.clone(),
        reason,
        what: what.into(),
    }
}

/// Native payloads: one LINE message object (`{"type": ...}`), an array of
/// them, or `{"messages": [...]}`; Flex and template messages get the
/// `altText` LINE requires when the agent left it out.
fn native_messages(envelope: &Envelope, native: &Value) -> Result<LineDelivery, Refused> {
    if let Some(switcher) = native.get("switcher") {
        let note = switcher
            .get("note")
            .and_then(Value::as_str)
            .map(str::to_owned);
        return Ok(LineDelivery::Switch { note });
    }
    let list: Vec<Value> = match native {
        Value::Array(items) => items.clone(),
        Value::Object(object) if object.contains_key("messages") => {
            object["messages"].as_array().cloned().ok_or_else(|| {
                refuse(
                    envelope,
                    ReasonCode::InvalidMessageStructure,
                    "native LINE \"messages\" is not an array",
                )
            })?
        }
        Value::Object(_) => vec![native.clone()],
        _ => {
            return Err(refuse(
                envelope,
                ReasonCode::InvalidMessageStructure,
                "native LINE payload is neither a message object nor a list",
            ));
        }
    };
    if list.is_empty() {
        return Err(refuse(
            envelope,
            ReasonCode::InvalidMessageStructure,
            "native LINE payload has no message",
        ));
    }
    let mut messages = Vec::with_capacity(list.len());
    for mut message in list {
        let Some(object) = message.as_object_mut() else {
            return Err(refuse(
                envelope,
                ReasonCode::InvalidMessageStructure,
                "a native LINE message is not an object",
            ));
        };
        let kind = object
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                refuse(
                    envelope,
                    ReasonCode::InvalidMessageStructure,
                    "a native LINE message has no \"type\"",
                )
            })?;
        if matches!(kind.as_str(), "flex" | "template") {
            add_alt_text(object, envelope);
        }
        messages.push(message);
    }
    Ok(LineDelivery::Messages(batches(messages)))
}

fn add_alt_text(object: &mut Map<String, Value>, envelope: &Envelope) {
    let present = object
        .get("altText")
        .and_then(Value::as_str)
        .is_some_and(|text| !text.is_empty());
    if !present {
        let text = match &envelope.body {
            Body::Message(content) => content.text.clone(),
            _ => None,
        };
        let alt = text
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "\u{1F4AC}".to_owned());
        object.insert("altText".to_owned(), json!(abbreviate(&alt, MAX_ALT_TEXT)));
    }
}

fn batches(messages: Vec<Value>) -> Vec<Vec<Value>> {
    messages
        .chunks(MAX_MESSAGES_PER_SEND)
        .map(<[Value]>::to_vec)
        .collect()
}

fn content_messages(
    envelope: &Envelope,
    content: &Content,
    options: &MessagingOptions,
) -> Result<LineDelivery, Refused> {
    if let Some(native) = &content.native {
        return native_messages(envelope, native);
    }
    if content.quick_replies.len() > MAX_QUICK_REPLIES {
        return Err(refuse(
            envelope,
            ReasonCode::InvalidMessageStructure,
            format!(
                "{} quick replies; LINE shows at most {MAX_QUICK_REPLIES}",
                content.quick_replies.len()
            ),
        ));
    }
    let agent = content.agent_name.as_deref();
    let mut messages = Vec::new();
    if let Some(text) = content.text.as_ref().filter(|t| !t.is_empty()) {
        messages.extend(text_messages(&prefixed(agent, options, text)));
    }
    for attachment in &content.attachments {
        messages.extend(attachment_messages(attachment));
    }
    if let Some(location) = &content.location {
        let coordinates = format!("{}, {}", location.latitude, location.longitude);
        messages.push(json!({
            "type": "location",
            "title": abbreviate(location.title.as_deref().unwrap_or("Location"), MAX_LOCATION_FIELD),
            "address": abbreviate(location.address.as_deref().unwrap_or(&coordinates), MAX_LOCATION_FIELD),
            "latitude": location.latitude,
            "longitude": location.longitude,
        }));
    }
    if let Some(sticker) = &content.sticker {
        match sticker.id.split_once('/') {
            Some((package, id)) if !package.is_empty() && !id.is_empty() => {
                messages.push(json!({"type": "sticker", "packageId": package, "stickerId": id}))
            }
            _ => {
                return Err(refuse(
                    envelope,
                    ReasonCode::UnsupportedMessage,
                    format!(
                        "sticker {:?} is not a LINE \"packageId/stickerId\"",
                        sticker.id
                    ),
                ));
            }
        }
    }
    if let Some(contact) = &content.contact {
        let line = [contact.name.clone(), contact.phone.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n");
        if !line.is_empty() {
            messages.extend(text_messages(&line));
        }
    }
    messages.extend(flex_messages(&content.cards));
    if !content.quick_replies.is_empty() {
        // LINE shows quick replies only under the latest message.
        if messages.is_empty() {
            messages.push(json!({"type": "text", "text": "\u{2193}"}));
        }
        if let Some(last) = messages.last_mut() {
            last["quickReply"] = quick_reply(&content.quick_replies);
        }
    }
    if messages.is_empty() {
        return Err(refuse(
            envelope,
            ReasonCode::UnsupportedMessage,
            "the message has nothing LINE can show",
        ));
    }
    Ok(LineDelivery::Messages(batches(messages)))
}

/// What delivering `envelope` takes.
pub fn to_line(envelope: &Envelope, options: &MessagingOptions) -> Result<LineDelivery, Refused> {
    if envelope.direction != Direction::AgentToGuest {
        return Err(refuse(
            envelope,
            ReasonCode::UnsupportedMessage,
            "only agent-to-guest envelopes are sent to LINE",
        ));
    }
    match &envelope.body {
        Body::Message(content) => content_messages(envelope, content, options),
        // LINE has a loading animation API, but it is not worth a call per
        // Genesys typing event: nothing to send.
        Body::Typing { .. } => Ok(LineDelivery::Messages(Vec::new())),
        other => Err(refuse(
            envelope,
            ReasonCode::UnsupportedMessage,
            format!("cannot send {other:?} to LINE"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machinery::envelope::{Location, Sticker};
    use um_config::Platform;

    fn envelope(content: Content) -> Envelope {
        crate::machinery::envelope::fixtures::agent_message(
            Platform::Line,
            "shop.acme:gc:m1",
            "U1234",
            content,
        )
    }

    fn messages(content: Content) -> Vec<Vec<Value>> {
        match to_line(&envelope(content), &MessagingOptions::default()).unwrap() {
            LineDelivery::Messages(batches) => batches,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_with_agent_prefix() {
        let options = MessagingOptions {
            prefix_agent_name: true,
            ..MessagingOptions::default()
        };
        let delivery = to_line(
            &envelope(Content {
                text: Some("Hello".into()),
                agent_name: Some("Alice".into()),
                ..Content::default()
            }),
            &options,
        )
        .unwrap();
        assert_eq!(
            delivery,
            LineDelivery::Messages(vec![vec![json!({"type": "text", "text": "Alice: Hello"})]])
        );
    }

    #[test]
    fn long_text_is_split_not_truncated_and_batched_by_five() {
        let word = "abcd ";
        let text = word.repeat(6 * MAX_TEXT / word.len());
        let batches = messages(Content {
            text: Some(text.clone()),
            ..Content::default()
        });
        let all: Vec<&Value> = batches.iter().flatten().collect();
        assert_eq!(all.len(), 6);
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].len(), MAX_MESSAGES_PER_SEND);
        assert!(
            all.iter()
                .all(|m| TextUnit::Utf16.len(m["text"].as_str().unwrap()) <= MAX_TEXT)
        );
        let joined: String = all.iter().map(|m| m["text"].as_str().unwrap()).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn quick_replies_ride_on_the_last_message_as_postbacks() {
        let batches = messages(Content {
            text: Some("Did that help?".into()),
            quick_replies: vec![
                QuickReply {
                    text: "Yes".into(),
                    payload: "help-yes".into(),
                    image_url: None,
                },
                QuickReply {
                    text: "I would like to talk to a person".into(),
                    payload: "agent".into(),
                    image_url: Some("https://cdn.example/i.png".into()),
                },
            ],
            ..Content::default()
        });
        let message = &batches[0][0];
        assert_eq!(message["text"], "Did that help?");
        let items = message["quickReply"]["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["type"], "action");
        assert_eq!(items[0]["action"]["type"], "postback");
        assert_eq!(items[0]["action"]["label"], "Yes");
        assert_eq!(items[0]["action"]["displayText"], "Yes");
        assert_eq!(
            postback::decode(items[0]["action"]["data"].as_str().unwrap()),
            (ButtonKind::QuickReply, "Yes".into(), "help-yes".into())
        );
        let label = items[1]["action"]["label"].as_str().unwrap();
        assert_eq!(label.chars().count(), MAX_LABEL);
        assert!(label.ends_with('\u{2026}'));
        assert_eq!(
            items[1]["action"]["displayText"],
            "I would like to talk to a person"
        );
        assert_eq!(items[1]["imageUrl"], "https://cdn.example/i.png");
    }

    #[test]
    fn too_many_quick_replies_are_refused() {
        let replies = (0..14)
            .map(|i| QuickReply {
                text: format!("{i}"),
                payload: format!("{i}"),
                image_url: None,
            })
            .collect();
        let refused = to_line(
            &envelope(Content {
                text: Some("pick".into()),
                quick_replies: replies,
                ..Content::default()
            }),
            &MessagingOptions::default(),
        )
        .unwrap_err();
        assert_eq!(refused.reason, ReasonCode::InvalidMessageStructure);
    }

    #[test]
    fn image_attachment_and_file_link() {
        let batches = messages(Content {
            attachments: vec![
                Attachment {
                    media_type: MediaType::Image,
                    url: "https://dl.example/a.png".into(),
                    mime: "image/png".into(),
                    filename: None,
                    size_bytes: None,
                    caption: Some("the map".into()),
                    sha256: None,
                },
                Attachment {
                    media_type: MediaType::File,
                    url: "https://dl.example/b.pdf".into(),
                    mime: "application/pdf".into(),
                    filename: Some("b.pdf".into()),
                    size_bytes: None,
                    caption: None,
                    sha256: None,
                },
            ],
            ..Content::default()
        });
        let all: Vec<&Value> = batches.iter().flatten().collect();
        assert_eq!(
            *all[0],
            json!({"type": "image", "originalContentUrl": "https://dl.example/a.png",
                   "previewImageUrl": "https://dl.example/a.png"})
        );
        assert_eq!(all[1]["text"], "the map");
        assert_eq!(all[2]["text"], "b.pdf\nhttps://dl.example/b.pdf");
    }

    #[test]
    fn cards_become_flex_bubble_and_carousel() {
        let card = |n: usize| Card {
            title: format!("Item {n}"),
            description: Some("desc".into()),
            image_url: Some("https://cdn.example/p.jpg".into()),
            actions: vec![
                CardAction::Link {
                    text: "Open".into(),
                    url: "https://shop.example".into(),
                },
                CardAction::Postback {
                    text: "Buy".into(),
                    payload: format!("buy-{n}"),
                },
            ],
        };
        let one = messages(Content {
            cards: vec![card(1)],
            ..Content::default()
        });
        let flex = &one[0][0];
        assert_eq!(flex["type"], "flex");
        assert_eq!(flex["altText"], "Item 1");
        assert_eq!(flex["contents"]["type"], "bubble");
        assert_eq!(flex["contents"]["hero"]["url"], "https://cdn.example/p.jpg");
        assert_eq!(flex["contents"]["body"]["contents"][0]["text"], "Item 1");
        let buttons = &flex["contents"]["footer"]["contents"];
        assert_eq!(buttons[0]["action"]["type"], "uri");
        assert_eq!(buttons[0]["action"]["uri"], "https://shop.example");
        assert_eq!(
            postback::decode(buttons[1]["action"]["data"].as_str().unwrap()),
            (ButtonKind::Button, "Buy".into(), "buy-1".into())
        );

        let many = messages(Content {
            cards: (0..13).map(card).collect(),
            ..Content::default()
        });
        let all: Vec<&Value> = many.iter().flatten().collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0]["contents"]["type"], "carousel");
        assert_eq!(all[0]["contents"]["contents"].as_array().unwrap().len(), 12);
        assert_eq!(all[1]["contents"]["contents"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn native_flex_and_template_pass_through_with_alt_text() {
        let flex = json!({"type": "flex", "contents": {"type": "bubble", "body": {"type": "box",
            "layout": "vertical", "contents": [{"type": "text", "text": "hi"}]}}});
        let batches = messages(Content {
            text: Some("Your order".into()),
            native: Some(flex.clone()),
            ..Content::default()
        });
        assert_eq!(batches[0][0]["contents"], flex["contents"]);
        assert_eq!(batches[0][0]["altText"], "Your order");

        let template = json!({"messages": [
            {"type": "template", "altText": "Confirm?", "template": {"type": "confirm", "text": "Sure?",
             "actions": [{"type": "message", "label": "Yes", "text": "yes"},
                         {"type": "message", "label": "No", "text": "no"}]}},
            {"type": "sticker", "packageId": "446", "stickerId": "1988"}]});
        let batches = messages(Content {
            native: Some(template.clone()),
            ..Content::default()
        });
        assert_eq!(batches[0][0], template["messages"][0]);
        assert_eq!(batches[0][1]["type"], "sticker");

        let refused = to_line(
            &envelope(Content {
                native: Some(json!({"contents": {}})),
                ..Content::default()
            }),
            &MessagingOptions::default(),
        )
        .unwrap_err();
        assert_eq!(refused.reason, ReasonCode::InvalidMessageStructure);
    }

    #[test]
    fn native_switcher_asks_for_a_switch() {
        let delivery = to_line(
            &envelope(Content {
                native: Some(json!({"switcher": {"note": "chat closed"}})),
                ..Content::default()
            }),
            &MessagingOptions::default(),
        )
        .unwrap();
        assert_eq!(
            delivery,
            LineDelivery::Switch {
                note: Some("chat closed".into())
            }
        );
    }

    #[test]
    fn location_and_sticker() {
        let batches = messages(Content {
            location: Some(Location {
                latitude: 35.0,
                longitude: 139.0,
                title: None,
                address: None,
            }),
            sticker: Some(Sticker {
                id: "446/1988".into(),
                emoji: None,
                image_url: None,
            }),
            ..Content::default()
        });
        assert_eq!(batches[0][0]["type"], "location");
        assert_eq!(batches[0][0]["title"], "Location");
        assert_eq!(batches[0][0]["address"], "35, 139");
        assert_eq!(
            batches[0][1],
            json!({"type": "sticker", "packageId": "446", "stickerId": "1988"})
        );
    }

    #[test]
    fn empty_and_inbound_are_refused_typing_sends_nothing() {
        let refused = to_line(&envelope(Content::default()), &MessagingOptions::default());
        assert_eq!(refused.unwrap_err().reason, ReasonCode::UnsupportedMessage);
        let mut typing = envelope(Content::default());
        typing.body = Body::Typing { duration_ms: None };
        assert_eq!(
            to_line(&typing, &MessagingOptions::default()).unwrap(),
            LineDelivery::Messages(vec![])
        );
        let mut inbound = envelope(Content {
            text: Some("x".into()),
            ..Content::default()
        });
        inbound.direction = Direction::GuestToAgent;
        assert!(to_line(&inbound, &MessagingOptions::default()).is_err());
    }
}
