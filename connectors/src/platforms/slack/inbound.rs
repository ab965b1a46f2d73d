//! Verified Slack requests → envelopes (pure).
//!
//! Files are not fetched here: `media_url` turns a file into a URL of the
//! connector (signed, expiring), because Slack's `url_private` only answers
//! with the workspace's bot token, which must not leave the connector.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::Value;
use um_config::{Platform, TenantConfig};

use super::types::{EventCallback, EventsRequest, InteractionPayload, MessageEvent, SlackFile};
use crate::machinery::envelope::{
    Attachment, Body, ButtonKind, ButtonResponse, Content, Conversation, Direction,
    ENVELOPE_VERSION, Envelope, Guest, MediaType,
};
use crate::platform::{InboundEvent, event_envelope_id};

/// `action_id` prefix of quick-reply buttons ([`super::outbound`]).
pub const QUICK_REPLY_ACTION: &str = "um-qr:";
/// `action_id` prefix of card postback buttons.
pub const CARD_ACTION: &str = "um-card:";
/// `action_id` prefix of card link buttons (their taps are not relayed).
pub const LINK_ACTION: &str = "um-link:";

/// What a verified request body is.
#[derive(Debug, Clone, PartialEq)]
pub enum SlackRequest {
    UrlVerification {
        challenge: String,
    },
    Event(Box<EventCallback>),
    Interaction(Box<InteractionPayload>),
    /// Verified, understood, nothing to relay (`app_rate_limited`, ...).
    Ignored(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not an Events API request: {0}")]
    Json(String),
    #[error("interactivity request without a `payload` field")]
    NoPayload,
    #[error("interactivity payload is not JSON: {0}")]
    Payload(String),
}

/// Reads an Events API body (JSON) or an interactivity body (form-encoded
/// `payload=<json>`), told apart by the content type.
pub fn parse_request(content_type: Option<&str>, body: &[u8]) -> Result<SlackRequest, ParseError> {
    let form = content_type.is_some_and(|t| {
        t.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if form {
        let payload = url::form_urlencoded::parse(body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| value.into_owned())
            .ok_or(ParseError::NoPayload)?;
        let payload: InteractionPayload =
            serde_json::from_str(&payload).map_err(|e| ParseError::Payload(e.to_string()))?;
        return Ok(SlackRequest::Interaction(Box::new(payload)));
    }
    let request: EventsRequest =
        serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    Ok(match request {
        EventsRequest::UrlVerification { challenge } => SlackRequest::UrlVerification { challenge },
        EventsRequest::EventCallback(callback) => SlackRequest::Event(callback),
        EventsRequest::AppRateLimited { .. } => SlackRequest::Ignored("app_rate_limited"),
        EventsRequest::Other => SlackRequest::Ignored("unknown request type"),
    })
}

/// The workspace a request came from, for custom data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workspace {
    pub team_id: String,
    pub team_name: Option<String>,
    pub enterprise_id: Option<String>,
    pub enterprise_name: Option<String>,
}

/// What `users.info` tells about a guest.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub nickname: Option<String>,
    pub real_name: Option<String>,
    pub email: Option<String>,
    pub avatar_url: Option<String>,
    pub locale: Option<String>,
}

impl Profile {
    /// Fills the guest's names (the id stays).
    pub fn apply(&self, guest: &mut Guest) {
        if let Some(nickname) = &self.nickname {
            guest.nickname = Some(nickname.clone());
        }
        if let Some(real_name) = &self.real_name {
            let mut parts = real_name.splitn(2, ' ');
            guest.first_name = parts.next().map(str::to_owned).filter(|n| !n.is_empty());
            guest.last_name = parts.next().map(str::to_owned).filter(|n| !n.is_empty());
        }
        guest.email = self.email.clone().or(guest.email.take());
        guest.avatar_url = self.avatar_url.clone().or(guest.avatar_url.take());
        guest.locale = self.locale.clone().or(guest.locale.take());
    }
}

/// The profile in a `users.info` `user` object.
pub fn profile_of(user: &Value) -> Option<Profile> {
    let text = |value: &Value| value.as_str().map(str::to_owned).filter(|s| !s.is_empty());
    let profile = &user["profile"];
    let real_name = text(&profile["real_name"]).or_else(|| text(&user["real_name"]));
    Some(Profile {
        nickname: text(&profile["display_name"])
            .or_else(|| real_name.clone())
            .or_else(|| text(&user["name"])),
        real_name,
        email: text(&profile["email"]),
        avatar_url: text(&profile["image_192"]).or_else(|| text(&profile["image_72"])),
        locale: text(&user["locale"]),
    })
    .filter(|p| p.nickname.is_some())
}

/// Conversation id of a Slack channel: the team picks the bot token.
pub fn conversation_id(team_id: &str, channel: &str) -> String {
    format!("{team_id}:{channel}")
}

/// The team and channel of a conversation id.
pub fn split_conversation_id(id: &str) -> Option<(&str, &str)> {
    id.split_once(':')
        .filter(|(team, channel)| !team.is_empty() && !channel.is_empty())
}

/// A private file of a workspace, as named in a media URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    pub team_id: String,
    /// `url_private(_download)`: answers only with the workspace's token.
    pub url: String,
    /// The file's type as the event declared it, when it did.
    pub mime: Option<String>,
}

