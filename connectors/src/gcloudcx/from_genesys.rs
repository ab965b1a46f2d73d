//! Genesys outbound webhook → envelope (pure).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use um_config::TenantConfig;

use super::api::{CardContent, ContentAttachment, OutboundMessage};
use crate::machinery::envelope::{
    Attachment, Body, Card, CardAction, Content, Conversation, Direction, ENVELOPE_VERSION,
    Envelope, Guest, MediaType, QuickReply,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FromGenesysError {
    #[error("Genesys message {id} has no recipient (channel.to.id)")]
    NoRecipient { id: String },
    #[error("Genesys message {id} of type {kind:?} has no content this bridge can deliver")]
    Unsupported { id: String, kind: String },
}

/// What one outbound webhook means for the bridge.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookMeaning {
    /// Carry this envelope to the platform.
    Deliver(Box<Envelope>),
    /// Accepted and deliberately dropped (receipts, inbound echoes, events we
    /// do not relay).
    Ignore,
}

/// The envelope id of a Genesys message: stable across Genesys' webhook
/// retries, so a redelivery is recognised.
pub fn envelope_id(tenant: &str, genesys_message_id: &str) -> String {
    format!("{tenant}:gc:{genesys_message_id}")
}

fn media_type(name: &str) -> MediaType {
    match name {
        "Image" => MediaType::Image,
        "Video" => MediaType::Video,
        "Audio" => MediaType::Audio,
        "Link" => MediaType::Link,
        _ => MediaType::File,
    }
}

fn attachment(attachment: &ContentAttachment) -> Attachment {
    Attachment {
        media_type: media_type(&attachment.media_type),
        url: attachment.url.clone(),
        mime: attachment.mime.clone(),
        filename: attachment.filename.clone(),
        size_bytes: attachment.content_size_bytes,
        caption: attachment.text.clone(),
        sha256: attachment.sha256.clone(),
    }
}

fn card(card: &CardContent) -> Card {
    Card {
        title: card.title.clone(),
        description: card.description.clone(),
        image_url: card.image.clone(),
        actions: card
            .actions
            .iter()
            .filter_map(
                |action| match (action.kind.as_str(), &action.url, &action.payload) {
                    ("Link", Some(url), _) => Some(CardAction::Link {
                        text: action.text.clone(),
                        url: url.clone(),
                    }),
                    ("Postback", _, payload) => Some(CardAction::Postback {
                        text: action.text.clone(),
                        payload: payload.clone().unwrap_or_else(|| action.text.clone()),
                    }),
                    _ => None,
                },
            )
            .collect(),
    }
}

