//! Envelope → Telegram Bot API calls (pure).
//!
//! One agent message can take several calls (text longer than 4096
//! characters, several attachments, cards). Nothing is truncated silently:
//! long text is split at line or word boundaries, a caption that does not fit
//! travels as its own text message, and what Telegram cannot carry is
//! refused with a reason the Failed receipt reports.

use serde_json::{Value, json};
use um_config::MessagingOptions;

use super::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup, ReplyMarkup,
};
use crate::machinery::envelope::{
    Attachment, Body, Card, CardAction, Content, Direction, Envelope, MediaType, QuickReply,
    ReasonCode,
};
use crate::machinery::text::{self, TextUnit};

/// Text limit of `sendMessage`, in UTF-16 code units as Telegram counts.
pub const MAX_TEXT: usize = 4096;
/// Caption limit of `sendPhoto` and friends.
pub const MAX_CAPTION: usize = 1024;
/// Limit of `callback_data`, in bytes.
pub const MAX_CALLBACK_DATA: usize = 64;
/// Marks the `callback_data` of a card's postback button, so the tap comes
/// back to Genesys as a `Button` response rather than a `QuickReply`
/// (Telegram echoes only the data, and both are inline buttons).
pub const CARD_CALLBACK_PREFIX: &str = "um:b:";

/// One Bot API call: `POST <base>/bot<token>/<method>` with a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct BotCall {
    pub method: &'static str,
    pub body: Value,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ToTelegramError {
    #[error("envelope {id}: {what}")]
    Refused {
        id: String,
        reason: ReasonCode,
        what: String,
    },
}

impl ToTelegramError {
    pub fn reason(&self) -> ReasonCode {
        match self {
            ToTelegramError::Refused { reason, .. } => *reason,
        }
    }
}

fn telegram_len(text: &str) -> usize {
    TextUnit::Utf16.len(text)
}

fn split_text(text: &str, limit: usize) -> Vec<String> {
    text::split_text(text, limit, TextUnit::Utf16)
}

fn markup_value(markup: &ReplyMarkup) -> Value {
    serde_json::to_value(markup).unwrap_or(Value::Null)
}

/// Quick replies as an inline keyboard (taps come back as callback queries,
/// relayed as structured responses) when every payload fits in
/// `callback_data`; otherwise a one-time reply keyboard, whose tap comes
/// back as the label in a plain text message.
pub fn quick_reply_markup(replies: &[QuickReply]) -> ReplyMarkup {
    if replies
        .iter()
        .all(|reply| !reply.payload.is_empty() && reply.payload.len() <= MAX_CALLBACK_DATA)
    {
        ReplyMarkup::Inline(InlineKeyboardMarkup {
            inline_keyboard: replies
                .iter()
                .map(|reply| {
                    vec![InlineKeyboardButton {
                        text: reply.text.clone(),
                        callback_data: Some(reply.payload.clone()),
                        url: None,
                    }]
                })
                .collect(),
        })
    } else {
        ReplyMarkup::Keyboard(ReplyKeyboardMarkup {
            keyboard: replies
                .iter()
                .map(|reply| {
                    vec![KeyboardButton {
                        text: reply.text.clone(),
                    }]
                })
                .collect(),
            one_time_keyboard: true,
            resize_keyboard: true,
        })
    }
}

fn card_markup(envelope_id: &str, card: &Card) -> Result<Option<ReplyMarkup>, ToTelegramError> {
    let mut rows = Vec::new();
    for action in &card.actions {
        let button = match action {
            CardAction::Link { text, url } => InlineKeyboardButton {
                text: text.clone(),
                callback_data: None,
                url: Some(url.clone()),
            },
            CardAction::Postback { text, payload } => {
                let data = format!("{CARD_CALLBACK_PREFIX}{payload}");
                if data.len() > MAX_CALLBACK_DATA {
                    return Err(ToTelegramError::Refused {
                        id: envelope_id.to_owned(),
                        reason: ReasonCode::InvalidMessageStructure,
                        what: format!(
                            "card button {text:?} has a payload of {} bytes; Telegram callback data holds at most {} after the card marker",
                            payload.len(),
                            MAX_CALLBACK_DATA - CARD_CALLBACK_PREFIX.len()
                        ),
                    });
                }
                InlineKeyboardButton {
                    text: text.clone(),
                    callback_data: Some(data),
                    url: None,
                }
            }
        };
        rows.push(vec![button]);
    }
    Ok(
        (!rows.is_empty()).then_some(ReplyMarkup::Inline(InlineKeyboardMarkup {
            inline_keyboard: rows,
        })),
    )
}

