//! Agent envelopes → Bot Framework activities (pure).
//!
//! Text is sent as plain text (an agent's `*` or `<` is not markup).
//! Cards become Adaptive Cards 1.4 (TextBlock, Image, `Action.OpenUrl`,
//! `Action.Submit` whose data the connector recognises when it comes back);
//! several cards a carousel. Quick replies are suggested actions (`imBack`)
//! in personal chats, where Teams shows them, and an Adaptive Card with
//! `Action.Submit` buttons in group chats and channels, where it does not.
//! Images go as attachments by URL; other files as a card with a download
//! link (Teams only takes bot file uploads through a consent flow).

use serde_json::{Value, json};
use um_config::MessagingOptions;

use super::inbound::{SUBMIT_BUTTON, SUBMIT_QUICK_REPLY, SUBMIT_TEXT};
use super::types::{ConversationRef, Scope};
use crate::machinery::envelope::{
    Attachment, Body, Card, CardAction, Content, Envelope, MediaType, QuickReply, ReasonCode,
};

pub const ADAPTIVE_CARD: &str = "application/vnd.microsoft.card.adaptive";
pub const ADAPTIVE_CARD_VERSION: &str = "1.4";
pub const ADAPTIVE_CARD_SCHEMA: &str = "http://adaptivecards.io/schemas/adaptive-card.json";
/// Teams refuses messages above about 28 KB; text beyond this many
/// characters is refused rather than cut.
pub const TEXT_LIMIT: usize = 28_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("text of {0} characters exceeds the Teams limit of {TEXT_LIMIT}")]
    TooLong(usize),
    #[error("nothing Teams can show: {0}")]
    Unsupported(String),
    #[error("native payload is not a JSON object")]
    BadNative,
}

impl OutboundError {
    pub fn reason(&self) -> ReasonCode {
        match self {
            OutboundError::TooLong(_) | OutboundError::BadNative => {
                ReasonCode::InvalidMessageStructure
            }
            OutboundError::Unsupported(_) => ReasonCode::UnsupportedMessage,
        }
    }
}

/// What to send, and the quick replies offered as suggested actions
/// (their tap comes back as plain text to match).
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    pub activity: Value,
    pub offered: Vec<QuickReply>,
}

fn base(conversation: &ConversationRef, kind: &str) -> Value {
    let mut activity = json!({
        "type": kind,
        "from": conversation.bot,
        "conversation": {"id": conversation.conversation_id},
    });
    if conversation.scope == Scope::Personal && !conversation.user.id.is_empty() {
        activity["recipient"] = json!(conversation.user);
    }
    activity
}

/// An Adaptive Card attachment.
pub fn adaptive_card(body: Vec<Value>, actions: Vec<Value>) -> Value {
    let mut content = json!({
        "type": "AdaptiveCard",
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    });
    if !actions.is_empty() {
        content["actions"] = Value::Array(actions);
    }
    json!({"contentType": ADAPTIVE_CARD, "content": content})
}

fn text_block(text: &str, heading: bool) -> Value {
    let mut block = json!({"type": "TextBlock", "text": text, "wrap": true});
    if heading {
        block["weight"] = json!("Bolder");
        block["size"] = json!("Medium");
    }
    block
}

fn submit(title: &str, key: &str, payload: &str) -> Value {
    json!({"type": "Action.Submit", "title": title, "data": {key: payload, SUBMIT_TEXT: title}})
}

fn card(card: &Card) -> Value {
    let mut body = vec![text_block(&card.title, true)];
    if let Some(image) = &card.image_url {
        body.push(json!({"type": "Image", "url": image, "size": "Stretch", "altText": card.title}));
    }
    if let Some(description) = &card.description {
        body.push(text_block(description, false));
    }
    let actions = card
        .actions
        .iter()
        .map(|action| match action {
            CardAction::Link { text, url } => {
                json!({"type": "Action.OpenUrl", "title": text, "url": url})
            }
            CardAction::Postback { text, payload } => submit(text, SUBMIT_BUTTON, payload),
        })
        .collect();
    adaptive_card(body, actions)
}