/// Media reference of a private file URL:
/// `<team>.<base64url(url)>[.<base64url(mimetype)>]`. The machinery signs
/// it, so a reference cannot be forged to fetch another URL with the bot
/// token. The declared type lets the download tell a shared HTML file from
/// Slack's HTML sign-in page.
pub fn media_ref(team_id: &str, url: &str, mime: Option<&str>) -> String {
    let mut reference = format!("{team_id}.{}", URL_SAFE_NO_PAD.encode(url));
    if let Some(mime) = mime.filter(|m| !m.is_empty()) {
        reference.push('.');
        reference.push_str(&URL_SAFE_NO_PAD.encode(mime));
    }
    reference
}

/// The parts of a [`media_ref`] (also of the older `<team>.<url>` form).
pub fn parse_media_ref(media_ref: &str) -> Option<MediaRef> {
    let decode = |encoded: &str| {
        URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    };
    let mut parts = media_ref.split('.');
    let team_id = parts.next().filter(|t| !t.is_empty())?.to_owned();
    let url = decode(parts.next()?)?;
    let mime = match parts.next() {
        Some(encoded) => Some(decode(encoded)?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(MediaRef { team_id, url, mime })
}

fn custom_data(workspace: &Workspace) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([
        (
            "media".to_owned(),
            Platform::Slack.display_name().to_owned(),
        ),
        ("workspaceId".to_owned(), workspace.team_id.clone()),
    ]);
    let optional = [
        ("workspaceName", &workspace.team_name),
        ("enterpriseId", &workspace.enterprise_id),
        ("enterpriseName", &workspace.enterprise_name),
    ];
    for (key, value) in optional {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            data.insert(key.to_owned(), value.clone());
        }
    }
    data
}

/// Slack escapes `&`, `<` and `>` in message text.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn media_type(mime: &str) -> MediaType {
    match mime.split('/').next().unwrap_or("") {
        "image" => MediaType::Image,
        "video" => MediaType::Video,
        "audio" => MediaType::Audio,
        _ => MediaType::File,
    }
}

fn attachment(
    file: &SlackFile,
    team_id: &str,
    media_url: &dyn Fn(&str) -> String,
) -> Option<Attachment> {
    let url = file
        .url_private_download
        .as_deref()
        .or(file.url_private.as_deref())?;
    let mime = file
        .mimetype
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    Some(Attachment {
        media_type: media_type(&mime),
        url: media_url(&media_ref(team_id, url, file.mimetype.as_deref())),
        mime,
        filename: file.name.clone(),
        size_bytes: file.size,
        caption: None,
        sha256: None,
    })
}

/// Why an event is not relayed, for the debug log.
fn skip_reason(
    event: &MessageEvent,
    callback: &EventCallback,
    own_app: Option<&str>,
) -> Option<&'static str> {
    if event.kind != "message" {
        return Some("not a message event");
    }
    // Our own messages come back as events: relaying them would loop.
    if event.bot_id.is_some() || event.subtype.as_deref() == Some("bot_message") {
        return Some("bot message");
    }
    if own_app.is_some() && event.app_id.as_deref() == own_app {
        return Some("message of this app");
    }
    if let Some(subtype) = event.subtype.as_deref()
        && subtype != "file_share"
    {
        return Some("message subtype not relayed (edits, joins, ...)");
    }
    if event.user.is_none() {
        return Some("message without a user");
    }
    let bot_users: Vec<&str> = callback
        .authorizations
        .iter()
        .filter(|a| a.is_bot)
        .filter_map(|a| a.user_id.as_deref())
        .collect();
    if event
        .user
        .as_deref()
        .is_some_and(|user| bot_users.contains(&user))
    {
        return Some("message of the bot user");
    }
    None
}

