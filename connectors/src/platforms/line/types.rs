//! LINE Messaging API wire types (the subset the bridge reads). Unknown
//! fields are ignored so new webhook properties keep parsing, as LINE asks
//! of bots ("non-breaking additions without notice").

use serde::{Deserialize, Serialize};

/// The webhook body: `{destination, events: [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookBody {
    /// User id of the bot that received the events.
    #[serde(default)]
    pub destination: String,
    #[serde(default)]
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    /// ULID, stable across redeliveries: the de-duplication key.
    #[serde(default)]
    pub webhook_event_id: String,
    #[serde(default)]
    pub delivery_context: Option<DeliveryContext>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default)]
    pub source: Option<Source>,
    #[serde(default)]
    pub reply_token: Option<String>,
    /// `active`, or `standby` while another channel module owns the chat.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub postback: Option<Postback>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryContext {
    #[serde(default)]
    pub is_redelivery: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// `user`, `group` or `room`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub group_id: Option<String>,
    #[serde(default)]
    pub room_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    /// `text`, `image`, `video`, `audio`, `file`, `location`, `sticker`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub content_provider: Option<ContentProvider>,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub file_size: Option<u64>,
    #[serde(default)]
    pub duration: Option<u64>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
    #[serde(default)]
    pub package_id: Option<String>,
    #[serde(default)]
    pub sticker_id: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentProvider {
    /// `line`: fetch from the content API; `external`: the URLs below.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub original_content_url: Option<String>,
    #[serde(default)]
    pub preview_image_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Postback {
    #[serde(default)]
    pub data: String,
}

/// Error answer of every Messaging API endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
    /// On a 409 for an already accepted retry key: what was sent then.
    #[serde(default)]
    pub sent_messages: Vec<SentMessage>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub property: String,
}

/// Answer of reply and push: `{sentMessages: [{id, quoteToken}]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendAnswer {
    #[serde(default)]
    pub sent_messages: Vec<SentMessage>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentMessage {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub quote_token: Option<String>,
}

/// `GET /v2/bot/profile/{userId}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub picture_url: Option<String>,
    /// BCP 47 language tag, only when the user consented to share it.
    #[serde(default)]
    pub language: Option<String>,
}

/// `POST /v2/oauth/accessToken` (client credentials).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IssuedToken {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: u64,
}

/// `GET /v2/bot/info`: the bot behind the channel access token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BotInfo {
    #[serde(default)]
    pub user_id: String,
    /// `@` and 8 characters, e.g. `@123abcde`; what the add-friend link names.
    #[serde(default)]
    pub basic_id: String,
    /// A purchased vanity id (`@shop`), when the account has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premium_id: Option<String>,
    #[serde(default)]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
}