fn send_method(attachment: &Attachment) -> Option<(&'static str, &'static str)> {
    match attachment.media_type {
        MediaType::Image if attachment.mime == "image/gif" => Some(("sendAnimation", "animation")),
        MediaType::Image => Some(("sendPhoto", "photo")),
        MediaType::Video => Some(("sendVideo", "video")),
        // Telegram plays OGG/Opus as a voice note; other audio as a track.
        MediaType::Audio if attachment.mime.starts_with("audio/ogg") => {
            Some(("sendVoice", "voice"))
        }
        MediaType::Audio => Some(("sendAudio", "audio")),
        MediaType::File => Some(("sendDocument", "document")),
        MediaType::Link => None,
    }
}

struct CallBuilder<'a> {
    chat_id: &'a str,
    calls: Vec<BotCall>,
}

impl CallBuilder<'_> {
    fn text(&mut self, text: &str) {
        for piece in split_text(text, MAX_TEXT) {
            self.calls.push(BotCall {
                method: "sendMessage",
                body: json!({"chat_id": self.chat_id, "text": piece}),
            });
        }
    }

    /// A file by URL, with its caption when it fits, else caption after.
    fn file(&mut self, method: &'static str, field: &str, url: &str, caption: Option<&str>) {
        let mut body = json!({"chat_id": self.chat_id, field: url});
        let mut caption_after = None;
        if let Some(caption) = caption.filter(|c| !c.is_empty()) {
            if telegram_len(caption) <= MAX_CAPTION {
                body["caption"] = json!(caption);
            } else {
                caption_after = Some(caption);
            }
        }
        self.calls.push(BotCall { method, body });
        if let Some(caption) = caption_after {
            self.text(caption);
        }
    }

    fn attach_markup(&mut self, markup: &ReplyMarkup, prompt: &str) {
        match self.calls.last_mut() {
            Some(call) if call.method != "sendChatAction" && call.body.get("reply_markup").is_none() => {
                call.body["reply_markup"] = markup_value(markup);
            }
            _ => self.calls.push(BotCall {
                method: "sendMessage",
                body: json!({"chat_id": self.chat_id, "text": prompt, "reply_markup": markup_value(markup)}),
            }),
        }
    }
}

fn prefixed(agent_name: Option<&str>, options: &MessagingOptions, text: &str) -> String {
    match agent_name.filter(|name| options.prefix_agent_name && !name.is_empty()) {
        Some(name) => format!("{name}: {text}"),
        None => text.to_owned(),
    }
}

/// Native payload: `{"method": "<Bot API method>", ...params}`; the chat is
/// always the conversation's.
fn native_call(
    envelope_id: &str,
    chat_id: &str,
    native: &Value,
) -> Result<BotCall, ToTelegramError> {
    const ALLOWED: [&str; 12] = [
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendVideo",
        "sendAudio",
        "sendVoice",
        "sendAnimation",
        "sendLocation",
        "sendVenue",
        "sendContact",
        "sendSticker",
        "sendPoll",
    ];
    let refuse = |what: String| ToTelegramError::Refused {
        id: envelope_id.to_owned(),
        reason: ReasonCode::InvalidMessageStructure,
        what,
    };
    let method = native
        .get("method")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("native Telegram payload has no \"method\"".to_owned()))?;
    let method = ALLOWED
        .into_iter()
        .find(|allowed| *allowed == method)
        .ok_or_else(|| refuse(format!("native Telegram method {method:?} is not allowed")))?;
    let mut body = native.clone();
    if let Some(object) = body.as_object_mut() {
        object.remove("method");
        object.insert("chat_id".to_owned(), json!(chat_id));
    }
    Ok(BotCall { method, body })
}

