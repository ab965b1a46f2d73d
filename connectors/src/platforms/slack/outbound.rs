//! Envelope → Slack Web API calls (pure).
//!
//! Text goes as `chat.postMessage` `text`; quick replies become an `actions`
//! block of buttons, cards (and carousels) `section` blocks with their
//! image and an `actions` block. Attachments (images, files, video, audio)
//! are uploaded (`files.getUploadURLExternal` → upload → `files
//! .completeUploadExternal`), the text riding along as the first file's
//! `initial_comment`; an image keeps an `image` block by URL as its
//! fallback, posted only when the install cannot upload (no `files:write`).
//! Everything goes into the guest's thread when the guest wrote in one.
//! Nothing is truncated: long text is split, what Block Kit cannot hold is
//! refused with a reason.

use serde_json::{Value, json};
use um_config::MessagingOptions;

use super::inbound::{CARD_ACTION, LINK_ACTION, QUICK_REPLY_ACTION};
use crate::machinery::envelope::{
    Attachment, Body, Card, CardAction, Content, Envelope, MediaType, ReasonCode,
};
use crate::machinery::text::{self, TextUnit};

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
/// Longest text sent as a file's `initial_comment` (longer text goes first
/// as messages): what a `section` holds, so the image fallback shows it too.
pub const MAX_INITIAL_COMMENT: usize = MAX_SECTION_TEXT;

/// Where a reply goes: the guest's channel, and the thread the guest last
/// wrote in (its parent `ts`), if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination<'a> {
    pub channel: &'a str,
    pub thread_ts: Option<&'a str>,
}

impl<'a> Destination<'a> {
    pub fn channel(channel: &'a str) -> Self {
        Self {
            channel,
            thread_ts: None,
        }
    }
}

/// One file to fetch from the agent's URL and upload into the channel.
#[derive(Debug, Clone, PartialEq)]
pub struct FileUpload {
    pub channel: String,
    pub thread_ts: Option<String>,
    /// Where the agent's attachment is (never handed to Slack).
    pub url: String,
    pub filename: String,
    pub mime: String,
    pub title: Option<String>,
    /// The message text introducing the file.
    pub initial_comment: Option<String>,
    /// Size the attachment declares, checked before downloading.
    pub size_bytes: Option<u64>,
    /// For images: a `chat.postMessage` body showing the image by URL,
    /// posted instead when the install may not upload files.
    pub fallback: Option<Value>,
}

/// One call to make for an envelope, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SlackCall {
    /// `chat.postMessage` with this JSON body (channel included).
    PostMessage(Value),
    /// Fetch the attachment and upload it into the channel.
    UploadFile(FileUpload),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("envelope {id}: {what}")]
pub struct Refused {
    pub id: String,
    pub reason: ReasonCode,
    pub what: String,
}

fn split_text(text: &str, limit: usize) -> Vec<String> {
    text::split_text(text, limit, TextUnit::Chars)
}

/// Escapes the three characters Slack's text formatting reserves.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Builder<'a> {
    envelope: &'a Envelope,
    destination: Destination<'a>,
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

    fn message_body(&self, text: &str, blocks: Option<Vec<Value>>) -> Value {
        let mut body = json!({"channel": self.destination.channel, "text": text});
        if let Some(thread_ts) = self.destination.thread_ts {
            body["thread_ts"] = json!(thread_ts);
        }
        if let Some(blocks) = blocks {
            body["blocks"] = Value::Array(blocks);
        }
        body
    }

    fn post(&self, text: &str, blocks: Option<Vec<Value>>) -> SlackCall {
        SlackCall::PostMessage(self.message_body(text, blocks))
    }

    fn upload(&self, attachment: &Attachment, initial_comment: Option<String>) -> SlackCall {
        let fallback = (attachment.media_type == MediaType::Image)
            .then(|| self.image_message(attachment, initial_comment.as_deref()));
        SlackCall::UploadFile(FileUpload {
            channel: self.destination.channel.to_owned(),
            thread_ts: self.destination.thread_ts.map(str::to_owned),
            url: attachment.url.clone(),
            filename: filename(attachment),
            mime: attachment.mime.clone(),
            title: attachment.caption.clone().filter(|c| !c.is_empty()),
            initial_comment,
            size_bytes: attachment.size_bytes,
            fallback,
        })
    }

    /// An image shown by URL (Slack fetches it), with the comment above.
    fn image_message(&self, image: &Attachment, comment: Option<&str>) -> Value {
        let alt = image
            .caption
            .clone()
            .or_else(|| image.filename.clone())
            .filter(|alt| !alt.is_empty())
            .unwrap_or_else(|| "image".to_owned());
        let mut blocks = Vec::new();
        if let Some(comment) = comment {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": comment}}));
        }
        blocks.push(json!({"type": "image", "image_url": image.url, "alt_text": alt}));
        self.message_body(comment.unwrap_or("Image"), Some(blocks))
    }
}

