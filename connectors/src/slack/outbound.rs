//! Envelope → Slack Web API calls (pure).
//!
//! Text goes as `chat.postMessage` `text`; quick replies become an `actions`
//! block of buttons, cards (and carousels) `section` blocks with their
//! image and an `actions` block, images `image` blocks; other files are
//! uploaded (`files.getUploadURLExternal` → upload → `files
//! .completeUploadExternal`). Nothing is truncated: long text is split,
//! what Block Kit cannot hold is refused with a reason.

use serde_json::{Value, json};
use um_config::MessagingOptions;

use super::inbound::{CARD_ACTION, LINK_ACTION, QUICK_REPLY_ACTION};
use crate::envelope::{
    Attachment, Body, Card, CardAction, Content, Envelope, MediaType, ReasonCode,
};
use crate::text::{self, TextUnit};

/// Slack refuses (`msg_too_long`) message text over 40 000 characters.
pub const MAX_TEXT: usize = 40_000;
/// Text of a `section` block.
pub const MAX_SECTION_TEXT: usize = 3000;
/// Text of a button.
pub const MAX_BUTTON_TEXT: usize = 75;
/// `value` of a button.
pub const MAX_BUTTON_VALUE: usize = 2000;
/// Elements of one `actions` block.
pub const MAX_ACTIONS: usize = 25;
/// Blocks of one message.
pub const MAX_BLOCKS: usize = 50;

/// One call to make for an envelope, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SlackCall {
    /// `chat.postMessage` with this JSON body (channel included).
    PostMessage(Value),
    /// Fetch `url` and upload it into the channel.
    UploadFile {
        channel: String,
        url: String,
        filename: String,
        mime: String,
        title: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("envelope {id}: {what}")]
pub struct Refused {
    pub id: String,
    pub reason: ReasonCode,
    pub what: String,
}

/// Escapes the three characters Slack's text formatting reserves.
fn split_text(text: &str, limit: usize) -> Vec<String> {
    text::split_text(text, limit, TextUnit::Chars)
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Builder<'a> {
    envelope: &'a Envelope,
    channel: &'a str,
}

impl Builder<'_> {
    fn refuse(&self, what: String) -> Refused {
        Refused {
            id: self.envelope.id.clone(),
            reason: ReasonCode::InvalidMessageStructure,
            what,
        }
    }

    fn button(&self, text: &str, action_id: String) -> Result<Value, Refused> {
        let length = text.chars().count();
        if length == 0 || length > MAX_BUTTON_TEXT {
            return Err(self.refuse(format!(
                "button text {text:?} has {length} characters; Slack takes 1 to {MAX_BUTTON_TEXT}"
            )));
        }
        Ok(json!({
            "type": "button",
            "text": {"type": "plain_text", "text": text, "emoji": true},
            "action_id": action_id,
        }))
    }

    fn postback(&self, text: &str, payload: &str, action_id: String) -> Result<Value, Refused> {
        let length = payload.chars().count();
        if length == 0 || length > MAX_BUTTON_VALUE {
            return Err(self.refuse(format!(
                "button {text:?} has a payload of {length} characters; Slack takes 1 to {MAX_BUTTON_VALUE}"
            )));
        }
        let mut button = self.button(text, action_id)?;
        button["value"] = json!(payload);
        Ok(button)
    }

    fn actions_blocks(&self, buttons: Vec<Value>, blocks: &mut Vec<Value>) {
        for chunk in buttons.chunks(MAX_ACTIONS) {
            blocks.push(json!({"type": "actions", "elements": chunk}));
        }
    }

    fn card_blocks(
        &self,
        index: usize,
        card: &Card,
        blocks: &mut Vec<Value>,
    ) -> Result<(), Refused> {
        let mut text = format!("*{}*", escape(&card.title));
        if let Some(description) = card.description.as_deref().filter(|d| !d.is_empty()) {
            text.push('\n');
            text.push_str(&escape(description));
        }
        if text.chars().count() > MAX_SECTION_TEXT {
            return Err(self.refuse(format!(
                "card {:?} has more than {MAX_SECTION_TEXT} characters of title and description",
                card.title
            )));
        }
        let mut section = json!({"type": "section", "text": {"type": "mrkdwn", "text": text}});
        if let Some(image) = card.image_url.as_deref().filter(|u| !u.is_empty()) {
            section["accessory"] =
                json!({"type": "image", "image_url": image, "alt_text": card.title});
        }
        blocks.push(section);
        let mut buttons = Vec::new();
        for (n, action) in card.actions.iter().enumerate() {
            buttons.push(match action {
                CardAction::Postback { text, payload } => {
                    self.postback(text, payload, format!("{CARD_ACTION}{index}:{n}"))?
                }
                CardAction::Link { text, url } => {
                    let mut button = self.button(text, format!("{LINK_ACTION}{index}:{n}"))?;
                    button["url"] = json!(url);
                    button
                }
            });
        }
        self.actions_blocks(buttons, blocks);
        Ok(())
    }

    fn post(&self, text: &str, blocks: Option<Vec<Value>>) -> SlackCall {
        let mut body = json!({"channel": self.channel, "text": text});
        if let Some(blocks) = blocks {
            body["blocks"] = Value::Array(blocks);
        }
        SlackCall::PostMessage(body)
    }
}

