//! The normalised message envelope every service speaks on the bus.
//!
//! A platform connector turns a webhook into an [`Envelope`] with direction
//! [`Direction::GuestToAgent`]; the gcloudcx connector turns a Genesys
//! outbound webhook into one with [`Direction::AgentToGuest`]. Receipts travel
//! back the same way. The JSON form is versioned ([`ENVELOPE_VERSION`]) so a
//! rolling upgrade can tell old messages from new ones.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use um_config::Platform;

pub const ENVELOPE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Format version, [`ENVELOPE_VERSION`].
    pub v: u32,
    /// Unique id of this envelope; the idempotency key downstream.
    pub id: String,
    /// Tenant key (`<namespace>.<name>`).
    pub tenant: String,
    pub platform: Platform,
    pub direction: Direction,
    /// When the platform (or Genesys) says the event happened.
    pub time: DateTime<Utc>,
    /// The guest's conversation on the platform.
    pub conversation: Conversation,
    pub body: Body,
    /// Custom data for Genesys participant data (`customAttributes`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_data: BTreeMap<String, String>,
    /// Id of the event on its origin (Telegram `update_id`, Genesys message
    /// `id`, ...): the de-duplication key of redeliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_id: Option<String>,
    /// W3C trace context of the request that produced this envelope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Envelope {
    /// A message made now with a fresh id, in the one-to-one conversation
    /// `conversation` whose guest has that id too; no origin id, custom data
    /// or trace context (add them with the `with_` methods).
    pub fn message(
        tenant: &str,
        platform: Platform,
        direction: Direction,
        conversation: &str,
        content: Content,
    ) -> Self {
        Envelope {
            v: ENVELOPE_VERSION,
            id: uuid::Uuid::new_v4().to_string(),
            tenant: tenant.to_owned(),
            platform,
            direction,
            time: Utc::now(),
            conversation: Conversation {
                id: conversation.to_owned(),
                guest: Guest {
                    id: conversation.to_owned(),
                    ..Guest::default()
                },
                cx_conversation_id: None,
            },
            body: Body::Message(content),
            custom_data: BTreeMap::new(),
            origin_id: None,
            traceparent: None,
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    pub fn with_origin_id(mut self, origin_id: impl Into<String>) -> Self {
        self.origin_id = Some(origin_id.into());
        self
    }

    /// The key that orders messages: everything of one conversation goes
    /// through one shard, in order. It travels as the AMQP routing key, a
    /// short string of at most 255 bytes (a longer one corrupts the frame
    /// and the broker closes the shared connection), and a Tenant key
    /// (63 + 1 + 253) with a platform's conversation id can be longer: such
    /// a key is replaced by its SHA-256, still one per conversation.
    pub fn ordering_key(&self) -> String {
        let key = format!("{}/{}", self.tenant, self.conversation.id);
        if key.len() <= MAX_ROUTING_KEY {
            return key;
        }
        use sha2::Digest;
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(key.as_bytes()))
        )
    }
}

/// AMQP 0-9-1 short strings (routing keys, message ids) hold 255 bytes.
pub const MAX_ROUTING_KEY: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// From the guest's messaging app towards the contact center.
    GuestToAgent,
    /// From the contact center towards the guest.
    AgentToGuest,
}

/// Where a message goes on the platform side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    /// The platform's address for the guest conversation (Telegram chat id,
    /// LINE user id, Slack channel, ...). Stable per guest: this is Genesys'
    /// `channel.from.id` / `channel.to.id`.
    pub id: String,
    pub guest: Guest,
    /// Genesys conversation id, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cx_conversation_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guest {
    /// The platform user id.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// What the envelope carries.