fn content_calls(
    envelope: &Envelope,
    content: &Content,
    options: &MessagingOptions,
) -> Result<Vec<BotCall>, ToTelegramError> {
    let chat_id = envelope.conversation.id.as_str();
    if let Some(native) = &content.native {
        return Ok(vec![native_call(&envelope.id, chat_id, native)?]);
    }
    let agent = content.agent_name.as_deref();
    let mut builder = CallBuilder {
        chat_id,
        calls: Vec::new(),
    };
    let files: Vec<&Attachment> = content
        .attachments
        .iter()
        .filter(|a| send_method(a).is_some())
        .collect();
    let links: Vec<&Attachment> = content
        .attachments
        .iter()
        .filter(|a| send_method(a).is_none())
        .collect();

    let mut text = content.text.clone().filter(|t| !t.is_empty());
    // The common case, one file with a short text: the text is its caption.
    let text_as_caption = files.len() == 1
        && files[0].caption.is_none()
        && text
            .as_deref()
            .is_some_and(|t| telegram_len(&prefixed(agent, options, t)) <= MAX_CAPTION);
    let mut prefix_pending = true;
    if !text_as_caption && let Some(body) = text.take() {
        builder.text(&prefixed(agent, options, &body));
        prefix_pending = false;
    }
    for attachment in &files {
        let Some((method, field)) = send_method(attachment) else {
            continue;
        };
        let caption = attachment.caption.clone().or_else(|| text.take());
        let caption = match caption {
            Some(caption) if prefix_pending => {
                prefix_pending = false;
                Some(prefixed(agent, options, &caption))
            }
            other => other,
        };
        builder.file(method, field, &attachment.url, caption.as_deref());
    }
    for link in links {
        let line = match &link.caption {
            Some(caption) => format!("{caption}\n{}", link.url),
            None => link.url.clone(),
        };
        builder.text(&line);
    }
    if let Some(location) = &content.location {
        let call = match (&location.title, &location.address) {
            (Some(title), Some(address)) => BotCall {
                method: "sendVenue",
                body: json!({"chat_id": chat_id, "latitude": location.latitude,
                             "longitude": location.longitude, "title": title, "address": address}),
            },
            _ => BotCall {
                method: "sendLocation",
                body: json!({"chat_id": chat_id, "latitude": location.latitude,
                             "longitude": location.longitude}),
            },
        };
        builder.calls.push(call);
    }
    if let Some(sticker) = &content.sticker {
        builder.calls.push(BotCall {
            method: "sendSticker",
            body: json!({"chat_id": chat_id, "sticker": sticker.id}),
        });
    }
    if let Some(contact) = &content.contact
        && let Some(phone) = &contact.phone
    {
        builder.calls.push(BotCall {
            method: "sendContact",
            body: json!({"chat_id": chat_id, "phone_number": phone,
                         "first_name": contact.name.clone().unwrap_or_default()}),
        });
    }
    for card in &content.cards {
        let markup = card_markup(&envelope.id, card)?;
        let caption = match &card.description {
            Some(description) => format!("{}\n{description}", card.title),
            None => card.title.clone(),
        };
        match &card.image_url {
            Some(image) => builder.file("sendPhoto", "photo", image, Some(&caption)),
            None => builder.text(&caption),
        }
        if let Some(markup) = markup {
            // The buttons belong to the card's own message.
            builder.attach_markup(&markup, &card.title);
        }
    }
    if !content.quick_replies.is_empty() {
        builder.attach_markup(&quick_reply_markup(&content.quick_replies), "\u{2193}");
    }
    if builder.calls.is_empty() {
        return Err(ToTelegramError::Refused {
            id: envelope.id.clone(),
            reason: ReasonCode::UnsupportedMessage,
            what: "the message has nothing Telegram can show".to_owned(),
        });
    }
    Ok(builder.calls)
}