fn is_uploaded(attachment: &Attachment) -> bool {
    matches!(
        attachment.media_type,
        MediaType::File | MediaType::Video | MediaType::Audio
    )
}

fn filename(attachment: &Attachment) -> String {
    attachment
        .filename
        .clone()
        .filter(|f| !f.is_empty())
        .or_else(|| {
            let path = attachment.url.split(['?', '#']).next().unwrap_or("");
            path.rsplit('/')
                .next()
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "file".to_owned())
}

fn content_calls(
    builder: &Builder<'_>,
    content: &Content,
    options: &MessagingOptions,
) -> Result<Vec<SlackCall>, Refused> {
    if let Some(native) = &content.native {
        let Some(object) = native.as_object() else {
            return Err(builder.refuse("native Slack payload is not a JSON object".to_owned()));
        };
        let mut body = Value::Object(object.clone());
        body["channel"] = json!(builder.channel);
        return Ok(vec![SlackCall::PostMessage(body)]);
    }
    let agent = content
        .agent_name
        .as_deref()
        .filter(|name| options.prefix_agent_name && !name.is_empty());
    let text = content
        .text
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(|t| match agent {
            Some(name) => format!("{name}: {t}"),
            None => t.to_owned(),
        });
    let mut calls = Vec::new();
    let mut blocks = Vec::new();
    let mut text_lines: Vec<String> = text.iter().map(|t| escape(t)).collect();
    for link in content
        .attachments
        .iter()
        .filter(|a| a.media_type == MediaType::Link)
    {
        text_lines.push(match &link.caption {
            Some(caption) => format!("<{}|{}>", link.url, escape(caption)),
            None => format!("<{}>", link.url),
        });
    }
    let message_text = text_lines.join("\n");
    let images: Vec<&Attachment> = content
        .attachments
        .iter()
        .filter(|a| a.media_type == MediaType::Image)
        .collect();
    let widgets =
        !images.is_empty() || !content.quick_replies.is_empty() || !content.cards.is_empty();
    if !widgets {
        for piece in split_text(&message_text, MAX_TEXT) {
            calls.push(builder.post(&piece, None));
        }
    } else {
        // The text heads the blocks when it fits a section; else it goes
        // first as plain messages.
        if message_text.chars().count() > MAX_SECTION_TEXT {
            for piece in split_text(&message_text, MAX_TEXT) {
                calls.push(builder.post(&piece, None));
            }
        } else if !message_text.is_empty() {
            blocks
                .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": message_text}}));
        }
        for image in &images {
            let alt = image
                .caption
                .clone()
                .or_else(|| image.filename.clone())
                .unwrap_or_else(|| "image".to_owned());
            blocks.push(json!({"type": "image", "image_url": image.url, "alt_text": alt}));
        }
        for (index, card) in content.cards.iter().enumerate() {
            if index > 0 {
                blocks.push(json!({"type": "divider"}));
            }
            builder.card_blocks(index, card, &mut blocks)?;
        }
        if !content.quick_replies.is_empty() {
            let buttons = content
                .quick_replies
                .iter()
                .enumerate()
                .map(|(n, reply)| {
                    builder.postback(
                        &reply.text,
                        &reply.payload,
                        format!("{QUICK_REPLY_ACTION}{n}"),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            builder.actions_blocks(buttons, &mut blocks);
        }
        if blocks.len() > MAX_BLOCKS {
            return Err(builder.refuse(format!(
                "the message needs {} Block Kit blocks; Slack takes at most {MAX_BLOCKS}",
                blocks.len()
            )));
        }
        // `text` is the notification and screen-reader fallback of blocks.
        let fallback = if message_text.is_empty() || message_text.chars().count() > MAX_SECTION_TEXT
        {
            content
                .cards
                .first()
                .map(|card| escape(&card.title))
                .or_else(|| images.first().map(|_| "Image".to_owned()))
                .unwrap_or_else(|| "Choose an option".to_owned())
        } else {
            message_text.clone()
        };
        calls.push(builder.post(&fallback, Some(blocks)));
    }
    for attachment in content.attachments.iter().filter(|a| is_uploaded(a)) {
        calls.push(SlackCall::UploadFile {
            channel: builder.channel.to_owned(),
            url: attachment.url.clone(),
            filename: filename(attachment),
            mime: attachment.mime.clone(),
            title: attachment.caption.clone(),
        });
    }
    if calls.is_empty() {
        return Err(Refused {
            id: builder.envelope.id.clone(),
            reason: ReasonCode::UnsupportedMessage,
            what: "nothing Slack can show (no text, file or widget)".to_owned(),
        });
    }
    Ok(calls)
}

/// The calls for one agent → guest envelope to `channel`. Typing and
/// receipts need none (Slack has no bot typing indicator on the Web API).
pub fn to_slack(
    envelope: &Envelope,
    channel: &str,
    options: &MessagingOptions,
) -> Result<Vec<SlackCall>, Refused> {
    let builder = Builder { envelope, channel };
    match &envelope.body {
        Body::Message(content) => content_calls(&builder, content, options),
        Body::Typing { .. } | Body::Receipt(_) => Ok(Vec::new()),
        Body::ButtonResponse(response) => Ok(vec![builder.post(&escape(&response.text), None)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Conversation, Direction, ENVELOPE_VERSION, Guest, QuickReply};
    use chrono::Utc;
    use um_config::Platform;

    fn envelope(content: Content) -> Envelope {
        Envelope {
            v: ENVELOPE_VERSION,
            id: "e1".into(),
            tenant: "shop.acme".into(),
            platform: Platform::Slack,
            direction: Direction::AgentToGuest,
            time: Utc::now(),
            conversation: Conversation {
                id: "T1:D1".into(),
                guest: Guest::default(),
                cx_conversation_id: None,
            },
            body: Body::Message(content),
            custom_data: Default::default(),
            origin_id: Some("g1".into()),
            traceparent: None,
        }
    }

    fn calls(content: Content) -> Vec<SlackCall> {
        to_slack(&envelope(content), "D1", &MessagingOptions::default()).unwrap()
    }

    fn body(call: &SlackCall) -> &Value {
        match call {
            SlackCall::PostMessage(body) => body,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_text_is_escaped_and_split_not_truncated() {
        let one = calls(Content {
            text: Some("a < b & c".into()),
            ..Content::default()
        });
        assert_eq!(
            body(&one[0]),
            &json!({"channel": "D1", "text": "a &lt; b &amp; c"})
        );
        let long = "word ".repeat(10_000);
        let many = calls(Content {
            text: Some(long.clone()),
            ..Content::default()
        });
        assert_eq!(many.len(), 2);
        let joined: String = many
            .iter()
            .map(|c| body(c)["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(joined, long);
        assert!(
            many.iter()
                .all(|c| body(c)["text"].as_str().unwrap().chars().count() <= MAX_TEXT)
        );
    }

    #[test]
    fn quick_replies_are_buttons_with_the_prompt_as_section() {
        let out = calls(Content {
            text: Some("Did that help?".into()),
            quick_replies: vec![
                QuickReply {
                    text: "Yes".into(),
                    payload: "help-yes".into(),
                    image_url: None,
                },
                QuickReply {
                    text: "No".into(),
                    payload: "help-no".into(),
                    image_url: None,
                },
            ],
            ..Content::default()
        });
        assert_eq!(out.len(), 1);
        let message = body(&out[0]);
        assert_eq!(message["text"], "Did that help?");
        let blocks = message["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "section");
        assert_eq!(blocks[0]["text"]["text"], "Did that help?");
        assert_eq!(blocks[1]["type"], "actions");
        let buttons = blocks[1]["elements"].as_array().unwrap();
        assert_eq!(buttons[0]["text"]["text"], "Yes");
        assert_eq!(buttons[0]["value"], "help-yes");
        assert_eq!(buttons[1]["action_id"], "um-qr:1");
    }

    #[test]
    fn carousel_is_sections_with_images_and_buttons() {
        let card = |title: &str| Card {
            title: title.into(),
            description: Some("Fresh & new".into()),
            image_url: Some(format!("https://img.example/{title}.png")),
            actions: vec![
                CardAction::Postback {
                    text: "Buy".into(),
                    payload: format!("buy-{title}"),
                },
                CardAction::Link {
                    text: "More".into(),
                    url: "https://shop.example".into(),
                },
            ],
        };
        let out = calls(Content {
            cards: vec![card("one"), card("two")],
            ..Content::default()
        });
        let message = body(&out[0]);
        assert_eq!(message["text"], "one");
        let blocks = message["blocks"].as_array().unwrap();
        let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["section", "actions", "divider", "section", "actions"]
        );
        assert_eq!(blocks[0]["text"]["text"], "*one*\nFresh &amp; new");
        assert_eq!(
            blocks[0]["accessory"]["image_url"],
            "https://img.example/one.png"
        );
        assert_eq!(blocks[4]["elements"][0]["value"], "buy-two");
        assert_eq!(blocks[4]["elements"][0]["action_id"], "um-card:1:0");
        assert_eq!(blocks[4]["elements"][1]["url"], "https://shop.example");
        assert!(blocks[4]["elements"][1].get("value").is_none());
    }

    #[test]
    fn image_is_a_block_and_a_file_is_uploaded() {
        let attachment = |media_type, url: &str, mime: &str| Attachment {
            media_type,
            url: url.into(),
            mime: mime.into(),
            filename: None,
            size_bytes: None,
            caption: None,
            sha256: None,
        };
        let out = calls(Content {
            text: Some("see".into()),
            attachments: vec![
                attachment(
                    MediaType::Image,
                    "https://cdn.example/a.png?sig=1",
                    "image/png",
                ),
                attachment(
                    MediaType::File,
                    "https://cdn.example/doc.pdf?sig=2",
                    "application/pdf",
                ),
            ],
            ..Content::default()
        });
        assert_eq!(out.len(), 2);
        let blocks = body(&out[0])["blocks"].as_array().unwrap().clone();
        assert_eq!(blocks[1]["type"], "image");
        assert_eq!(blocks[1]["image_url"], "https://cdn.example/a.png?sig=1");
        assert_eq!(
            out[1],
            SlackCall::UploadFile {
                channel: "D1".into(),
                url: "https://cdn.example/doc.pdf?sig=2".into(),
                filename: "doc.pdf".into(),
                mime: "application/pdf".into(),
                title: None,
            }
        );
    }

    #[test]
    fn what_block_kit_cannot_hold_is_refused() {
        let long_label = calls_err(Content {
            quick_replies: vec![QuickReply {
                text: "x".repeat(76),
                payload: "p".into(),
                image_url: None,
            }],
            ..Content::default()
        });
        assert_eq!(long_label.reason, ReasonCode::InvalidMessageStructure);
        let cards: Vec<Card> = (0..20)
            .map(|i| Card {
                title: format!("c{i}"),
                description: None,
                image_url: None,
                actions: vec![CardAction::Postback {
                    text: "Go".into(),
                    payload: "go".into(),
                }],
            })
            .collect();
        let too_many = calls_err(Content {
            cards,
            ..Content::default()
        });
        assert!(too_many.what.contains("blocks"), "{}", too_many.what);
        assert_eq!(
            calls_err(Content::default()).reason,
            ReasonCode::UnsupportedMessage
        );
    }

    fn calls_err(content: Content) -> Refused {
        to_slack(&envelope(content), "D1", &MessagingOptions::default()).unwrap_err()
    }

    #[test]
    fn agent_name_prefix_and_native_payload() {
        let options = MessagingOptions {
            prefix_agent_name: true,
            ..MessagingOptions::default()
        };
        let out = to_slack(
            &envelope(Content {
                text: Some("hi".into()),
                agent_name: Some("Ann".into()),
                ..Content::default()
            }),
            "D1",
            &options,
        )
        .unwrap();
        assert_eq!(body(&out[0])["text"], "Ann: hi");
        let native = calls(Content {
            native: Some(json!({"channel": "elsewhere", "text": "x", "blocks": []})),
            ..Content::default()
        });
        assert_eq!(body(&native[0])["channel"], "D1");
    }
}