fn join_text(parts: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let parts: Vec<String> = parts
        .into_iter()
        .flatten()
        .filter(|part| !part.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

fn content_of(message: &OutboundMessage) -> Content {
    let mut content = Content {
        text: message.text.clone().filter(|text| !text.is_empty()),
        ..Content::default()
    };
    let mut extra_text: Vec<Option<String>> = Vec::new();
    for item in &message.content {
        match item.content_type.as_str() {
            "Attachment" => content
                .attachments
                .extend(item.attachment.as_ref().map(attachment)),
            "QuickReply" => content
                .quick_replies
                .extend(item.quick_reply.as_ref().map(|reply| QuickReply {
                    text: reply.text.clone(),
                    payload: if reply.payload.is_empty() {
                        reply.text.clone()
                    } else {
                        reply.payload.clone()
                    },
                    image_url: reply.image.clone(),
                })),
            "Card" => content.cards.extend(item.card.as_ref().map(card)),
            "Carousel" => {
                if let Some(carousel) = &item.carousel {
                    content.cards.extend(carousel.cards.iter().map(card));
                }
            }
            // A message template arrives already substituted.
            "Notification" => {
                if let Some(template) = &item.template {
                    let text = |part: &Option<super::api::TemplateText>| {
                        part.as_ref().and_then(|part| part.text.clone())
                    };
                    extra_text.push(join_text([
                        text(&template.header),
                        text(&template.body),
                        text(&template.footer),
                    ]));
                }
            }
            "DatePicker" => {
                if let Some(picker) = &item.date_picker {
                    extra_text.push(join_text([picker.title.clone(), picker.subtitle.clone()]));
                }
            }
            _ => {}
        }
    }
    if content.text.is_none() {
        content.text = join_text(extra_text);
    }
    content
}

fn has_something(content: &Content) -> bool {
    content.text.is_some()
        || !content.attachments.is_empty()
        || !content.quick_replies.is_empty()
        || !content.cards.is_empty()
}

/// Translates an authenticated webhook body for `tenant`. `now` stands in for
/// a missing or unreadable `channel.time`.
pub fn from_genesys(
    message: &OutboundMessage,
    tenant: &TenantConfig,
    now: DateTime<Utc>,
) -> Result<WebhookMeaning, FromGenesysError> {
    if message.direction.as_deref() == Some("Inbound") {
        return Ok(WebhookMeaning::Ignore);
    }
    let body = match message.kind.as_str() {
        "Receipt" => return Ok(WebhookMeaning::Ignore),
        "Event" => {
            let typing = message
                .events
                .iter()
                .find(|event| event.event_type == "Typing");
            match typing {
                Some(event) => Body::Typing {
                    duration_ms: event.typing.as_ref().and_then(|typing| typing.duration),
                },
                None => return Ok(WebhookMeaning::Ignore),
            }
        }
        _ => {
            let mut content = content_of(message);
            if !has_something(&content) {
                return Err(FromGenesysError::Unsupported {
                    id: message.id.clone(),
                    kind: message.kind.clone(),
                });
            }
            content.agent_name = tenant
                .genesys
                .as_ref()
                .and_then(|genesys| genesys.agent_name.clone())
                .or_else(|| message.channel.from.nickname.clone())
                .filter(|name| !name.is_empty());
            Body::Message(content)
        }
    };
    let to = &message.channel.to;
    if to.id.is_empty() {
        return Err(FromGenesysError::NoRecipient {
            id: message.id.clone(),
        });
    }
    let time = message
        .channel
        .time
        .as_deref()
        .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
        .map_or(now, |time| time.with_timezone(&Utc));
    Ok(WebhookMeaning::Deliver(Box::new(Envelope {
        v: ENVELOPE_VERSION,
        id: envelope_id(&tenant.key, &message.id),
        tenant: tenant.key.clone(),
        platform: tenant.platform,
        direction: Direction::AgentToGuest,
        time,
        conversation: Conversation {
            id: to.id.clone(),
            guest: Guest {
                id: to.id.clone(),
                nickname: to.nickname.clone(),
                first_name: to.first_name.clone(),
                last_name: to.last_name.clone(),
                ..Guest::default()
            },
            cx_conversation_id: message.conversation_id.clone(),
        },
        body,
        custom_data: BTreeMap::new(),
        origin_id: Some(message.id.clone()),
        traceparent: None,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use um_config::{GenesysConfig, Platform, Secret};

    fn tenant(agent_name: Option<&str>) -> TenantConfig {
        TenantConfig::new(
            "shop.acme",
            "ACME",
            Platform::Telegram,
            "https://um.example/telegram/shop.acme",
        )
        .with_genesys(GenesysConfig {
            region: "us-east-1".into(),
            api_base_url: "http://127.0.0.1:1".into(),
            login_base_url: "http://127.0.0.1:1".into(),
            client_id: "cid".into(),
            client_secret: Secret::new("secret"),
            integration_id: Some("int-1".into()),
            webhook_token: Secret::new("0123456789abcdef"),
            custom_data: BTreeMap::new(),
            agent_name: agent_name.map(str::to_owned),
            commander: Default::default(),
        })
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn webhook(extra: serde_json::Value) -> OutboundMessage {
        let mut base = json!({
            "id": "c327c2078ca056db130c55ce648d9fa2",
            "channel": {"id": "int-1", "platform": "Open", "type": "Private",
                        "messageId": "c327c2078ca056db130c55ce648d9fa2",
                        "to": {"id": "42", "idType": "Opaque"},
                        "from": {"nickName": "Alice", "id": "int-1", "idType": "Opaque"},
                        "time": "2021-02-01T15:04:05.123Z"},
            "conversationId": "d06cb41e", "direction": "Outbound",
            "originatingEntity": "Human", "type": "Text", "text": "Hello World", "content": []
        });
        if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), extra) {
            base.extend(extra);
        }
        serde_json::from_value(base).unwrap()
    }

    fn deliver(meaning: WebhookMeaning) -> Envelope {
        match meaning {
            WebhookMeaning::Deliver(envelope) => *envelope,
            WebhookMeaning::Ignore => panic!("expected an envelope"),
        }
    }

    fn content(envelope: &Envelope) -> &Content {
        match &envelope.body {
            Body::Message(content) => content,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn text_message_addresses_the_guest_and_keeps_the_genesys_id() {
        let envelope = deliver(from_genesys(&webhook(json!({})), &tenant(None), now()).unwrap());
        assert_eq!(envelope.id, "shop.acme:gc:c327c2078ca056db130c55ce648d9fa2");
        assert_eq!(
            envelope.origin_id.as_deref(),
            Some("c327c2078ca056db130c55ce648d9fa2")
        );
        assert_eq!(envelope.direction, Direction::AgentToGuest);
        assert_eq!(envelope.platform, Platform::Telegram);
        assert_eq!(envelope.conversation.id, "42");
        assert_eq!(
            envelope.conversation.cx_conversation_id.as_deref(),
            Some("d06cb41e")
        );
        assert_eq!(envelope.time.to_rfc3339(), "2021-02-01T15:04:05.123+00:00");
        let content = content(&envelope);
        assert_eq!(content.text.as_deref(), Some("Hello World"));
        assert_eq!(content.agent_name.as_deref(), Some("Alice"));
    }

    #[test]
    fn tenant_agent_name_wins() {
        let envelope =
            deliver(from_genesys(&webhook(json!({})), &tenant(Some("Support")), now()).unwrap());
        assert_eq!(content(&envelope).agent_name.as_deref(), Some("Support"));
    }

    #[test]
    fn attachment_keeps_url_mime_and_caption() {
        let message = webhook(
            json!({"text": null, "content": [{"contentType": "Attachment",
            "attachment": {"id": "a1", "mediaType": "Image", "url": "https://dl.example/a.png",
                           "mime": "image/png", "filename": "a.png", "contentSizeBytes": 1234,
                           "text": "our map"}}]}),
        );
        let envelope = deliver(from_genesys(&message, &tenant(None), now()).unwrap());
        let content = content(&envelope);
        assert_eq!(content.text, None);
        assert_eq!(
            content.attachments,
            vec![Attachment {
                media_type: MediaType::Image,
                url: "https://dl.example/a.png".into(),
                mime: "image/png".into(),
                filename: Some("a.png".into()),
                size_bytes: Some(1234),
                caption: Some("our map".into()),
                sha256: None,
            }]
        );
    }

    #[test]
    fn quick_replies_keep_prompt_text_and_payloads() {
        let message = webhook(json!({"type": "Structured", "text": "Pick one",
        "content": [
            {"contentType": "QuickReply", "quickReply": {"text": "Yes", "payload": "y", "action": "Message"}},
            {"contentType": "QuickReply", "quickReply": {"text": "No", "payload": "", "action": "Message"}}
        ]}));
        let envelope = deliver(from_genesys(&message, &tenant(None), now()).unwrap());
        let content = content(&envelope);
        assert_eq!(content.text.as_deref(), Some("Pick one"));
        let replies: Vec<(&str, &str)> = content
            .quick_replies
            .iter()
            .map(|reply| (reply.text.as_str(), reply.payload.as_str()))
            .collect();
        assert_eq!(replies, vec![("Yes", "y"), ("No", "No")]);
    }

    #[test]
    fn card_and_carousel_become_cards() {
        let card = json!({"title": "Shoe", "description": "Red", "image": "https://img/s.png",
            "actions": [{"type": "Link", "text": "Buy", "url": "https://shop/s"},
                        {"type": "Postback", "text": "More", "payload": "more-s"}]});
        let message = webhook(json!({"type": "Structured", "text": null, "content": [
            {"contentType": "Card", "card": card.clone()},
            {"contentType": "Carousel", "carousel": {"cards": [card.clone(), card]}}]}));
        let envelope = deliver(from_genesys(&message, &tenant(None), now()).unwrap());
        let cards = &content(&envelope).cards;
        assert_eq!(cards.len(), 3);
        assert_eq!(cards[0].image_url.as_deref(), Some("https://img/s.png"));
        assert_eq!(
            cards[0].actions,
            vec![
                CardAction::Link {
                    text: "Buy".into(),
                    url: "https://shop/s".into()
                },
                CardAction::Postback {
                    text: "More".into(),
                    payload: "more-s".into()
                }
            ]
        );
    }

    #[test]
    fn notification_template_becomes_text() {
        let message = webhook(json!({"type": "Structured", "text": null, "content": [
            {"contentType": "Notification", "template": {
                "header": {"type": "Text", "text": "Welcome"},
                "body": {"text": "Hi Happy, How can I help you?", "parameters": [{"name": "n", "text": "Happy"}]},
                "footer": {"text": "ACME"}}}]}));
        let envelope = deliver(from_genesys(&message, &tenant(None), now()).unwrap());
        assert_eq!(
            content(&envelope).text.as_deref(),
            Some("Welcome\nHi Happy, How can I help you?\nACME")
        );
    }

    #[test]
    fn typing_event_becomes_typing() {
        let message = webhook(json!({"type": "Event", "text": null,
            "events": [{"eventType": "Typing", "typing": {"type": "On", "duration": 5000}}]}));
        let envelope = deliver(from_genesys(&message, &tenant(None), now()).unwrap());
        assert_eq!(
            envelope.body,
            Body::Typing {
                duration_ms: Some(5000)
            }
        );
    }

    #[test]
    fn receipts_and_echoes_are_ignored() {
        let receipt = webhook(json!({"type": "Receipt", "status": "Delivered", "text": null}));
        assert_eq!(
            from_genesys(&receipt, &tenant(None), now()).unwrap(),
            WebhookMeaning::Ignore
        );
        let echo = webhook(json!({"direction": "Inbound"}));
        assert_eq!(
            from_genesys(&echo, &tenant(None), now()).unwrap(),
            WebhookMeaning::Ignore
        );
    }

    #[test]
    fn unknown_only_content_is_unsupported() {
        let message = webhook(json!({"type": "Structured", "text": null,
            "content": [{"contentType": "PaymentRequest", "paymentRequest": {}}]}));
        assert!(matches!(
            from_genesys(&message, &tenant(None), now()),
            Err(FromGenesysError::Unsupported { .. })
        ));
    }

    #[test]
    fn missing_recipient_is_an_error() {
        let mut message = webhook(json!({}));
        message.channel.to.id.clear();
        assert!(matches!(
            from_genesys(&message, &tenant(None), now()),
            Err(FromGenesysError::NoRecipient { .. })
        ));
    }

    #[test]
    fn missing_time_falls_back_to_now() {
        let mut message = webhook(json!({}));
        message.channel.time = None;
        let envelope = deliver(from_genesys(&message, &tenant(None), now()).unwrap());
        assert_eq!(envelope.time, now());
    }
}
