//! Inbound activities → envelopes (pure).
//!
//! `message` activities become a message (text, files, inline images) or a
//! button response (an Adaptive Card `Action.Submit`, or the text of a
//! suggested action the connector offered). Other activity types
//! (`conversationUpdate`, `invoke`, typing, reactions) yield no envelope.
//! Files and inline images are not handed over as Teams URLs (a download
//! URL is pre-authenticated, an inline image needs the bot token): each
//! becomes a [`MediaSource`] the connector remembers and re-serves under a
//! signed media URL.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use um_config::{Platform, TenantConfig};

use super::types::{Activity, ChannelAccount, ConversationRef, Scope};
use crate::machinery::envelope::{
    Attachment, Body, ButtonKind, ButtonResponse, Content, Conversation, ENVELOPE_VERSION,
    Envelope, Guest, MediaType, QuickReply,
};
use crate::platform::{InboundEvent, event_envelope_id};

/// Keys of the `Action.Submit` data the connector's own cards carry.
pub const SUBMIT_QUICK_REPLY: &str = "umQuickReply";
pub const SUBMIT_BUTTON: &str = "umButton";
pub const SUBMIT_TEXT: &str = "umText";

pub const FILE_DOWNLOAD_INFO: &str = "application/vnd.microsoft.teams.file.download.info";

/// Where the bytes of one inbound file are, kept by the connector only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaSource {
    pub media_ref: String,
    pub url: String,
    pub mime: String,
    /// Inline images are served by the channel and need the bot token; a
    /// file's download URL is pre-authenticated and gets none.
    pub with_bot_token: bool,
    /// The activity's `serviceUrl`: the bot token goes only to its origin.
    pub service_url: String,
}

/// What one activity means for the connector.
#[derive(Debug, Default, PartialEq)]
pub struct Inbound {
    pub events: Vec<InboundEvent>,
    pub media: Vec<MediaSource>,
    /// Where replies to this conversation go.
    pub conversation: Option<ConversationRef>,
}

/// The scope of an activity's conversation.
pub fn scope(activity: &Activity) -> Scope {
    Scope::from_conversation_type(activity.conversation.conversation_type.as_deref())
}

/// The reference replies need, from any verified activity with a sender.
pub fn conversation_ref(activity: &Activity) -> Option<ConversationRef> {
    let bot = activity.recipient.clone()?;
    let user = activity.from.clone().unwrap_or_default();
    Some(ConversationRef {
        service_url: activity.service_url.clone(),
        conversation_id: activity.conversation.id.clone(),
        scope: scope(activity),
        bot,
        user,
        tenant_id: tenant_id(activity),
    })
}

fn tenant_id(activity: &Activity) -> Option<String> {
    activity.conversation.tenant_id.clone().or_else(|| {
        activity
            .channel_data
            .as_ref()
            .and_then(|data| data.tenant.as_ref())
            .and_then(|tenant| tenant.id.clone())
    })
}

/// A stable media reference for attachment `index` of an activity.
pub fn media_ref(activity: &Activity, index: usize) -> String {
    let digest = Sha256::digest(
        format!(
            "{}\n{}\n{index}",
            activity.conversation.id,
            activity.id.as_deref().unwrap_or_default()
        )
        .as_bytes(),
    );
    hex::encode(&digest[..16])
}

/// Removes the bot's own `<at>Name</at>` mention (group and channel
/// messages start with it) and unwraps other mentions to their names.
pub fn strip_mentions(text: &str, bot: Option<&ChannelAccount>) -> String {
    let bot_name = bot.and_then(|b| b.name.as_deref());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<at>") {
        let Some(len) = rest[start..].find("</at>") else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = &rest[start + 4..start + len];
        if Some(name) != bot_name {
            out.push_str(name);
        }
        rest = &rest[start + len + 5..];
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn mime_from_name(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "zip" => "application/zip",
        _ => return None,
    })
}

fn media_type(mime: &str) -> MediaType {
    match mime.split('/').next() {
        Some("image") => MediaType::Image,
        Some("video") => MediaType::Video,
        Some("audio") => MediaType::Audio,
        _ => MediaType::File,
    }
}

