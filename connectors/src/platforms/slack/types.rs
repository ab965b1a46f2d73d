//! Slack Events API, interactivity and Web API shapes (only the fields the
//! bridge reads; Slack adds fields freely).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The outer JSON of an Events API request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventsRequest {
    UrlVerification {
        challenge: String,
    },
    EventCallback(Box<EventCallback>),
    /// Slack stopped sending events for a while (over 30 000 per hour).
    AppRateLimited {
        #[serde(default)]
        minute_rate_limited: Option<i64>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventCallback {
    pub team_id: String,
    #[serde(default)]
    pub api_app_id: Option<String>,
    #[serde(default)]
    pub enterprise_id: Option<String>,
    pub event: Value,
    /// Unique per event across retries: the de-duplication key.
    pub event_id: String,
    #[serde(default)]
    pub event_time: Option<i64>,
    #[serde(default)]
    pub authorizations: Vec<Authorization>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Authorization {
    #[serde(default)]
    pub enterprise_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub is_bot: bool,
}

/// A `message` event (`message.im`, `message.channels`, ...).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageEvent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub bot_id: Option<String>,
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    pub channel: String,
    #[serde(default)]
    pub channel_type: Option<String>,
    pub ts: String,
    #[serde(default)]
    pub thread_ts: Option<String>,
    #[serde(default)]
    pub files: Vec<SlackFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlackFile {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub mimetype: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    /// Needs the bot token to download: never handed on.
    #[serde(default)]
    pub url_private: Option<String>,
    #[serde(default)]
    pub url_private_download: Option<String>,
}

/// `payload` of an interactivity request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InteractionPayload {
    #[serde(rename = "type")]
    pub kind: String,
    pub team: Option<IdName>,
    pub user: Option<InteractionUser>,
    #[serde(default)]
    pub enterprise: Option<IdName>,
    #[serde(default)]
    pub channel: Option<IdName>,
    #[serde(default)]
    pub container: Option<Container>,
    #[serde(default)]
    pub trigger_id: Option<String>,
    #[serde(default)]
    pub actions: Vec<BlockAction>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IdName {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InteractionUser {
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Container {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub channel_id: Option<String>,
    #[serde(default)]
    pub message_ts: Option<String>,
    /// The thread's parent when the tapped message is a thread reply.
    #[serde(default)]
    pub thread_ts: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BlockAction {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub action_id: Option<String>,
    #[serde(default)]
    pub block_id: Option<String>,
    #[serde(default)]
    pub text: Option<TextObject>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub action_ts: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextObject {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
}

/// Every Web API answer: `ok`, and `error` when not.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ApiAnswer {
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// `oauth.v2.access` answer of a bot install.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OAuthAccess {
    pub access_token: String,
    #[serde(default)]
    pub bot_user_id: Option<String>,
    #[serde(default)]
    pub app_id: Option<String>,
    pub team: IdName,
    #[serde(default)]
    pub enterprise: Option<IdName>,
}
