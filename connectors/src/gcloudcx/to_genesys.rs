//! Envelope → Genesys Open Messaging inbound requests (pure).
//!
//! A guest message becomes `inbound/open/message`, a tap on a quick reply a
//! structured response, typing an event, and the platform's verdict on an
//! agent message a receipt. The envelope id becomes `channel.messageId`, so a
//! retried delivery is recognisable as the same message.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use super::api::{
    ButtonResponse as ApiButtonResponse, ChannelMetadata, ContentAttachment, Event, FromRecipient,
    InboundChannel, InboundContent, InboundEvent, InboundMessage, InboundReceipt,
    InboundStructuredResponse, Reason, ReceiptChannel, ToRecipient, TypingEvent,
};
use crate::machinery::envelope::{
    Attachment, Body, ButtonKind, Content, Direction, Envelope, Guest, MediaType, ReasonCode,
    Receipt, ReceiptStatus,
};

/// The custom attribute that names the guest's messaging app.
pub const MEDIA_ATTRIBUTE: &str = "media";

/// One call to an Open Messaging inbound endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum GenesysRequest {
    Message(InboundMessage),
    Event(InboundEvent),
    StructuredResponse(InboundStructuredResponse),
    Receipt(InboundReceipt),
}

impl GenesysRequest {
    /// Path below `/api/v2/conversations/messages/{integrationId}/`.
    pub fn endpoint(&self) -> &'static str {
        match self {
            GenesysRequest::Message(_) => "inbound/open/message",
            GenesysRequest::Event(_) => "inbound/open/event",
            GenesysRequest::StructuredResponse(_) => "inbound/open/structured/response",
            GenesysRequest::Receipt(_) => "inbound/open/receipt",
        }
    }

    /// The request body as sent (serialised once, reused across attempts).
    pub fn to_body(&self) -> bytes::Bytes {
        let body = match self {
            GenesysRequest::Message(body) => serde_json::to_vec(body),
            GenesysRequest::Event(body) => serde_json::to_vec(body),
            GenesysRequest::StructuredResponse(body) => serde_json::to_vec(body),
            GenesysRequest::Receipt(body) => serde_json::to_vec(body),
        };
        // Plain structs with string keys always serialise.
        body.unwrap_or_default().into()
    }

    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            GenesysRequest::Message(body) => serde_json::to_value(body),
            GenesysRequest::Event(body) => serde_json::to_value(body),
            GenesysRequest::StructuredResponse(body) => serde_json::to_value(body),
            GenesysRequest::Receipt(body) => serde_json::to_value(body),
        };
        // Plain structs with string keys always serialise.
        value.unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ToGenesysError {
    #[error(
        "envelope {id} travels {direction:?}; only guest-to-agent messages and receipts of agent messages go to Genesys"
    )]
    WrongDirection { id: String, direction: Direction },
    #[error(
        "envelope {id} has nothing Genesys can show (no text, attachment, location, contact or sticker)"
    )]
    Empty { id: String },
}

/// Genesys' time format: UTC with milliseconds.
pub fn genesys_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn media_type_name(media_type: MediaType) -> &'static str {
    match media_type {
        MediaType::Image => "Image",
        MediaType::Video => "Video",
        MediaType::Audio => "Audio",
        MediaType::File => "File",
        MediaType::Link => "Link",
    }
}

pub fn reason_code_name(code: ReasonCode) -> &'static str {
    match code {
        ReasonCode::MessageExpired => "MessageExpired",
        ReasonCode::RateLimited => "RateLimited",
        ReasonCode::MessageNotAllowed => "MessageNotAllowed",
        ReasonCode::GeneralError => "GeneralError",
        ReasonCode::UnsupportedMessage => "UnsupportedMessage",
        ReasonCode::UnknownMessage => "UnknownMessage",
        ReasonCode::InvalidMessageStructure => "InvalidMessageStructure",
        ReasonCode::InvalidDestination => "InvalidDestination",
        ReasonCode::ServerError => "ServerError",
        ReasonCode::MediaTypeNotAllowed => "MediaTypeNotAllowed",
        ReasonCode::InvalidMediaContentLength => "InvalidMediaContentLength",
        ReasonCode::RecipientOptedOut => "RecipientOptedOut",
        ReasonCode::DataFiltered => "DataFiltered",
    }
}

fn from_recipient(conversation_id: &str, guest: &Guest) -> FromRecipient {
    FromRecipient {
        // The conversation address, not the user id: it is what the agent's
        // answer must be delivered to (`channel.to.id` of the webhook).
        id: conversation_id.to_owned(),
        id_type: "Opaque".to_owned(),
        nickname: guest.nickname.clone(),
        first_name: guest.first_name.clone(),
        last_name: guest.last_name.clone(),
        image: guest.avatar_url.clone(),
        email: guest.email.clone(),
    }
}