/// The Bot API calls that deliver `envelope`, in order.
pub fn to_telegram(
    envelope: &Envelope,
    options: &MessagingOptions,
) -> Result<Vec<BotCall>, ToTelegramError> {
    if envelope.direction != Direction::AgentToGuest {
        return Err(ToTelegramError::Refused {
            id: envelope.id.clone(),
            reason: ReasonCode::UnsupportedMessage,
            what: "only agent-to-guest envelopes are sent to Telegram".to_owned(),
        });
    }
    match &envelope.body {
        Body::Message(content) => content_calls(envelope, content, options),
        Body::Typing { .. } => Ok(vec![BotCall {
            method: "sendChatAction",
            body: json!({"chat_id": envelope.conversation.id, "action": "typing"}),
        }]),
        Body::ButtonResponse(_) | Body::Receipt(_) => Err(ToTelegramError::Refused {
            id: envelope.id.clone(),
            reason: ReasonCode::UnsupportedMessage,
            what: "button responses and receipts do not go to the guest".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machinery::envelope::Location;
    use um_config::Platform;

    fn envelope(content: Content) -> Envelope {
        crate::machinery::envelope::fixtures::agent_message(
            Platform::Telegram,
            "shop.acme:gc:m1",
            "42",
            content,
        )
    }

    fn text(text: &str) -> Content {
        Content {
            text: Some(text.into()),
            ..Content::default()
        }
    }

    fn image(url: &str) -> Attachment {
        Attachment {
            media_type: MediaType::Image,
            url: url.into(),
            mime: "image/png".into(),
            filename: None,
            size_bytes: None,
            caption: None,
            sha256: None,
        }
    }

    fn calls(content: Content) -> Vec<BotCall> {
        to_telegram(&envelope(content), &MessagingOptions::default()).unwrap()
    }

    #[test]
    fn plain_text() {
        assert_eq!(
            calls(text("hi")),
            vec![BotCall {
                method: "sendMessage",
                body: json!({"chat_id": "42", "text": "hi"})
            }]
        );
    }

    #[test]
    fn agent_name_prefix_only_when_enabled() {
        let mut content = text("hi");
        content.agent_name = Some("Alice".into());
        assert_eq!(calls(content.clone())[0].body["text"], "hi");
        let options = MessagingOptions {
            prefix_agent_name: true,
            ..MessagingOptions::default()
        };
        let calls = to_telegram(&envelope(content), &options).unwrap();
        assert_eq!(calls[0].body["text"], "Alice: hi");
    }

    #[test]
    fn long_text_is_split_not_truncated() {
        let long = format!("{}\n{}", "a".repeat(4000), "b ".repeat(300));
        let calls = calls(text(&long));
        assert_eq!(calls.len(), 2);
        let joined: String = calls
            .iter()
            .map(|call| call.body["text"].as_str().unwrap())
            .collect();
        assert_eq!(joined, long);
        assert!(
            calls
                .iter()
                .all(|call| telegram_len(call.body["text"].as_str().unwrap()) <= MAX_TEXT)
        );
        assert!(calls[0].body["text"].as_str().unwrap().ends_with('\n'));
    }

    #[test]
    fn split_counts_utf16_and_keeps_chars_whole() {
        // Each emoji is two UTF-16 units.
        let emoji = "😀".repeat(3000);
        let pieces = split_text(&emoji, MAX_TEXT);
        assert_eq!(pieces.len(), 2);
        assert_eq!(telegram_len(&pieces[0]), 4096);
        assert_eq!(pieces.concat(), emoji);
    }

    #[test]
    fn image_with_short_text_uses_caption() {
        let mut content = text("our map");
        content.attachments.push(image("https://dl/a.png"));
        assert_eq!(
            calls(content),
            vec![BotCall {
                method: "sendPhoto",
                body: json!({"chat_id": "42", "photo": "https://dl/a.png", "caption": "our map"})
            }]
        );
    }

    #[test]
    fn long_caption_goes_as_text() {
        let mut attachment = image("https://dl/a.png");
        attachment.caption = Some("c".repeat(1500));
        let calls = calls(Content {
            attachments: vec![attachment],
            ..Content::default()
        });
        assert_eq!(calls.len(), 2);
        assert!(calls[0].body.get("caption").is_none());
        assert_eq!(calls[1].method, "sendMessage");
        assert_eq!(calls[1].body["text"].as_str().unwrap().len(), 1500);
    }

    #[test]
    fn attachments_by_media_type() {
        let mut document = image("https://dl/a.pdf");
        document.media_type = MediaType::File;
        let mut video = image("https://dl/v.mp4");
        video.media_type = MediaType::Video;
        let mut voice = image("https://dl/v.ogg");
        voice.media_type = MediaType::Audio;
        voice.mime = "audio/ogg".into();
        let mut song = image("https://dl/s.mp3");
        song.media_type = MediaType::Audio;
        song.mime = "audio/mpeg".into();
        let mut link = image("https://example.com/page");
        link.media_type = MediaType::Link;
        let methods: Vec<(&str, Value)> = calls(Content {
            text: Some("files".into()),
            attachments: vec![document, video, voice, song, link],
            ..Content::default()
        })
        .into_iter()
        .map(|call| (call.method, call.body))
        .collect();
        assert_eq!(
            methods[0],
            ("sendMessage", json!({"chat_id": "42", "text": "files"}))
        );
        assert_eq!(methods[1].0, "sendDocument");
        assert_eq!(methods[1].1["document"], "https://dl/a.pdf");
        assert_eq!(methods[2].0, "sendVideo");
        assert_eq!(methods[3].0, "sendVoice");
        assert_eq!(methods[4].0, "sendAudio");
        assert_eq!(
            methods[5],
            (
                "sendMessage",
                json!({"chat_id": "42", "text": "https://example.com/page"})
            )
        );
    }

    #[test]
    fn quick_replies_become_inline_keyboard_on_the_prompt() {
        let content = Content {
            text: Some("Pick one".into()),
            quick_replies: vec![
                QuickReply {
                    text: "Yes".into(),
                    payload: "y".into(),
                    image_url: None,
                },
                QuickReply {
                    text: "No".into(),
                    payload: "n".into(),
                    image_url: None,
                },
            ],
            ..Content::default()
        };
        assert_eq!(
            calls(content),
            vec![BotCall {
                method: "sendMessage",
                body: json!({"chat_id": "42", "text": "Pick one", "reply_markup": {"inline_keyboard": [
                    [{"text": "Yes", "callback_data": "y"}], [{"text": "No", "callback_data": "n"}]]}})
            }]
        );
    }

    #[test]
    fn long_payloads_fall_back_to_reply_keyboard() {
        let markup = quick_reply_markup(&[
            QuickReply {
                text: "Yes".into(),
                payload: "y".repeat(65),
                image_url: None,
            },
            QuickReply {
                text: "No".into(),
                payload: "n".into(),
                image_url: None,
            },
        ]);
        assert_eq!(
            markup_value(&markup),
            json!({"keyboard": [[{"text": "Yes"}], [{"text": "No"}]], "one_time_keyboard": true, "resize_keyboard": true})
        );
        // 64 bytes, multi-byte characters counted as bytes.
        let fits = quick_reply_markup(&[QuickReply {
            text: "é".into(),
            payload: "é".repeat(32),
            image_url: None,
        }]);
        assert!(matches!(fits, ReplyMarkup::Inline(_)));
        let too_long = quick_reply_markup(&[QuickReply {
            text: "é".into(),
            payload: "é".repeat(33),
            image_url: None,
        }]);
        assert!(matches!(too_long, ReplyMarkup::Keyboard(_)));
    }

    #[test]
    fn card_is_photo_with_buttons() {
        let content = Content {
            cards: vec![Card {
                title: "Shoe".into(),
                description: Some("Red".into()),
                image_url: Some("https://img/s.png".into()),
                actions: vec![
                    CardAction::Link {
                        text: "Buy".into(),
                        url: "https://shop/s".into(),
                    },
                    CardAction::Postback {
                        text: "More".into(),
                        payload: "more".into(),
                    },
                ],
            }],
            ..Content::default()
        };
        assert_eq!(
            calls(content),
            vec![BotCall {
                method: "sendPhoto",
                body: json!({"chat_id": "42", "photo": "https://img/s.png", "caption": "Shoe\nRed",
                    "reply_markup": {"inline_keyboard": [[{"text": "Buy", "url": "https://shop/s"}],
                                                          [{"text": "More", "callback_data": "um:b:more"}]]}})
            }]
        );
    }

    #[test]
    fn card_with_oversized_postback_is_refused() {
        let content = Content {
            cards: vec![Card {
                title: "Shoe".into(),
                description: None,
                image_url: None,
                actions: vec![CardAction::Postback {
                    text: "More".into(),
                    payload: "x".repeat(65),
                }],
            }],
            ..Content::default()
        };
        let error = to_telegram(&envelope(content), &MessagingOptions::default()).unwrap_err();
        assert_eq!(error.reason(), ReasonCode::InvalidMessageStructure);
    }

    #[test]
    fn carousel_and_quick_replies_do_not_share_a_keyboard() {
        let card = Card {
            title: "A".into(),
            description: None,
            image_url: None,
            actions: vec![CardAction::Postback {
                text: "Pick".into(),
                payload: "a".into(),
            }],
        };
        let calls = calls(Content {
            cards: vec![card.clone(), card],
            quick_replies: vec![QuickReply {
                text: "Done".into(),
                payload: "done".into(),
                image_url: None,
            }],
            ..Content::default()
        });
        assert_eq!(calls.len(), 3);
        assert_eq!(
            calls[2].body["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
            "done"
        );
    }

    #[test]
    fn location_and_typing() {
        let calls = calls(Content {
            location: Some(Location {
                latitude: 1.5,
                longitude: 2.5,
                title: None,
                address: None,
            }),
            ..Content::default()
        });
        assert_eq!(calls[0].method, "sendLocation");
        assert_eq!(calls[0].body["latitude"], 1.5);

        let mut typing = envelope(Content::default());
        typing.body = Body::Typing { duration_ms: None };
        let calls = to_telegram(&typing, &MessagingOptions::default()).unwrap();
        assert_eq!(
            calls[0],
            BotCall {
                method: "sendChatAction",
                body: json!({"chat_id": "42", "action": "typing"})
            }
        );
    }

    #[test]
    fn native_payload_passes_through_with_the_chat() {
        let calls = calls(Content {
            native: Some(
                json!({"method": "sendPoll", "question": "Q?", "options": ["a", "b"], "chat_id": "999"}),
            ),
            ..Content::default()
        });
        assert_eq!(calls[0].method, "sendPoll");
        assert_eq!(
            calls[0].body,
            json!({"chat_id": "42", "question": "Q?", "options": ["a", "b"]})
        );
        let error = to_telegram(
            &envelope(Content {
                native: Some(json!({"method": "deleteWebhook"})),
                ..Content::default()
            }),
            &MessagingOptions::default(),
        )
        .unwrap_err();
        assert_eq!(error.reason(), ReasonCode::InvalidMessageStructure);
    }

    #[test]
    fn empty_message_is_refused_and_guest_direction_too() {
        let error =
            to_telegram(&envelope(Content::default()), &MessagingOptions::default()).unwrap_err();
        assert_eq!(error.reason(), ReasonCode::UnsupportedMessage);
        let mut inbound = envelope(text("x"));
        inbound.direction = Direction::GuestToAgent;
        assert!(to_telegram(&inbound, &MessagingOptions::default()).is_err());
    }
}