fn time_of_ts(ts: &str, fallback: DateTime<Utc>) -> DateTime<Utc> {
    let (seconds, fraction) = ts.split_once('.').unwrap_or((ts, "0"));
    let Ok(seconds) = seconds.parse::<i64>() else {
        return fallback;
    };
    let micros: u32 = format!("{fraction:0<6}")[..6].parse().unwrap_or(0);
    DateTime::from_timestamp(seconds, micros * 1000).unwrap_or(fallback)
}

/// What happened to the app in a workspace, from its lifecycle events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// `app_uninstalled`: every token of the workspace is gone.
    AppUninstalled,
    /// `tokens_revoked` naming the bot user: the bot token is gone.
    BotTokenRevoked,
}

impl Lifecycle {
    pub fn event_type(self) -> &'static str {
        match self {
            Lifecycle::AppUninstalled => "app_uninstalled",
            Lifecycle::BotTokenRevoked => "tokens_revoked",
        }
    }
}

/// The lifecycle event in a callback, if it is one that ends the bot's
/// access. `tokens_revoked` for user tokens only is not: the bridge holds
/// bot tokens alone.
pub fn lifecycle_of(callback: &EventCallback) -> Option<Lifecycle> {
    match callback.event.get("type").and_then(Value::as_str)? {
        "app_uninstalled" => Some(Lifecycle::AppUninstalled),
        "tokens_revoked" => callback.event["tokens"]["bot"]
            .as_array()
            .is_some_and(|bots| !bots.is_empty())
            .then_some(Lifecycle::BotTokenRevoked),
        _ => None,
    }
}

/// A guest's message and where in the channel it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestMessage {
    pub event: InboundEvent,
    /// The parent `ts` when the message is a reply in a thread: the agent's
    /// replies go there. `None`: written in the channel itself.
    pub thread_ts: Option<String>,
}

/// The thread a message event is a reply in. A parent carries its own `ts`
/// as `thread_ts` once it has replies; it is not inside a thread.
fn thread_of(event: &MessageEvent) -> Option<String> {
    event
        .thread_ts
        .clone()
        .filter(|thread| !thread.is_empty() && *thread != event.ts)
}

/// The thread of the message a button was tapped on.
pub fn interaction_thread(payload: &InteractionPayload) -> Option<String> {
    payload
        .container
        .as_ref()
        .and_then(|c| c.thread_ts.clone())
        .filter(|thread| !thread.is_empty())
}

/// One `event_callback` → at most one guest message. `Err` only when the
/// event says it is a message but is not shaped like one.
pub fn from_event(
    callback: &EventCallback,
    tenant: &TenantConfig,
    workspace: &Workspace,
    own_app: Option<&str>,
    now: DateTime<Utc>,
    media_url: &dyn Fn(&str) -> String,
) -> Result<Option<GuestMessage>, ParseError> {
    if callback.event.get("type").and_then(Value::as_str) != Some("message") {
        return Ok(None);
    }
    let event: MessageEvent = serde_json::from_value(callback.event.clone())
        .map_err(|e| ParseError::Json(format!("message event: {e}")))?;
    if let Some(reason) = skip_reason(&event, callback, own_app) {
        tracing::debug!(event = %callback.event_id, reason, "Slack event not relayed");
        return Ok(None);
    }
    let user = event.user.clone().unwrap_or_default();
    let content = Content {
        text: event
            .text
            .as_deref()
            .map(unescape)
            .filter(|text| !text.trim().is_empty()),
        attachments: event
            .files
            .iter()
            .filter_map(|file| attachment(file, &workspace.team_id, media_url))
            .collect(),
        ..Content::default()
    };
    if content.text.is_none() && content.attachments.is_empty() {
        return Ok(None);
    }
    let thread_ts = thread_of(&event);
    let relayed = InboundEvent {
        dedup_key: Some(format!("event:{}", callback.event_id)),
        envelope: Envelope {
            v: ENVELOPE_VERSION,
            id: event_envelope_id(Platform::Slack, &tenant.key, &callback.event_id),
            tenant: tenant.key.clone(),
            platform: Platform::Slack,
            direction: Direction::GuestToAgent,
            time: time_of_ts(&event.ts, now),
            conversation: Conversation {
                id: conversation_id(&workspace.team_id, &event.channel),
                guest: Guest {
                    id: user.clone(),
                    nickname: Some(user),
                    ..Guest::default()
                },
                cx_conversation_id: None,
            },
            body: Body::Message(content),
            custom_data: custom_data(workspace),
            origin_id: Some(callback.event_id.clone()),
            traceparent: None,
        },
    };
    Ok(Some(GuestMessage {
        event: relayed,
        thread_ts,
    }))
}