/// Tenant custom data, then the envelope's own, then `media` unless the
/// platform connector already set it.
pub fn custom_attributes(
    envelope: &Envelope,
    tenant_custom_data: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut attributes = tenant_custom_data.clone();
    attributes.extend(envelope.custom_data.clone());
    attributes
        .entry(MEDIA_ATTRIBUTE.to_owned())
        .or_insert_with(|| envelope.platform.display_name().to_owned());
    attributes
}

fn channel(
    envelope: &Envelope,
    message_id: String,
    tenant_custom_data: &BTreeMap<String, String>,
) -> InboundChannel {
    InboundChannel {
        message_id: Some(message_id),
        from: from_recipient(&envelope.conversation.id, &envelope.conversation.guest),
        time: genesys_time(envelope.time),
        metadata: Some(ChannelMetadata {
            custom_attributes: custom_attributes(envelope, tenant_custom_data),
        }),
    }
}

/// Location, contact and sticker have no Open Messaging content type: the
/// agent gets them as text.
fn text_of(content: &Content) -> Option<String> {
    let mut lines: Vec<String> = Vec::new();
    if let Some(text) = content.text.as_deref().filter(|text| !text.is_empty()) {
        lines.push(text.to_owned());
    }
    if let Some(location) = &content.location {
        let mut line = String::from("Location:");
        if let Some(title) = &location.title {
            line.push(' ');
            line.push_str(title);
        }
        if let Some(address) = &location.address {
            line.push_str(&format!(" ({address})"));
        }
        line.push_str(&format!(
            " https://www.google.com/maps/search/?api=1&query={},{}",
            location.latitude, location.longitude
        ));
        lines.push(line);
    }
    if let Some(contact) = &content.contact {
        let name = contact.name.as_deref().unwrap_or("");
        let phone = contact.phone.as_deref().unwrap_or("");
        lines.push(format!("Contact: {name} {phone}").trim_end().to_owned());
    }
    if let Some(sticker) = &content.sticker {
        match &sticker.emoji {
            Some(emoji) => lines.push(format!("Sticker {emoji}")),
            None => lines.push("Sticker".to_owned()),
        }
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn attachment_content(attachment: &Attachment) -> InboundContent {
    InboundContent {
        content_type: "Attachment".to_owned(),
        attachment: ContentAttachment {
            media_type: media_type_name(attachment.media_type).to_owned(),
            url: attachment.url.clone(),
            mime: attachment.mime.clone(),
            filename: attachment.filename.clone(),
            text: attachment.caption.clone(),
            sha256: attachment.sha256.clone(),
            id: None,
            content_size_bytes: None,
        },
    }
}

/// The Genesys requests for one envelope, in order. Several attachments
/// become several messages (one attachment each, ids `<id>`, `<id>-1`, ...).
pub fn to_genesys(
    envelope: &Envelope,
    tenant_custom_data: &BTreeMap<String, String>,
) -> Result<Vec<GenesysRequest>, ToGenesysError> {
    match &envelope.body {
        Body::Receipt(receipt) => Ok(vec![GenesysRequest::Receipt(receipt_request(
            envelope, receipt,
        ))]),
        _ if envelope.direction != Direction::GuestToAgent => Err(ToGenesysError::WrongDirection {
            id: envelope.id.clone(),
            direction: envelope.direction,
        }),
        Body::Message(content) => message_requests(envelope, content, tenant_custom_data),
        Body::ButtonResponse(response) => Ok(vec![GenesysRequest::StructuredResponse(
            InboundStructuredResponse {
                channel: channel(envelope, envelope.id.clone(), tenant_custom_data),
                button_response: ApiButtonResponse {
                    kind: match response.kind {
                        ButtonKind::Button => "Button",
                        ButtonKind::QuickReply => "QuickReply",
                        ButtonKind::DatePicker => "DatePicker",
                    }
                    .to_owned(),
                    text: response.text.clone(),
                    payload: response.payload.clone(),
                },
                originating_message_id: response.originating_message_id.clone(),
            },
        )]),
        Body::Typing { duration_ms } => {
            let mut channel = channel(envelope, envelope.id.clone(), tenant_custom_data);
            // Events carry no participant data.
            channel.metadata = None;
            Ok(vec![GenesysRequest::Event(InboundEvent {
                channel,
                events: vec![Event {
                    event_type: "Typing".to_owned(),
                    typing: Some(TypingEvent {
                        kind: "On".to_owned(),
                        duration: *duration_ms,
                    }),
                }],
            })])
        }
    }
}

fn message_requests(
    envelope: &Envelope,
    content: &Content,
    tenant_custom_data: &BTreeMap<String, String>,
) -> Result<Vec<GenesysRequest>, ToGenesysError> {
    let text = text_of(content);
    if text.is_none() && content.attachments.is_empty() {
        return Err(ToGenesysError::Empty {
            id: envelope.id.clone(),
        });
    }
    let mut requests = Vec::new();
    let mut attachments = content.attachments.iter();
    requests.push(GenesysRequest::Message(InboundMessage {
        channel: channel(envelope, envelope.id.clone(), tenant_custom_data),
        text,
        content: attachments
            .next()
            .map(attachment_content)
            .into_iter()
            .collect(),
    }));
    for (index, attachment) in attachments.enumerate() {
        requests.push(GenesysRequest::Message(InboundMessage {
            channel: channel(
                envelope,
                format!("{}-{}", envelope.id, index + 1),
                tenant_custom_data,
            ),
            text: None,
            content: vec![attachment_content(attachment)],
        }));
    }
    Ok(requests)
}

fn receipt_request(envelope: &Envelope, receipt: &Receipt) -> InboundReceipt {
    let reasons = match receipt.status {
        ReceiptStatus::Delivered => Vec::new(),
        ReceiptStatus::Failed => vec![Reason {
            code: reason_code_name(receipt.reason.unwrap_or(ReasonCode::GeneralError)).to_owned(),
            message: receipt.detail.clone(),
        }],
    };
    InboundReceipt {
        id: receipt.message_id.clone(),
        channel: ReceiptChannel {
            to: ToRecipient {
                id: envelope.conversation.id.clone(),
                id_type: "Opaque".to_owned(),
            },
            time: genesys_time(envelope.time),
        },
        status: match receipt.status {
            ReceiptStatus::Delivered => "Delivered",
            ReceiptStatus::Failed => "Failed",
        }
        .to_owned(),
        direction: "Outbound".to_owned(),
        is_final_receipt: true,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machinery::envelope::{
        ButtonResponse, Contact, Conversation, ENVELOPE_VERSION, Location, Sticker,
    };
    use serde_json::json;
    use um_config::Platform;

    fn envelope(body: Body) -> Envelope {
        Envelope {
            v: ENVELOPE_VERSION,
            id: "shop.acme:tg:1001".into(),
            tenant: "shop.acme".into(),
            platform: Platform::Telegram,
            direction: Direction::GuestToAgent,
            time: DateTime::parse_from_rfc3339("2026-11-24T10:00:00.5Z")
                .unwrap()
                .with_timezone(&Utc),
            conversation: Conversation {
                id: "42".into(),
                guest: Guest {
                    id: "7".into(),
                    nickname: Some("bob".into()),
                    first_name: Some("Bob".into()),
                    last_name: Some("Minion".into()),
                    ..Guest::default()
                },
                cx_conversation_id: None,
            },
            body,
            custom_data: BTreeMap::from([("language".into(), "ja".into())]),
            origin_id: Some("1001".into()),
            traceparent: None,
        }
    }

    fn tenant_data() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("tenant".into(), "acme".into()),
            ("language".into(), "en".into()),
        ])
    }

    #[test]
    fn text_message_carries_sender_time_id_and_custom_attributes() {
        let env = envelope(Body::Message(Content {
            text: Some("hello".into()),
            ..Content::default()
        }));
        let requests = to_genesys(&env, &tenant_data()).unwrap();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].endpoint(), "inbound/open/message");
        assert_eq!(
            requests[0].to_json(),
            json!({
                "channel": {
                    "messageId": "shop.acme:tg:1001",
                    "from": {"id": "42", "idType": "Opaque", "nickname": "bob",
                             "firstName": "Bob", "lastName": "Minion"},
                    "time": "2026-11-24T10:00:00.500Z",
                    "metadata": {"customAttributes": {
                        "tenant": "acme", "language": "ja", "media": "Telegram"}}
                },
                "text": "hello"
            })
        );
    }

    #[test]
    fn attachments_become_content_one_per_message() {
        let image = Attachment {
            media_type: MediaType::Image,
            url: "https://um.example/media/a".into(),
            mime: "image/jpeg".into(),
            filename: None,
            size_bytes: None,
            caption: None,
            sha256: None,
        };
        let document = Attachment {
            media_type: MediaType::File,
            mime: "application/pdf".into(),
            filename: Some("a.pdf".into()),
            url: "https://um.example/media/b".into(),
            ..image.clone()
        };
        let env = envelope(Body::Message(Content {
            text: Some("look".into()),
            attachments: vec![image, document],
            ..Content::default()
        }));
        let requests = to_genesys(&env, &BTreeMap::new()).unwrap();
        assert_eq!(requests.len(), 2);
        let first = requests[0].to_json();
        assert_eq!(first["text"], "look");
        assert_eq!(
            first["content"],
            json!([{"contentType": "Attachment", "attachment":
                {"mediaType": "Image", "url": "https://um.example/media/a", "mime": "image/jpeg"}}])
        );
        let second = requests[1].to_json();
        assert_eq!(second["channel"]["messageId"], "shop.acme:tg:1001-1");
        assert!(second.get("text").is_none());
        assert_eq!(second["content"][0]["attachment"]["filename"], "a.pdf");
    }

    #[test]
    fn location_contact_and_sticker_become_text() {
        let env = envelope(Body::Message(Content {
            location: Some(Location {
                latitude: 35.5,
                longitude: 139.25,
                title: None,
                address: None,
            }),
            contact: Some(Contact {
                name: Some("Ann".into()),
                phone: Some("+81 3".into()),
            }),
            sticker: Some(Sticker {
                id: "f1".into(),
                emoji: Some("😀".into()),
                image_url: None,
            }),
            ..Content::default()
        }));
        let text = to_genesys(&env, &BTreeMap::new()).unwrap()[0].to_json()["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(text.contains("query=35.5,139.25"), "{text}");
        assert!(text.contains("Contact: Ann +81 3"), "{text}");
        assert!(text.contains("Sticker 😀"), "{text}");
    }

    #[test]
    fn empty_message_is_refused() {
        let env = envelope(Body::Message(Content::default()));
        assert!(matches!(
            to_genesys(&env, &BTreeMap::new()),
            Err(ToGenesysError::Empty { .. })
        ));
    }

    #[test]
    fn envelope_media_overrides_default_and_tenant_data_is_overridden() {
        let mut env = envelope(Body::Message(Content {
            text: Some("x".into()),
            ..Content::default()
        }));
        env.custom_data
            .insert("media".into(), "Telegram Business".into());
        let attributes = custom_attributes(&env, &tenant_data());
        assert_eq!(attributes["media"], "Telegram Business");
        assert_eq!(attributes["language"], "ja");
        assert_eq!(attributes["tenant"], "acme");
    }

    #[test]
    fn button_response_becomes_structured_response() {
        let env = envelope(Body::ButtonResponse(ButtonResponse {
            kind: ButtonKind::QuickReply,
            text: "Yes".into(),
            payload: "yes-1".into(),
            originating_message_id: Some("gm-1".into()),
        }));
        let request = &to_genesys(&env, &BTreeMap::new()).unwrap()[0];
        assert_eq!(request.endpoint(), "inbound/open/structured/response");
        let body = request.to_json();
        assert_eq!(
            body["buttonResponse"],
            json!({"type": "QuickReply", "text": "Yes", "payload": "yes-1"})
        );
        assert_eq!(body["originatingMessageId"], "gm-1");
        assert_eq!(body["channel"]["from"]["id"], "42");
    }

    #[test]
    fn typing_becomes_event() {
        let env = envelope(Body::Typing {
            duration_ms: Some(5000),
        });
        let request = &to_genesys(&env, &BTreeMap::new()).unwrap()[0];
        assert_eq!(request.endpoint(), "inbound/open/event");
        assert_eq!(
            request.to_json()["events"],
            json!([{"eventType": "Typing", "typing": {"type": "On", "duration": 5000}}])
        );
    }

    #[test]
    fn failed_receipt_names_the_genesys_message_and_reason() {
        let mut env = envelope(Body::Receipt(Receipt {
            message_id: "gm-9".into(),
            status: ReceiptStatus::Failed,
            reason: Some(ReasonCode::RecipientOptedOut),
            detail: Some("bot was blocked by the user".into()),
        }));
        env.direction = Direction::AgentToGuest;
        let request = &to_genesys(&env, &BTreeMap::new()).unwrap()[0];
        assert_eq!(request.endpoint(), "inbound/open/receipt");
        assert_eq!(
            request.to_json(),
            json!({
                "id": "gm-9",
                "channel": {"to": {"id": "42", "idType": "Opaque"}, "time": "2026-11-24T10:00:00.500Z"},
                "status": "Failed", "direction": "Outbound", "isFinalReceipt": true,
                "reasons": [{"code": "RecipientOptedOut", "message": "bot was blocked by the user"}]
            })
        );
    }

    #[test]
    fn delivered_receipt_has_no_reasons() {
        let env = envelope(Body::Receipt(Receipt {
            message_id: "gm-9".into(),
            status: ReceiptStatus::Delivered,
            reason: None,
            detail: None,
        }));
        let body = to_genesys(&env, &BTreeMap::new()).unwrap()[0].to_json();
        assert_eq!(body["status"], "Delivered");
        assert!(body.get("reasons").is_none());
    }

    #[test]
    fn agent_message_is_not_sent_inbound() {
        let mut env = envelope(Body::Message(Content {
            text: Some("x".into()),
            ..Content::default()
        }));
        env.direction = Direction::AgentToGuest;
        assert!(matches!(
            to_genesys(&env, &BTreeMap::new()),
            Err(ToGenesysError::WrongDirection { .. })
        ));
    }
}