fn file(attachment: &Attachment) -> Value {
    if attachment.media_type == MediaType::Image {
        let mut image = json!({"contentType": attachment.mime, "contentUrl": attachment.url});
        if let Some(name) = &attachment.filename {
            image["name"] = json!(name);
        }
        return image;
    }
    let name = attachment.filename.as_deref().unwrap_or("file");
    let mut body = vec![text_block(name, true)];
    if let Some(caption) = &attachment.caption {
        body.push(text_block(caption, false));
    }
    adaptive_card(
        body,
        vec![json!({"type": "Action.OpenUrl", "title": "Download", "url": attachment.url})],
    )
}

fn text_of(content: &Content, options: &MessagingOptions) -> Option<String> {
    let mut text = content.text.clone().filter(|t| !t.is_empty());
    if let Some(location) = &content.location {
        let place = [location.title.as_deref(), location.address.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        let link = format!(
            "https://www.bing.com/maps?cp={}~{}&lvl=16",
            location.latitude, location.longitude
        );
        let line = if place.is_empty() {
            link
        } else {
            format!("{place}: {link}")
        };
        text = Some(match text {
            Some(text) => format!("{text}\n{line}"),
            None => line,
        });
    }
    let name = content
        .agent_name
        .as_deref()
        .filter(|name| options.prefix_agent_name && !name.is_empty());
    match (text, name) {
        (Some(text), Some(name)) => Some(format!("{name}: {text}")),
        (text, _) => text,
    }
}

fn message(
    content: &Content,
    conversation: &ConversationRef,
    options: &MessagingOptions,
) -> Result<Outbound, OutboundError> {
    let mut activity = base(conversation, "message");
    if let Some(native) = &content.native {
        let Some(fields) = native.as_object() else {
            return Err(OutboundError::BadNative);
        };
        for (key, value) in fields {
            activity[key] = value.clone();
        }
        return Ok(Outbound {
            activity,
            offered: Vec::new(),
        });
    }
    let text = text_of(content, options);
    if let Some(text) = &text {
        let length = text.chars().count();
        if length > TEXT_LIMIT {
            return Err(OutboundError::TooLong(length));
        }
    }
    let mut attachments: Vec<Value> = content.attachments.iter().map(file).collect();
    attachments.extend(content.cards.iter().map(card));
    let mut offered = Vec::new();
    let mut text_in_card = false;
    if !content.quick_replies.is_empty() {
        if conversation.scope == Scope::Personal {
            let actions: Vec<Value> = content
                .quick_replies
                .iter()
                .map(|q| json!({"type": "imBack", "title": q.text, "value": q.text}))
                .collect();
            activity["suggestedActions"] = json!({"actions": actions});
            offered = content.quick_replies.clone();
        } else {
            let body = text.iter().map(|t| text_block(t, false)).collect();
            let buttons = content
                .quick_replies
                .iter()
                .map(|q| submit(&q.text, SUBMIT_QUICK_REPLY, &q.payload))
                .collect();
            attachments.insert(0, adaptive_card(body, buttons));
            text_in_card = true;
        }
    }
    if content.sticker.is_some() && text.is_none() && attachments.is_empty() {
        return Err(OutboundError::Unsupported("a sticker".to_owned()));
    }
    if let Some(text) = text.filter(|_| !text_in_card) {
        activity["text"] = json!(text);
        activity["textFormat"] = json!("plain");
    }
    if content.cards.len() > 1 {
        activity["attachmentLayout"] = json!("carousel");
    }
    if !attachments.is_empty() {
        activity["attachments"] = Value::Array(attachments);
    }
    if activity.get("text").is_none()
        && activity.get("attachments").is_none()
        && activity.get("suggestedActions").is_none()
    {
        return Err(OutboundError::Unsupported("an empty message".to_owned()));
    }
    Ok(Outbound { activity, offered })
}

/// The activity that carries `envelope` into `conversation`.
pub fn to_teams(
    envelope: &Envelope,
    conversation: &ConversationRef,
    options: &MessagingOptions,
) -> Result<Outbound, OutboundError> {
    match &envelope.body {
        Body::Message(content) => message(content, conversation, options),
        Body::Typing { .. } => Ok(Outbound {
            activity: base(conversation, "typing"),
            offered: Vec::new(),
        }),
        Body::ButtonResponse(_) | Body::Receipt(_) => Err(OutboundError::Unsupported(
            "a guest-side event in the agent direction".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machinery::envelope::Location;
    use crate::platforms::teams::types::ChannelAccount;
    use um_config::Platform;

    fn conversation(scope: Scope) -> ConversationRef {
        ConversationRef {
            service_url: "https://smba.trafficmanager.net/amer/".into(),
            conversation_id: "a:1personal".into(),
            scope,
            bot: ChannelAccount {
                id: "28:app-1".into(),
                name: Some("ACME Bot".into()),
                aad_object_id: None,
            },
            user: ChannelAccount {
                id: "29:1abc".into(),
                name: Some("Megan".into()),
                aad_object_id: None,
            },
            tenant_id: Some("t-1".into()),
        }
    }

    fn envelope(content: Content) -> Envelope {
        crate::machinery::envelope::fixtures::agent_message(
            Platform::Teams,
            "e1",
            "a:1personal",
            content,
        )
    }

    fn send(content: Content, scope: Scope) -> Result<Outbound, OutboundError> {
        to_teams(
            &envelope(content),
            &conversation(scope),
            &MessagingOptions::default(),
        )
    }

    fn quick(text: &str, payload: &str) -> QuickReply {
        QuickReply {
            text: text.into(),
            payload: payload.into(),
            image_url: None,
        }
    }

    #[test]
    fn plain_text_from_the_bot_to_the_user() {
        let out = send(
            Content {
                text: Some("Hi *there*".into()),
                ..Content::default()
            },
            Scope::Personal,
        )
        .unwrap();
        assert_eq!(out.activity["type"], "message");
        assert_eq!(out.activity["text"], "Hi *there*");
        assert_eq!(out.activity["textFormat"], "plain");
        assert_eq!(out.activity["from"]["id"], "28:app-1");
        assert_eq!(out.activity["recipient"]["id"], "29:1abc");
        assert_eq!(out.activity["conversation"]["id"], "a:1personal");
    }

    #[test]
    fn agent_name_prefix_and_location() {
        let options = MessagingOptions {
            prefix_agent_name: true,
            ..MessagingOptions::default()
        };
        let content = Content {
            text: Some("We are here".into()),
            agent_name: Some("Alice".into()),
            location: Some(Location {
                latitude: 35.5,
                longitude: 139.25,
                title: Some("Shop".into()),
                address: None,
            }),
            ..Content::default()
        };
        let out = to_teams(&envelope(content), &conversation(Scope::Personal), &options).unwrap();
        let text = out.activity["text"].as_str().unwrap();
        assert!(
            text.starts_with("Alice: We are here\nShop: https://www.bing.com/maps?cp=35.5~139.25"),
            "{text}"
        );
    }

    #[test]
    fn quick_replies_are_suggested_actions_in_personal_chats() {
        let content = Content {
            text: Some("Did that help?".into()),
            quick_replies: vec![quick("Yes", "help-yes"), quick("No", "help-no")],
            ..Content::default()
        };
        let out = send(content, Scope::Personal).unwrap();
        assert_eq!(out.activity["text"], "Did that help?");
        let actions = &out.activity["suggestedActions"]["actions"];
        assert_eq!(
            actions[0],
            json!({"type": "imBack", "title": "Yes", "value": "Yes"})
        );
        assert_eq!(actions[1]["title"], "No");
        assert_eq!(out.offered.len(), 2);
    }

    #[test]
    fn quick_replies_are_submit_buttons_in_groups_and_channels() {
        for scope in [Scope::GroupChat, Scope::Channel] {
            let content = Content {
                text: Some("Did that help?".into()),
                quick_replies: vec![quick("Yes", "help-yes")],
                ..Content::default()
            };
            let out = send(content, scope).unwrap();
            assert!(out.activity.get("suggestedActions").is_none());
            assert!(out.activity.get("text").is_none());
            assert!(out.activity.get("recipient").is_none());
            assert!(out.offered.is_empty());
            let card = &out.activity["attachments"][0];
            assert_eq!(card["contentType"], ADAPTIVE_CARD);
            assert_eq!(card["content"]["version"], "1.4");
            assert_eq!(card["content"]["body"][0]["text"], "Did that help?");
            let action = &card["content"]["actions"][0];
            assert_eq!(action["type"], "Action.Submit");
            assert_eq!(action["data"][SUBMIT_QUICK_REPLY], "help-yes");
            assert_eq!(action["data"][SUBMIT_TEXT], "Yes");
        }
    }

    #[test]
    fn cards_are_adaptive_cards_and_several_a_carousel() {
        let one = Card {
            title: "Blue shirt".into(),
            description: Some("100% cotton".into()),
            image_url: Some("https://cdn.example/shirt.png".into()),
            actions: vec![
                CardAction::Link {
                    text: "Details".into(),
                    url: "https://shop.example/1".into(),
                },
                CardAction::Postback {
                    text: "Buy".into(),
                    payload: "buy-1".into(),
                },
            ],
        };
        let out = send(
            Content {
                cards: vec![one.clone(), one],
                ..Content::default()
            },
            Scope::Personal,
        )
        .unwrap();
        assert_eq!(out.activity["attachmentLayout"], "carousel");
        let content = &out.activity["attachments"][0]["content"];
        assert_eq!(content["type"], "AdaptiveCard");
        assert_eq!(content["body"][0]["text"], "Blue shirt");
        assert_eq!(content["body"][1]["type"], "Image");
        assert_eq!(content["body"][1]["url"], "https://cdn.example/shirt.png");
        assert_eq!(content["body"][2]["text"], "100% cotton");
        assert_eq!(
            content["actions"][0],
            json!({"type": "Action.OpenUrl", "title": "Details", "url": "https://shop.example/1"})
        );
        assert_eq!(content["actions"][1]["data"][SUBMIT_BUTTON], "buy-1");
    }

    #[test]
    fn images_by_url_and_files_as_download_cards() {
        let image = Attachment {
            media_type: MediaType::Image,
            url: "https://files.example/map.png".into(),
            mime: "image/png".into(),
            filename: Some("map.png".into()),
            size_bytes: None,
            caption: None,
            sha256: None,
        };
        let pdf = Attachment {
            media_type: MediaType::File,
            url: "https://files.example/a.pdf".into(),
            mime: "application/pdf".into(),
            filename: Some("a.pdf".into()),
            size_bytes: None,
            caption: None,
            sha256: None,
        };
        let out = send(
            Content {
                attachments: vec![image, pdf],
                ..Content::default()
            },
            Scope::Personal,
        )
        .unwrap();
        let attachments = &out.activity["attachments"];
        assert_eq!(
            attachments[0],
            json!({"contentType": "image/png", "contentUrl": "https://files.example/map.png", "name": "map.png"})
        );
        assert_eq!(attachments[1]["contentType"], ADAPTIVE_CARD);
        assert_eq!(
            attachments[1]["content"]["actions"][0]["url"],
            "https://files.example/a.pdf"
        );
    }

    #[test]
    fn too_long_empty_and_native() {
        let long = "x".repeat(TEXT_LIMIT + 1);
        let error = send(
            Content {
                text: Some(long),
                ..Content::default()
            },
            Scope::Personal,
        )
        .unwrap_err();
        assert_eq!(error, OutboundError::TooLong(TEXT_LIMIT + 1));
        assert_eq!(error.reason(), ReasonCode::InvalidMessageStructure);
        assert!(matches!(
            send(Content::default(), Scope::Personal),
            Err(OutboundError::Unsupported(_))
        ));
        let native = json!({"attachments": [{"contentType": "application/vnd.microsoft.card.hero", "content": {"title": "Hi"}}]});
        let out = send(
            Content {
                native: Some(native),
                ..Content::default()
            },
            Scope::Personal,
        )
        .unwrap();
        assert_eq!(out.activity["type"], "message");
        assert_eq!(out.activity["attachments"][0]["content"]["title"], "Hi");
        assert_eq!(
            send(
                Content {
                    native: Some(json!([1])),
                    ..Content::default()
                },
                Scope::Personal
            )
            .unwrap_err(),
            OutboundError::BadNative
        );
    }
}
