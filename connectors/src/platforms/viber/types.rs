//! Viber REST Bot API wire types (the subset the bridge reads). Unknown
//! fields are ignored so new API versions keep parsing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Viber user as callbacks describe it (`sender` of `message`, `user` of
/// `subscribed` and `conversation_started`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ViberUser {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// ISO 3166 alpha-2 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The phone's language (ISO 639-1, sometimes with a region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViberLocation {
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViberContact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// `message` of a `message` callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InMessage {
    /// text, picture, video, file, location, contact, sticker, url.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Public, expiring URL of the media (or the URL of a `url` message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<ViberLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<ViberContact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticker_id: Option<i64>,
    /// What the bot sent with its last message to this user, echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_data: Option<String>,
}

/// Every callback Viber posts to the webhook; `event` says which fields
/// are present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    /// webhook, message, subscribed, unsubscribed, conversation_started,
    /// delivered, seen, failed.
    pub event: String,
    /// Epoch milliseconds.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// A 64-bit number; kept as JSON so no digit is lost.
    #[serde(default)]
    pub message_token: Option<Value>,
    #[serde(default)]
    pub sender: Option<ViberUser>,
    #[serde(default)]
    pub user: Option<ViberUser>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub message: Option<InMessage>,
    #[serde(default)]
    pub desc: Option<String>,
}

impl Callback {
    /// `message_token` as text (Viber sends it as a JSON number).
    pub fn token(&self) -> Option<String> {
        match self.message_token.as_ref()? {
            Value::Number(number) => Some(number.to_string()),
            Value::String(text) if !text.is_empty() => Some(text.clone()),
            _ => None,
        }
    }
}

/// `get_user_details` → `user`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserDetails {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_device_os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<u32>,
}

/// The common answer of every `/pa/` method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub status: i64,
    #[serde(default)]
    pub status_message: String,
    #[serde(default)]
    pub message_token: Option<Value>,
    #[serde(default)]
    pub user: Option<UserDetails>,
}