/// The workspace of an interaction (the payload names team and enterprise).
pub fn interaction_workspace(payload: &InteractionPayload) -> Option<Workspace> {
    let team = payload.team.as_ref()?;
    Some(Workspace {
        team_id: team.id.clone(),
        team_name: team.name.clone(),
        enterprise_id: payload.enterprise.as_ref().map(|e| e.id.clone()),
        enterprise_name: payload.enterprise.as_ref().and_then(|e| e.name.clone()),
    })
}

/// `block_actions` → one structured response per tapped button of ours.
pub fn from_interaction(
    payload: &InteractionPayload,
    tenant: &TenantConfig,
    workspace: &Workspace,
    now: DateTime<Utc>,
) -> Vec<InboundEvent> {
    if payload.kind != "block_actions" {
        return Vec::new();
    }
    let (Some(user), Some(channel)) = (
        payload.user.as_ref(),
        payload
            .container
            .as_ref()
            .and_then(|c| c.channel_id.clone())
            .or_else(|| payload.channel.as_ref().map(|c| c.id.clone())),
    ) else {
        return Vec::new();
    };
    let trigger = payload.trigger_id.clone().unwrap_or_default();
    payload
        .actions
        .iter()
        .enumerate()
        .filter(|(_, action)| action.kind == "button")
        .filter_map(|(index, action)| {
            let action_id = action.action_id.as_deref().unwrap_or("");
            let kind = if action_id.starts_with(QUICK_REPLY_ACTION) {
                ButtonKind::QuickReply
            } else if action_id.starts_with(CARD_ACTION) {
                ButtonKind::Button
            } else {
                return None;
            };
            let payload_value = action.value.clone()?;
            let origin = format!(
                "{trigger}/{}/{index}",
                action.action_ts.as_deref().unwrap_or("")
            );
            Some(InboundEvent {
                dedup_key: Some(format!("action:{origin}")),
                envelope: Envelope {
                    v: ENVELOPE_VERSION,
                    id: event_envelope_id(Platform::Slack, &tenant.key, &origin),
                    tenant: tenant.key.clone(),
                    platform: Platform::Slack,
                    direction: Direction::GuestToAgent,
                    time: action
                        .action_ts
                        .as_deref()
                        .map_or(now, |ts| time_of_ts(ts, now)),
                    conversation: Conversation {
                        id: conversation_id(&workspace.team_id, &channel),
                        guest: Guest {
                            id: user.id.clone(),
                            nickname: user
                                .username
                                .clone()
                                .or_else(|| user.name.clone())
                                .or_else(|| Some(user.id.clone())),
                            ..Guest::default()
                        },
                        cx_conversation_id: None,
                    },
                    body: Body::ButtonResponse(ButtonResponse {
                        kind,
                        text: action
                            .text
                            .as_ref()
                            .map(|t| t.text.clone())
                            .unwrap_or_else(|| payload_value.clone()),
                        payload: payload_value,
                        originating_message_id: None,
                    }),
                    custom_data: custom_data(workspace),
                    origin_id: Some(origin),
                    traceparent: None,
                },
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;
    use um_config::MessagingConfig;

    pub(crate) fn tenant() -> TenantConfig {
        TenantConfig::new(
            "shop.acme",
            "ACME",
            Platform::Slack,
            "https://um.example/slack/shop.acme",
        )
        .with_messaging(MessagingConfig::Slack(um_config::SlackConfig {
            signing_secret: um_config::Secret::new(""),
            bot_token: um_config::Secret::new(""),
            app_id: None,
            client_id: None,
            client_secret: None,
            api_base_url: None,
        }))
    }

    fn workspace() -> Workspace {
        Workspace {
            team_id: "T0001".into(),
            team_name: Some("Acme HQ".into()),
            enterprise_id: Some("E0001".into()),
            enterprise_name: Some("Acme Corp".into()),
        }
    }

    fn callback(event: Value) -> EventCallback {
        match parse_request(
            Some("application/json"),
            json!({
                "type": "event_callback", "team_id": "T0001", "api_app_id": "A0001",
                "event": event, "event_id": "Ev0001", "event_time": 1_700_000_000,
                "authorizations": [{"team_id": "T0001", "user_id": "UBOT", "is_bot": true}]
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
        {
            SlackRequest::Event(callback) => *callback,
            other => panic!("{other:?}"),
        }
    }

    fn media_url(reference: &str) -> String {
        format!("https://um.example/slack/shop.acme/media/{reference}?sig=x")
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn url_verification_and_unknown_types() {
        let body = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        assert_eq!(
            parse_request(Some("application/json"), body).unwrap(),
            SlackRequest::UrlVerification {
                challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".into()
            }
        );
        assert_eq!(
            parse_request(
                None,
                br#"{"type":"app_rate_limited","minute_rate_limited":1}"#
            )
            .unwrap(),
            SlackRequest::Ignored("app_rate_limited")
        );
        assert!(parse_request(None, b"not json").is_err());
        assert_eq!(
            parse_request(Some("application/x-www-form-urlencoded"), b"a=b"),
            Err(ParseError::NoPayload)
        );
    }

    #[test]
    fn message_with_text_and_file() {
        let cb = callback(json!({
            "type": "message", "channel_type": "im", "user": "U0042", "channel": "D0042",
            "text": "hello &lt;there&gt; &amp; all", "ts": "1700000000.000200",
            "subtype": "file_share",
            "files": [{"id": "F1", "name": "map.png", "mimetype": "image/png", "size": 1234,
                        "url_private": "https://files.slack.com/files-pri/T0001-F1/map.png"}]
        }));
        let message = from_event(&cb, &tenant(), &workspace(), None, now(), &media_url)
            .unwrap()
            .expect("relayed");
        assert_eq!(message.thread_ts, None, "not in a thread");
        let event = message.event;
        assert_eq!(event.dedup_key.as_deref(), Some("event:Ev0001"));
        let envelope = event.envelope;
        assert_eq!(envelope.conversation.id, "T0001:D0042");
        assert_eq!(envelope.conversation.guest.id, "U0042");
        assert_eq!(
            envelope.time,
            DateTime::from_timestamp(1_700_000_000, 200_000).unwrap()
        );
        assert_eq!(
            envelope.id,
            event_envelope_id(Platform::Slack, "shop.acme", "Ev0001")
        );
        let Body::Message(content) = envelope.body else {
            panic!("not a message")
        };
        assert_eq!(content.text.as_deref(), Some("hello <there> & all"));
        let attachment = &content.attachments[0];
        assert_eq!(attachment.media_type, MediaType::Image);
        assert_eq!(attachment.mime, "image/png");
        assert!(
            !attachment.url.contains("files.slack.com"),
            "{}",
            attachment.url
        );
        let reference = attachment
            .url
            .trim_start_matches("https://um.example/slack/shop.acme/media/")
            .trim_end_matches("?sig=x");
        assert_eq!(
            parse_media_ref(reference),
            Some(MediaRef {
                team_id: "T0001".to_owned(),
                url: "https://files.slack.com/files-pri/T0001-F1/map.png".to_owned(),
                mime: Some("image/png".to_owned()),
            })
        );
        assert_eq!(envelope.custom_data["media"], "Slack");
        assert_eq!(envelope.custom_data["workspaceId"], "T0001");
        assert_eq!(envelope.custom_data["workspaceName"], "Acme HQ");
        assert_eq!(envelope.custom_data["enterpriseId"], "E0001");
        assert_eq!(envelope.custom_data["enterpriseName"], "Acme Corp");
    }

    #[test]
    fn bot_messages_edits_and_other_events_are_not_relayed() {
        let relayed = |event: Value| {
            from_event(
                &callback(event),
                &tenant(),
                &workspace(),
                Some("A0001"),
                now(),
                &media_url,
            )
            .unwrap()
            .is_some()
        };
        let base =
            json!({"type": "message", "user": "U1", "channel": "D1", "text": "hi", "ts": "1.0"});
        assert!(relayed(base.clone()));
        let mut bot = base.clone();
        bot["bot_id"] = json!("B1");
        assert!(!relayed(bot));
        let mut bot_message = base.clone();
        bot_message["subtype"] = json!("bot_message");
        assert!(!relayed(bot_message));
        let mut ours = base.clone();
        ours["app_id"] = json!("A0001");
        assert!(!relayed(ours));
        let mut edit = base.clone();
        edit["subtype"] = json!("message_changed");
        assert!(!relayed(edit));
        let mut from_bot_user = base.clone();
        from_bot_user["user"] = json!("UBOT");
        assert!(!relayed(from_bot_user));
        assert!(!relayed(
            json!({"type": "app_mention", "user": "U1", "channel": "C1", "text": "hi", "ts": "1.0"})
        ));
    }

    #[test]
    fn block_actions_become_button_responses() {
        let payload = json!({
            "type": "block_actions", "trigger_id": "13345224609.738474920.8088930838d88f008e0",
            "team": {"id": "T0001", "domain": "acme"},
            "enterprise": {"id": "E0001", "name": "Acme Corp"},
            "user": {"id": "U0042", "username": "bob", "team_id": "T0001"},
            "container": {"type": "message", "message_ts": "1.2", "channel_id": "D0042"},
            "channel": {"id": "D0042", "name": "directmessage"},
            "actions": [
                {"type": "button", "action_id": "um-qr:0", "block_id": "b",
                 "text": {"type": "plain_text", "text": "Yes"}, "value": "help-yes",
                 "action_ts": "1700000001.000300"},
                {"type": "button", "action_id": "um-link:0:0", "text": {"type": "plain_text", "text": "Site"},
                 "action_ts": "1700000001.000300"},
                {"type": "button", "action_id": "someone-else", "value": "x",
                 "text": {"type": "plain_text", "text": "X"}}
            ]
        });
        let body = format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(payload.to_string().as_bytes())
                .collect::<String>()
        );
        let SlackRequest::Interaction(payload) =
            parse_request(Some("application/x-www-form-urlencoded"), body.as_bytes()).unwrap()
        else {
            panic!("not an interaction")
        };
        let workspace = interaction_workspace(&payload).unwrap();
        assert_eq!(workspace.enterprise_name.as_deref(), Some("Acme Corp"));
        let events = from_interaction(&payload, &tenant(), &workspace, now());
        assert_eq!(events.len(), 1);
        let envelope = &events[0].envelope;
        assert_eq!(envelope.conversation.id, "T0001:D0042");
        assert_eq!(envelope.conversation.guest.nickname.as_deref(), Some("bob"));
        assert_eq!(
            envelope.body,
            Body::ButtonResponse(ButtonResponse {
                kind: ButtonKind::QuickReply,
                text: "Yes".into(),
                payload: "help-yes".into(),
                originating_message_id: None,
            })
        );
        assert!(
            events[0]
                .dedup_key
                .as_deref()
                .unwrap()
                .contains("13345224609")
        );
    }

    #[test]
    fn users_info_profile_fills_the_guest() {
        let user = json!({"id": "U1", "name": "bob", "real_name": "Bob Smith", "locale": "en-US",
            "profile": {"display_name": "bobby", "real_name": "Bob Smith", "email": "bob@example.com",
                        "image_72": "https://avatars.example/72.png"}});
        let profile = profile_of(&user).unwrap();
        let mut guest = Guest {
            id: "U1".into(),
            nickname: Some("U1".into()),
            ..Guest::default()
        };
        profile.apply(&mut guest);
        assert_eq!(guest.id, "U1");
        assert_eq!(guest.nickname.as_deref(), Some("bobby"));
        assert_eq!(
            (guest.first_name.as_deref(), guest.last_name.as_deref()),
            (Some("Bob"), Some("Smith"))
        );
        assert_eq!(guest.email.as_deref(), Some("bob@example.com"));
        assert_eq!(
            guest.avatar_url.as_deref(),
            Some("https://avatars.example/72.png")
        );
        assert_eq!(guest.locale.as_deref(), Some("en-US"));
        let no_display = json!({"id": "U2", "name": "ann", "profile": {"display_name": ""}});
        assert_eq!(
            profile_of(&no_display).unwrap().nickname.as_deref(),
            Some("ann")
        );
        assert_eq!(profile_of(&json!({"id": "U3"})), None);
    }

    #[test]
    fn conversation_and_media_refs_round_trip() {
        assert_eq!(split_conversation_id("T1:D2"), Some(("T1", "D2")));
        assert_eq!(split_conversation_id("D2"), None);
        assert_eq!(parse_media_ref("T1.%%%"), None);
        let url = "https://files.slack.com/files-pri/T1-F9/page.html?x=1";
        let with_type = media_ref("T1", url, Some("text/html"));
        assert_eq!(
            parse_media_ref(&with_type),
            Some(MediaRef {
                team_id: "T1".into(),
                url: url.into(),
                mime: Some("text/html".into()),
            })
        );
        // References signed before the type was added still resolve.
        let older = format!("T1.{}", URL_SAFE_NO_PAD.encode(url));
        assert_eq!(media_ref("T1", url, None), older);
        assert_eq!(parse_media_ref(&older).map(|r| r.mime), Some(None));
        assert_eq!(parse_media_ref(&format!("{with_type}.eA")), None);
    }

    #[test]
    fn thread_replies_name_their_thread_and_parents_do_not() {
        let thread = |event: Value| {
            from_event(
                &callback(event),
                &tenant(),
                &workspace(),
                None,
                now(),
                &media_url,
            )
            .unwrap()
            .expect("relayed")
            .thread_ts
        };
        let reply = json!({"type": "message", "user": "U1", "channel": "C1", "text": "in thread",
                           "ts": "1700000005.000100", "thread_ts": "1700000001.000100"});
        assert_eq!(thread(reply).as_deref(), Some("1700000001.000100"));
        let parent = json!({"type": "message", "user": "U1", "channel": "C1", "text": "parent",
                            "ts": "1700000001.000100", "thread_ts": "1700000001.000100"});
        assert_eq!(thread(parent), None);
        let plain =
            json!({"type": "message", "user": "U1", "channel": "D1", "text": "dm", "ts": "1.0"});
        assert_eq!(thread(plain), None);
    }

    #[test]
    fn lifecycle_events_that_end_the_bot_token() {
        let of = |event: Value| lifecycle_of(&callback(event));
        assert_eq!(
            of(json!({"type": "app_uninstalled"})),
            Some(Lifecycle::AppUninstalled)
        );
        assert_eq!(
            of(json!({"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UBOT"]}})),
            Some(Lifecycle::BotTokenRevoked)
        );
        // Only user tokens revoked: the bot token still works.
        assert_eq!(
            of(json!({"type": "tokens_revoked", "tokens": {"oauth": ["U1"]}})),
            None
        );
        assert_eq!(
            of(json!({"type": "message", "user": "U1", "channel": "D1", "ts": "1.0"})),
            None
        );
        // Not a message: nothing to relay either.
        assert!(
            from_event(
                &callback(json!({"type": "app_uninstalled"})),
                &tenant(),
                &workspace(),
                None,
                now(),
                &media_url
            )
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn taps_in_a_thread_name_it() {
        let payload: InteractionPayload = serde_json::from_value(json!({
            "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"},
            "container": {"type": "message", "message_ts": "1.5", "channel_id": "C1",
                          "thread_ts": "1.2"},
            "actions": []
        }))
        .unwrap();
        assert_eq!(interaction_thread(&payload).as_deref(), Some("1.2"));
        let top_level: InteractionPayload = serde_json::from_value(json!({
            "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"},
            "container": {"type": "message", "message_ts": "1.5", "channel_id": "C1"},
            "actions": []
        }))
        .unwrap();
        assert_eq!(interaction_thread(&top_level), None);
    }
}