/// The files and inline images of a message, as envelope attachments
/// under `media_url(ref)` and the sources behind them.
fn attachments(
    activity: &Activity,
    media_url: &dyn Fn(&str) -> String,
) -> (Vec<Attachment>, Vec<MediaSource>) {
    let mut found = Vec::new();
    let mut sources = Vec::new();
    for (index, attachment) in activity.attachments.iter().enumerate() {
        let kind = attachment.content_type.as_str();
        let (url, mime, with_bot_token) = if kind == FILE_DOWNLOAD_INFO {
            let content = attachment.content.as_ref();
            let Some(url) = content
                .and_then(|c| c.get("downloadUrl"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let by_name = attachment.name.as_deref().and_then(mime_from_name);
            let by_type = content
                .and_then(|c| c.get("fileType"))
                .and_then(Value::as_str)
                .and_then(|t| mime_from_name(&format!("f.{t}")));
            let mime = by_name.or(by_type).unwrap_or("application/octet-stream");
            (url.to_owned(), mime.to_owned(), false)
        } else if ["image/", "video/", "audio/"]
            .iter()
            .any(|prefix| kind.starts_with(prefix))
        {
            let Some(url) = &attachment.content_url else {
                continue;
            };
            (url.clone(), kind.to_owned(), true)
        } else {
            // text/html copies of the text, cards echoed back, ...
            continue;
        };
        let reference = media_ref(activity, index);
        found.push(Attachment {
            media_type: media_type(&mime),
            url: media_url(&reference),
            mime: mime.clone(),
            filename: attachment.name.clone(),
            size_bytes: None,
            caption: None,
            sha256: None,
        });
        sources.push(MediaSource {
            media_ref: reference,
            url,
            mime,
            with_bot_token,
            service_url: activity.service_url.clone(),
        });
    }
    (found, sources)
}

/// A button response from `Action.Submit` data.
fn submitted(value: &Value) -> ButtonResponse {
    let text_of = |v: &Value| {
        v.get(SUBMIT_TEXT)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let Some(payload) = value.get(SUBMIT_QUICK_REPLY).and_then(Value::as_str) {
        return ButtonResponse {
            kind: ButtonKind::QuickReply,
            text: text_of(value).unwrap_or_else(|| payload.to_owned()),
            payload: payload.to_owned(),
            originating_message_id: None,
        };
    }
    if let Some(payload) = value.get(SUBMIT_BUTTON).and_then(Value::as_str) {
        return ButtonResponse {
            kind: ButtonKind::Button,
            text: text_of(value).unwrap_or_else(|| payload.to_owned()),
            payload: payload.to_owned(),
            originating_message_id: None,
        };
    }
    // A card an agent sent natively: its data is the payload.
    let payload = value.to_string();
    ButtonResponse {
        kind: ButtonKind::Button,
        text: payload.clone(),
        payload,
        originating_message_id: None,
    }
}

fn custom_data(activity: &Activity) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    data.insert("teamsScope".to_owned(), scope(activity).as_str().to_owned());
    if let Some(tenant) = tenant_id(activity) {
        data.insert("teamsTenantId".to_owned(), tenant);
    }
    if let Some(aad) = activity.from.as_ref().and_then(|f| f.aad_object_id.clone()) {
        data.insert("aadObjectId".to_owned(), aad);
    }
    if let Some(channel_data) = &activity.channel_data {
        if let Some(team) = channel_data.team.as_ref().and_then(|t| t.name.clone()) {
            data.insert("teamsTeam".to_owned(), team);
        }
        if let Some(channel) = channel_data.channel.as_ref().and_then(|c| c.name.clone()) {
            data.insert("teamsChannel".to_owned(), channel);
        }
    }
    data
}

/// Translates a verified activity. `offered` are the quick replies the
/// connector last offered this conversation as suggested actions (their
/// tap arrives as the plain text of the title).
pub fn from_activity(
    activity: &Activity,
    tenant: &TenantConfig,
    offered: &[QuickReply],
    media_url: &dyn Fn(&str) -> String,
    now: DateTime<Utc>,
) -> Inbound {
    let conversation = conversation_ref(activity);
    if activity.kind != "message" {
        return Inbound {
            conversation,
            ..Inbound::default()
        };
    }
    let Some(from) = &activity.from else {
        return Inbound::default();
    };
    let text = activity
        .text
        .as_deref()
        .map(|t| strip_mentions(t, activity.recipient.as_ref()))
        .filter(|t| !t.is_empty());
    let (found, media) = attachments(activity, media_url);
    let body = if let Some(value) = activity.value.as_ref().filter(|v| v.is_object()) {
        Body::ButtonResponse(submitted(value))
    } else if let Some(reply) = text
        .as_deref()
        .and_then(|t| offered.iter().find(|q| q.text == t))
        .filter(|_| found.is_empty())
    {
        Body::ButtonResponse(ButtonResponse {
            kind: ButtonKind::QuickReply,
            text: reply.text.clone(),
            payload: reply.payload.clone(),
            originating_message_id: None,
        })
    } else if text.is_some() || !found.is_empty() {
        Body::Message(Content {
            text,
            attachments: found,
            ..Content::default()
        })
    } else {
        return Inbound {
            conversation,
            ..Inbound::default()
        };
    };
    let event_id = activity
        .id
        .as_ref()
        .map(|id| format!("{}/{id}", activity.conversation.id));
    let time = activity
        .timestamp
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(now, |t| t.with_timezone(&Utc));
    let envelope = Envelope {
        v: ENVELOPE_VERSION,
        id: event_id.as_deref().map_or_else(
            || uuid::Uuid::new_v4().to_string(),
            |id| event_envelope_id(Platform::Teams, &tenant.key, id),
        ),
        tenant: tenant.key.clone(),
        platform: Platform::Teams,
        direction: crate::machinery::envelope::Direction::GuestToAgent,
        time,
        conversation: Conversation {
            id: activity.conversation.id.clone(),
            guest: Guest {
                id: from.id.clone(),
                nickname: from.name.clone(),
                locale: activity.locale.clone(),
                ..Guest::default()
            },
            cx_conversation_id: None,
        },
        body,
        custom_data: custom_data(activity),
        origin_id: activity.id.clone(),
        traceparent: None,
    };
    Inbound {
        events: vec![InboundEvent {
            dedup_key: event_id.map(|id| format!("activity:{id}")),
            envelope,
        }],
        media,
        conversation,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn tenant() -> TenantConfig {
        TenantConfig::new(
            "shop.acme",
            "ACME",
            Platform::Teams,
            "https://um.example/teams/shop.acme",
        )
    }

    fn activity(extra: Value) -> Activity {
        let mut base = json!({
            "type": "message", "id": "1700000000001", "timestamp": "2026-11-24T10:00:00.000Z",
            "serviceUrl": "https://smba.trafficmanager.net/amer/", "channelId": "msteams",
            "from": {"id": "29:1abc", "name": "Megan Bowen", "aadObjectId": "aad-1"},
            "conversation": {"id": "a:1personal", "conversationType": "personal", "tenantId": "t-1"},
            "recipient": {"id": "28:app-1", "name": "ACME Bot"},
            "locale": "en-US",
            "channelData": {"tenant": {"id": "t-1"}}
        });
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn url(reference: &str) -> String {
        format!("https://um.example/teams/shop.acme/media/{reference}?sig=x")
    }

    fn translate(activity: &Activity, offered: &[QuickReply]) -> Inbound {
        from_activity(activity, &tenant(), offered, &url, Utc::now())
    }

    #[test]
    fn a_text_message_becomes_one_deduplicated_envelope() {
        let inbound = translate(&activity(json!({"text": "Hello there"})), &[]);
        assert_eq!(inbound.events.len(), 1);
        let event = &inbound.events[0];
        assert_eq!(
            event.dedup_key.as_deref(),
            Some("activity:a:1personal/1700000000001")
        );
        let envelope = &event.envelope;
        assert_eq!(envelope.conversation.id, "a:1personal");
        assert_eq!(envelope.conversation.guest.id, "29:1abc");
        assert_eq!(
            envelope.conversation.guest.nickname.as_deref(),
            Some("Megan Bowen")
        );
        assert_eq!(envelope.custom_data["teamsScope"], "personal");
        assert_eq!(envelope.custom_data["teamsTenantId"], "t-1");
        assert_eq!(envelope.custom_data["aadObjectId"], "aad-1");
        assert_eq!(envelope.time.to_rfc3339(), "2026-11-24T10:00:00+00:00");
        let Body::Message(content) = &envelope.body else {
            panic!("{:?}", envelope.body)
        };
        assert_eq!(content.text.as_deref(), Some("Hello there"));
        // The same activity again has the same envelope id.
        let again = translate(&activity(json!({"text": "Hello there"})), &[]);
        assert_eq!(again.events[0].envelope.id, envelope.id);
        let reference = inbound.conversation.unwrap();
        assert_eq!(reference.bot.id, "28:app-1");
        assert_eq!(reference.scope, Scope::Personal);
    }

    #[test]
    fn the_bot_mention_is_removed_in_channels() {
        let inbound = translate(
            &activity(
                json!({"text": "<at>ACME Bot</at> ask <at>Adele</at> please",
                "conversation": {"id": "19:abc@thread.tacv2;messageid=1", "conversationType": "channel"},
                "channelData": {"team": {"id": "19:t", "name": "Sales"}, "channel": {"id": "19:c", "name": "General"}}}),
            ),
            &[],
        );
        let envelope = &inbound.events[0].envelope;
        let Body::Message(content) = &envelope.body else {
            panic!()
        };
        assert_eq!(content.text.as_deref(), Some("ask Adele please"));
        assert_eq!(envelope.custom_data["teamsScope"], "channel");
        assert_eq!(envelope.custom_data["teamsTeam"], "Sales");
        assert_eq!(envelope.custom_data["teamsChannel"], "General");
    }

    #[test]
    fn files_and_inline_images_are_re_served() {
        let inbound = translate(
            &activity(json!({"attachments": [
                {"contentType": FILE_DOWNLOAD_INFO, "name": "report.pdf",
                 "content": {"downloadUrl": "https://tenant.sharepoint.com/x?tempauth=SECRET", "fileType": "pdf"}},
                {"contentType": "image/png", "contentUrl": "https://smba.trafficmanager.net/amer/v3/attachments/1/views/original"},
                {"contentType": "text/html", "content": "<p>x</p>"}
            ]})),
            &[],
        );
        let Body::Message(content) = &inbound.events[0].envelope.body else {
            panic!()
        };
        assert_eq!(content.attachments.len(), 2);
        assert_eq!(content.attachments[0].media_type, MediaType::File);
        assert_eq!(content.attachments[0].mime, "application/pdf");
        assert_eq!(
            content.attachments[0].filename.as_deref(),
            Some("report.pdf")
        );
        assert_eq!(content.attachments[1].media_type, MediaType::Image);
        for attachment in &content.attachments {
            assert!(attachment.url.starts_with("https://um.example/"));
            assert!(!attachment.url.contains("tempauth"));
        }
        assert_eq!(inbound.media.len(), 2);
        assert!(!inbound.media[0].with_bot_token);
        assert!(inbound.media[1].with_bot_token);
        assert_ne!(inbound.media[0].media_ref, inbound.media[1].media_ref);
        assert!(
            content.attachments[0]
                .url
                .contains(&inbound.media[0].media_ref)
        );
    }

    #[test]
    fn submits_and_offered_quick_replies_are_button_responses() {
        let quick = translate(
            &activity(json!({"value": {SUBMIT_QUICK_REPLY: "help-yes", SUBMIT_TEXT: "Yes"}})),
            &[],
        );
        assert_eq!(
            quick.events[0].envelope.body,
            Body::ButtonResponse(ButtonResponse {
                kind: ButtonKind::QuickReply,
                text: "Yes".into(),
                payload: "help-yes".into(),
                originating_message_id: None
            })
        );
        let button = translate(
            &activity(json!({"value": {SUBMIT_BUTTON: "buy-42", SUBMIT_TEXT: "Buy"}})),
            &[],
        );
        let Body::ButtonResponse(response) = &button.events[0].envelope.body else {
            panic!()
        };
        assert_eq!(
            (response.kind, response.payload.as_str()),
            (ButtonKind::Button, "buy-42")
        );

        let offered = [QuickReply {
            text: "No".into(),
            payload: "help-no".into(),
            image_url: None,
        }];
        let tapped = translate(&activity(json!({"text": "No"})), &offered);
        let Body::ButtonResponse(response) = &tapped.events[0].envelope.body else {
            panic!()
        };
        assert_eq!(
            (response.kind, response.payload.as_str()),
            (ButtonKind::QuickReply, "help-no")
        );
        let typed = translate(&activity(json!({"text": "Nope"})), &offered);
        assert!(matches!(typed.events[0].envelope.body, Body::Message(_)));
    }

    #[test]
    fn other_activities_yield_no_envelope_but_a_reference() {
        let update = translate(
            &activity(json!({"type": "conversationUpdate",
            "membersAdded": [{"id": "28:app-1"}]})),
            &[],
        );
        assert!(update.events.is_empty());
        assert!(update.conversation.is_some());
        let empty = translate(&activity(json!({"text": "<at>ACME Bot</at>"})), &[]);
        assert!(empty.events.is_empty());
    }
}