#[allow(clippy::large_enum_variant)] // moved, not copied; boxing would change the API
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Body {
    Message(Content),
    /// A tap on a quick reply or a button of an earlier structured message.
    ButtonResponse(ButtonResponse),
    Typing {
        /// Milliseconds, when the origin says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
    },
    /// What became of an earlier envelope on the other side.
    Receipt(Receipt),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticker: Option<Sticker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<QuickReply>,
    /// One card, or several for a carousel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cards: Vec<Card>,
    /// A platform-native payload an agent sent (passed through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<serde_json::Value>,
    /// Name of the agent who wrote it (agent → guest only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaType {
    Image,
    Video,
    Audio,
    File,
    Link,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub media_type: MediaType,
    /// A URL the other side can fetch. Never a URL that embeds a credential.
    pub url: String,
    pub mime: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sticker {
    /// Platform id of the sticker (Telegram file_id, LINE package/sticker).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// A preview image the other side can fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuickReply {
    pub text: String,
    pub payload: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<CardAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum CardAction {
    Link { text: String, url: String },
    Postback { text: String, payload: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ButtonKind {
    Button,
    QuickReply,
    DatePicker,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ButtonResponse {
    /// Serialised as `type`: `kind` is the tag of [`Body`], and an
    /// internally tagged variant cannot carry a field of the same name.
    #[serde(rename = "type")]
    pub kind: ButtonKind,
    pub text: String,
    pub payload: String,
    /// Genesys id of the structured message the tap answers, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originating_message_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiptStatus {
    Delivered,
    Failed,
}

/// Genesys `ConversationReason` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReasonCode {
    MessageExpired,
    RateLimited,
    MessageNotAllowed,
    GeneralError,
    UnsupportedMessage,
    UnknownMessage,
    InvalidMessageStructure,
    InvalidDestination,
    ServerError,
    MediaTypeNotAllowed,
    InvalidMediaContentLength,
    RecipientOptedOut,
    DataFiltered,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// `origin_id` of the envelope this receipt is about (the Genesys
    /// outbound message id for agent messages).
    pub message_id: String,
    pub status: ReceiptStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ReasonCode>,
    /// Human-readable cause, never a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Envelopes for the crate's unit tests, so each platform's tests say only
/// what differs (its conversation id, the content).
#[cfg(test)]
pub mod fixtures {
    use super::*;

    /// An agent → guest message of tenant `shop.acme` on `platform`, made
    /// now, from Genesys message `m1`.
    pub fn agent_message(
        platform: Platform,
        id: &str,
        conversation: &str,
        content: Content,
    ) -> Envelope {
        Envelope::message(
            "shop.acme",
            platform,
            Direction::AgentToGuest,
            conversation,
            content,
        )
        .with_id(id)
        .with_origin_id("m1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            v: ENVELOPE_VERSION,
            id: "7c0e".into(),
            tenant: "shop.acme".into(),
            platform: Platform::Telegram,
            direction: Direction::GuestToAgent,
            time: DateTime::parse_from_rfc3339("2026-11-24T10:00:00.123Z")
                .unwrap()
                .with_timezone(&Utc),
            conversation: Conversation {
                id: "42".into(),
                guest: Guest {
                    id: "42".into(),
                    nickname: Some("bob".into()),
                    ..Guest::default()
                },
                cx_conversation_id: None,
            },
            body: Body::Message(Content {
                text: Some("hello".into()),
                quick_replies: vec![QuickReply {
                    text: "Yes".into(),
                    payload: "yes".into(),
                    image_url: None,
                }],
                ..Content::default()
            }),
            custom_data: BTreeMap::from([("media".into(), "Telegram".into())]),
            origin_id: Some("1001".into()),
            traceparent: None,
        }
    }

    #[test]
    fn json_round_trip_keeps_every_field() {
        let envelope = sample();
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["body"]["kind"], "message");
        assert_eq!(json["direction"], "guestToAgent");
        assert_eq!(json["platform"], "telegram");
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
    }

    #[test]
    fn button_response_round_trips() {
        let mut envelope = sample();
        envelope.body = Body::ButtonResponse(ButtonResponse {
            kind: ButtonKind::QuickReply,
            text: "Yes".into(),
            payload: "yes".into(),
            originating_message_id: None,
        });
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["body"]["kind"], "buttonResponse");
        assert_eq!(json["body"]["type"], "QuickReply");
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
    }

    #[test]
    fn ordering_key_is_per_conversation() {
        let a = sample();
        let mut b = sample();
        b.conversation.id = "43".into();
        assert_ne!(a.ordering_key(), b.ordering_key());
        assert_eq!(a.ordering_key(), sample().ordering_key());
    }

    #[test]
    fn a_long_ordering_key_fits_a_routing_key_and_stays_per_conversation() {
        let mut a = sample();
        a.tenant = format!("{}.{}", "n".repeat(63), "t".repeat(253));
        a.conversation.id = "c".repeat(300);
        let mut b = a.clone();
        b.conversation.id = format!("{}d", "c".repeat(299));
        assert!(a.ordering_key().len() <= MAX_ROUTING_KEY);
        assert_eq!(a.ordering_key(), a.clone().ordering_key());
        assert_ne!(a.ordering_key(), b.ordering_key());
        // Short keys stay readable.
        assert_eq!(
            sample().ordering_key(),
            format!("{}/{}", sample().tenant, sample().conversation.id)
        );
    }
}
