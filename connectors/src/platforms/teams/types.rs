//! Bot Framework activity types, as much as the connector reads or writes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The channel id of Microsoft Teams in activities and key endorsements.
pub const TEAMS_CHANNEL_ID: &str = "msteams";

/// An inbound activity (what the Bot Framework channel posts to the bot).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    pub service_url: String,
    pub channel_id: String,
    #[serde(default)]
    pub from: Option<ChannelAccount>,
    pub conversation: ConversationAccount,
    #[serde(default)]
    pub recipient: Option<ChannelAccount>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Data of an Adaptive Card `Action.Submit` (or an invoke's payload).
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub channel_data: Option<ChannelData>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelAccount {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aad_object_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationAccount {
    pub id: String,
    /// `personal`, `groupChat` or `channel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelData {
    #[serde(default)]
    pub tenant: Option<IdName>,
    #[serde(default)]
    pub team: Option<IdName>,
    #[serde(default)]
    pub channel: Option<IdName>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdName {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// The Teams conversation scope, which decides how quick replies render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    Personal,
    GroupChat,
    Channel,
}

impl Scope {
    /// Teams omits `conversationType` in some older activities: personal.
    pub fn from_conversation_type(kind: Option<&str>) -> Self {
        match kind {
            Some("groupChat") => Scope::GroupChat,
            Some("channel") => Scope::Channel,
            _ => Scope::Personal,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Personal => "personal",
            Scope::GroupChat => "groupChat",
            Scope::Channel => "channel",
        }
    }
}

/// What a reply needs to know about a conversation, remembered from the
/// last verified inbound activity of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationRef {
    pub service_url: String,
    pub conversation_id: String,
    pub scope: Scope,
    /// The bot's account in this conversation (`recipient` of the inbound).
    pub bot: ChannelAccount,
    /// The guest who wrote last.
    pub user: ChannelAccount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// The answer of `POST /v3/conversations/{id}/activities`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResourceResponse {
    #[serde(default)]
    pub id: Option<String>,
}

/// A Bot Framework error body: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorResponse {
    #[serde(default)]
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}
