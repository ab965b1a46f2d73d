//! Webhook event objects as LINE builds them.

use std::time::Instant;

use serde_json::{Value, json};

use super::Guest;
use super::state::{LineState, ReplyToken, User, message_id, ulid_like};
use crate::recording::lock;

pub(crate) fn text(text: &str) -> Value {
    json!({"id": message_id(), "type": "text", "text": text,
           "quoteToken": uuid::Uuid::new_v4().simple().to_string()})
}

pub(crate) fn image(id: &str) -> Value {
    json!({"id": id, "type": "image", "contentProvider": {"type": "line"},
           "quoteToken": uuid::Uuid::new_v4().simple().to_string()})
}

pub(crate) fn file(id: &str, file_name: &str, size: u64) -> Value {
    json!({"id": id, "type": "file", "fileName": file_name, "fileSize": size})
}

pub(crate) fn location(title: &str, latitude: f64, longitude: f64) -> Value {
    json!({"id": message_id(), "type": "location", "title": title,
           "address": format!("{latitude}, {longitude}"), "latitude": latitude, "longitude": longitude})
}

pub(crate) fn sticker(package_id: &str, sticker_id: &str) -> Value {
    json!({"id": message_id(), "type": "sticker", "packageId": package_id, "stickerId": sticker_id,
           "stickerResourceType": "STATIC", "keywords": ["hello"]})
}

fn remember_user(state: &LineState, guest: &Guest) {
    lock(&state.users)
        .entry(guest.user_id.clone())
        .or_insert_with(|| User {
            display_name: guest.display_name.clone(),
            language: guest.language.clone(),
            picture_url: guest.picture_url.clone(),
            blocked: false,
        });
}

fn reply_token(state: &LineState, channel_id: &str, target: &str) -> String {
    let token = uuid::Uuid::new_v4().simple().to_string();
    lock(&state.reply_tokens).insert(
        token.clone(),
        ReplyToken {
            channel_id: channel_id.to_owned(),
            target: target.to_owned(),
            issued: Instant::now(),
            used: false,
        },
    );
    token
}

fn base(kind: &str, guest: &Guest) -> Value {
    json!({
        "type": kind,
        "mode": "active",
        "timestamp": chrono::Utc::now().timestamp_millis(),
        "source": {"type": "user", "userId": guest.user_id},
        "webhookEventId": ulid_like(),
        "deliveryContext": {"isRedelivery": false},
    })
}

pub(crate) fn message(state: &LineState, channel_id: &str, guest: &Guest, message: Value) -> Value {
    remember_user(state, guest);
    let mut event = base("message", guest);
    event["replyToken"] = json!(reply_token(state, channel_id, &guest.user_id));
    event["message"] = message;
    event
}

pub(crate) fn postback(state: &LineState, channel_id: &str, guest: &Guest, data: &str) -> Value {
    remember_user(state, guest);
    let mut event = base("postback", guest);
    event["replyToken"] = json!(reply_token(state, channel_id, &guest.user_id));
    event["postback"] = json!({ "data": data });
    event
}

/// `follow` (with a reply token and `follow.isUnblocked`) or `unfollow`.
pub(crate) fn follow(state: &LineState, channel_id: &str, guest: &Guest, follow: bool) -> Value {
    remember_user(state, guest);
    if follow {
        let mut event = base("follow", guest);
        event["replyToken"] = json!(reply_token(state, channel_id, &guest.user_id));
        event["follow"] = json!({"isUnblocked": true});
        event
    } else {
        base("unfollow", guest)
    }
}