fn is_uploaded(attachment: &Attachment) -> bool {
    matches!(
        attachment.media_type,
        MediaType::Image | MediaType::File | MediaType::Video | MediaType::Audio
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
        body["channel"] = json!(builder.destination.channel);
        if let Some(thread_ts) = builder.destination.thread_ts
            && body.get("thread_ts").is_none()
        {
            body["thread_ts"] = json!(thread_ts);
        }
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
    let files: Vec<&Attachment> = content
        .attachments
        .iter()
        .filter(|a| is_uploaded(a))
        .collect();
    let widgets = !content.quick_replies.is_empty() || !content.cards.is_empty();
    if !widgets {
        // The text introduces the first file when it fits; else it goes
        // first as plain messages.
        let comment_fits = !message_text.is_empty()
            && message_text.chars().count() <= MAX_INITIAL_COMMENT
            && !files.is_empty();
        if !comment_fits {
            for piece in split_text(&message_text, MAX_TEXT) {
                calls.push(builder.post(&piece, None));
            }
        }
        for (index, file) in files.iter().enumerate() {
            let comment = (index == 0 && comment_fits).then(|| message_text.clone());
            calls.push(builder.upload(file, comment));
        }
    } else {
        // Files first, so the prompt and its buttons come last, where the
        // guest answers.
        for file in &files {
            calls.push(builder.upload(file, None));
        }
        let mut blocks = Vec::new();
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
                .unwrap_or_else(|| "Choose an option".to_owned())
        } else {
            message_text.clone()
        };
        calls.push(builder.post(&fallback, Some(blocks)));
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

/// The calls for one agent → guest envelope to `destination`. Typing and
/// receipts need none (Slack has no bot typing indicator on the Web API).
pub fn to_slack(
    envelope: &Envelope,
    destination: Destination<'_>,
    options: &MessagingOptions,
) -> Result<Vec<SlackCall>, Refused> {
    let builder = Builder {
        envelope,
        destination,
    };
    match &envelope.body {
        Body::Message(content) => content_calls(&builder, content, options),
        Body::Typing { .. } | Body::Receipt(_) => Ok(Vec::new()),
        Body::ButtonResponse(response) => Ok(vec![builder.post(&escape(&response.text), None)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machinery::envelope::QuickReply;
    use um_config::Platform;

    fn envelope(content: Content) -> Envelope {
        crate::machinery::envelope::fixtures::agent_message(Platform::Slack, "e1", "T1:D1", content)
    }

    fn calls(content: Content) -> Vec<SlackCall> {
        to_slack(
            &envelope(content),
            Destination::channel("D1"),
            &MessagingOptions::default(),
        )
        .unwrap()
    }

    fn threaded(content: Content, thread_ts: &str) -> Vec<SlackCall> {
        let destination = Destination {
            channel: "C1",
            thread_ts: Some(thread_ts),
        };
        to_slack(
            &envelope(content),
            destination,
            &MessagingOptions::default(),
        )
        .unwrap()
    }

    fn upload(call: &SlackCall) -> &FileUpload {
        match call {
            SlackCall::UploadFile(upload) => upload,
            other => panic!("{other:?}"),
        }
    }

    fn attachment(media_type: MediaType, url: &str, mime: &str) -> Attachment {
        Attachment {
            media_type,
            url: url.into(),
            mime: mime.into(),
            filename: None,
            size_bytes: None,
            caption: None,
            sha256: None,
        }
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
    fn attachments_are_uploaded_with_the_text_as_comment() {
        let out = calls(Content {
            text: Some("see <these>".into()),
            attachments: vec![
                Attachment {
                    caption: Some("The map".into()),
                    size_bytes: Some(4000),
                    ..attachment(
                        MediaType::Image,
                        "https://cdn.example/a.png?sig=1",
                        "image/png",
                    )
                },
                attachment(
                    MediaType::File,
                    "https://cdn.example/doc.pdf?sig=2",
                    "application/pdf",
                ),
                attachment(MediaType::Video, "https://cdn.example/v.mp4", "video/mp4"),
                attachment(MediaType::Audio, "https://cdn.example/a.ogg", "audio/ogg"),
            ],
            ..Content::default()
        });
        assert_eq!(out.len(), 4, "one upload per attachment, no extra post");
        let image = upload(&out[0]);
        assert_eq!(image.channel, "D1");
        assert_eq!(image.thread_ts, None);
        assert_eq!(image.url, "https://cdn.example/a.png?sig=1");
        assert_eq!(image.filename, "a.png");
        assert_eq!(image.title.as_deref(), Some("The map"));
        assert_eq!(image.size_bytes, Some(4000));
        assert_eq!(image.initial_comment.as_deref(), Some("see &lt;these&gt;"));
        // The image-block fallback carries the same text and the URL.
        let fallback = image.fallback.as_ref().expect("image fallback");
        assert_eq!(fallback["channel"], "D1");
        assert_eq!(fallback["blocks"][0]["text"]["text"], "see &lt;these&gt;");
        assert_eq!(fallback["blocks"][1]["type"], "image");
        assert_eq!(
            fallback["blocks"][1]["image_url"],
            "https://cdn.example/a.png?sig=1"
        );
        assert_eq!(fallback["blocks"][1]["alt_text"], "The map");
        let pdf = upload(&out[1]);
        assert_eq!(pdf.filename, "doc.pdf");
        assert_eq!(
            pdf.initial_comment, None,
            "the text goes with the first only"
        );
        assert_eq!(pdf.fallback, None, "only images have a by-URL fallback");
        assert_eq!(upload(&out[2]).mime, "video/mp4");
        assert_eq!(upload(&out[3]).filename, "a.ogg");
    }

    #[test]
    fn long_text_goes_before_the_files_and_widgets_after_them() {
        let long = "word ".repeat(1000);
        let out = calls(Content {
            text: Some(long.clone()),
            attachments: vec![attachment(
                MediaType::Image,
                "https://cdn.example/a.png",
                "image/png",
            )],
            ..Content::default()
        });
        assert_eq!(body(&out[0])["text"], long.as_str());
        assert_eq!(upload(&out[1]).initial_comment, None);
        let with_buttons = calls(Content {
            text: Some("Is this your order?".into()),
            attachments: vec![attachment(
                MediaType::File,
                "https://cdn.example/order.pdf",
                "application/pdf",
            )],
            quick_replies: vec![QuickReply {
                text: "Yes".into(),
                payload: "yes".into(),
                image_url: None,
            }],
            ..Content::default()
        });
        assert_eq!(with_buttons.len(), 2);
        assert_eq!(upload(&with_buttons[0]).initial_comment, None);
        let prompt = body(&with_buttons[1]);
        assert_eq!(prompt["blocks"][0]["text"]["text"], "Is this your order?");
        assert_eq!(prompt["blocks"][1]["type"], "actions");
    }

    #[test]
    fn a_threaded_destination_threads_every_call() {
        let out = threaded(
            Content {
                text: Some("here".into()),
                attachments: vec![attachment(
                    MediaType::Image,
                    "https://cdn.example/a.png",
                    "image/png",
                )],
                quick_replies: vec![QuickReply {
                    text: "Ok".into(),
                    payload: "ok".into(),
                    image_url: None,
                }],
                ..Content::default()
            },
            "1700000001.000100",
        );
        let image = upload(&out[0]);
        assert_eq!(
            (image.channel.as_str(), image.thread_ts.as_deref()),
            ("C1", Some("1700000001.000100"))
        );
        assert_eq!(
            image.fallback.as_ref().unwrap()["thread_ts"],
            "1700000001.000100"
        );
        assert_eq!(body(&out[1])["thread_ts"], "1700000001.000100");
        let text = threaded(
            Content {
                text: Some("plain".into()),
                ..Content::default()
            },
            "1.5",
        );
        assert_eq!(
            body(&text[0]),
            &json!({"channel": "C1", "text": "plain", "thread_ts": "1.5"})
        );
        let native = threaded(
            Content {
                native: Some(json!({"text": "x"})),
                ..Content::default()
            },
            "1.5",
        );
        assert_eq!(body(&native[0])["thread_ts"], "1.5");
        // Unthreaded: no thread_ts at all (not null).
        let plain = calls(Content {
            text: Some("dm".into()),
            ..Content::default()
        });
        assert!(body(&plain[0]).get("thread_ts").is_none());
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
        to_slack(
            &envelope(content),
            Destination::channel("D1"),
            &MessagingOptions::default(),
        )
        .unwrap_err()
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
            Destination::channel("D1"),
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
