//! Pure validation of Bot API parameters: reply markup, lengths, enums.

use serde_json::Value;

use super::errors::ApiError;

pub(crate) const MAX_TEXT_CHARS: usize = 4096;
pub(crate) const MAX_CAPTION_CHARS: usize = 1024;
pub(crate) const MAX_CALLBACK_DATA_BYTES: usize = 64;
pub(crate) const CHAT_ACTIONS: [&str; 11] = [
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

/// `secret_token`: 1-256 characters of `A-Za-z0-9_-`.
pub(crate) fn secret_token(token: &str) -> Result<(), ApiError> {
    let allowed = token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if token.is_empty() || token.len() > 256 || !allowed {
        return Err(ApiError::bad_request(
            "secret token contains unallowed characters",
        ));
    }
    Ok(())
}

pub(crate) fn text(text: Option<&str>) -> Result<(), ApiError> {
    match text {
        None | Some("") => Err(ApiError::bad_request("message text is empty")),
        Some(text) if text.chars().count() > MAX_TEXT_CHARS => {
            Err(ApiError::bad_request("message is too long"))
        }
        Some(_) => Ok(()),
    }
}

pub(crate) fn caption(caption: Option<&str>) -> Result<(), ApiError> {
    match caption {
        Some(caption) if caption.chars().count() > MAX_CAPTION_CHARS => {
            Err(ApiError::bad_request("message caption is too long"))
        }
        _ => Ok(()),
    }
}

pub(crate) fn parse_mode(mode: Option<&str>) -> Result<(), ApiError> {
    match mode {
        None | Some("") | Some("HTML") | Some("Markdown") | Some("MarkdownV2") => Ok(()),
        Some(other) => Err(ApiError::bad_request(format!(
            "unsupported parse_mode \"{other}\""
        ))),
    }
}

fn rows(value: &Value) -> Option<&Vec<Value>> {
    let rows = value.as_array()?;
    rows.iter().all(Value::is_array).then_some(rows)
}

fn inline_button(button: &Value) -> Result<(), ApiError> {
    let text = button["text"].as_str().unwrap_or_default();
    if text.is_empty() {
        return Err(ApiError::bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
        ));
    }
    let actions = [
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "pay",
        "copy_text",
    ];
    let present = actions
        .iter()
        .filter(|key| !button[**key].is_null())
        .count();
    if present == 0 {
        return Err(ApiError::bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
        ));
    }
    if let Some(data) = button.get("callback_data") {
        let data = data.as_str().unwrap_or_default();
        if data.is_empty() || data.len() > MAX_CALLBACK_DATA_BYTES {
            return Err(ApiError::bad_request("BUTTON_DATA_INVALID"));
        }
    }
    if let Some(url) = button.get("url") {
        let valid = url
            .as_str()
            .and_then(|url| url::Url::parse(url).ok())
            .is_some();
        if !valid {
            return Err(ApiError::bad_request("BUTTON_URL_INVALID"));
        }
    }
    Ok(())
}

/// `reply_markup`: InlineKeyboardMarkup, ReplyKeyboardMarkup,
/// ReplyKeyboardRemove or ForceReply.
pub(crate) fn reply_markup(markup: Option<&Value>) -> Result<(), ApiError> {
    let Some(markup) = markup else { return Ok(()) };
    if !markup.is_object() {
        return Err(ApiError::bad_request(
            "can't parse reply keyboard markup JSON object",
        ));
    }
    if let Some(inline) = markup.get("inline_keyboard") {
        let rows = rows(inline).ok_or_else(|| {
            ApiError::bad_request("field \"inline_keyboard\" must be an Array of Arrays")
        })?;
        for button in rows
            .iter()
            .flat_map(|row| row.as_array().into_iter().flatten())
        {
            inline_button(button)?;
        }
        return Ok(());
    }
    if let Some(keyboard) = markup.get("keyboard") {
        let rows = rows(keyboard).ok_or_else(|| {
            ApiError::bad_request("field \"keyboard\" must be an Array of Arrays")
        })?;
        for button in rows
            .iter()
            .flat_map(|row| row.as_array().into_iter().flatten())
        {
            let text = button
                .as_str()
                .or_else(|| button["text"].as_str())
                .unwrap_or_default();
            if text.is_empty() {
                return Err(ApiError::bad_request(
                    "can't parse keyboard button: Field \"text\" must be of type String",
                ));
            }
        }
        return Ok(());
    }
    if markup.get("remove_keyboard").is_some() || markup.get("force_reply").is_some() {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "can't parse reply keyboard markup JSON object",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_token_charset_and_length() {
        assert!(secret_token("abc_DEF-123").is_ok());
        assert!(secret_token("").is_err());
        assert!(secret_token("has space").is_err());
        assert!(secret_token(&"a".repeat(256)).is_ok());
        assert!(secret_token(&"a".repeat(257)).is_err());
    }

    #[test]
    fn text_limits() {
        assert!(text(Some(&"é".repeat(4096))).is_ok());
        assert_eq!(
            text(Some(&"a".repeat(4097))).unwrap_err().description,
            "Bad Request: message is too long"
        );
        assert_eq!(
            text(None).unwrap_err().description,
            "Bad Request: message text is empty"
        );
        assert!(caption(Some(&"a".repeat(1025))).is_err());
    }

    #[test]
    fn inline_keyboard_callback_data_limit() {
        let markup =
            |data: &str| json!({"inline_keyboard": [[{"text": "A", "callback_data": data}]]});
        assert!(reply_markup(Some(&markup(&"x".repeat(64)))).is_ok());
        assert_eq!(
            reply_markup(Some(&markup(&"x".repeat(65))))
                .unwrap_err()
                .description,
            "Bad Request: BUTTON_DATA_INVALID"
        );
        assert!(
            reply_markup(Some(&json!({"inline_keyboard": [[{"text": "only text"}]]}))).is_err()
        );
        assert!(
            reply_markup(Some(
                &json!({"inline_keyboard": [{"text": "A", "callback_data": "a"}]})
            ))
            .is_err()
        );
    }

    #[test]
    fn reply_keyboard_buttons_need_text() {
        assert!(
            reply_markup(Some(
                &json!({"keyboard": [["Yes", {"text": "No"}]], "one_time_keyboard": true})
            ))
            .is_ok()
        );
        assert!(reply_markup(Some(&json!({"keyboard": [[{"request_contact": true}]]}))).is_err());
        assert!(reply_markup(Some(&json!({"remove_keyboard": true}))).is_ok());
        assert!(reply_markup(Some(&json!({"colour": 1}))).is_err());
    }
}

/// Tags the Bot API accepts with `parse_mode=HTML`.
const HTML_TAGS: [&str; 16] = [
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
];

/// Checks text the way Telegram's HTML entity parser does: only supported
/// tags, properly nested and closed, and `&` only as a known entity.
/// Errors read like Telegram's "can't parse entities" answers.
pub(crate) fn html_entities(text: &str) -> Result<(), ApiError> {
    let fail = |why: String| {
        Err(ApiError::bad_request(format!(
            "can't parse entities: {why}"
        )))
    };
    let mut open: Vec<String> = Vec::new();
    let mut rest = text;
    let mut offset = 0usize;
    while let Some(position) = rest.find(['<', '&']) {
        let at = offset + position;
        let tail = &rest[position..];
        if tail.starts_with('&') {
            let entity_end = tail.find(';').filter(|end| *end <= 10);
            let valid = entity_end.is_some_and(|end| {
                let name = &tail[1..end];
                matches!(name, "lt" | "gt" | "amp" | "quot")
                    || name.strip_prefix('#').is_some_and(|digits| {
                        !digits.is_empty()
                            && (digits.chars().all(|c| c.is_ascii_digit())
                                || digits.strip_prefix('x').is_some_and(|hex| {
                                    !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit())
                                }))
                    })
            });
            if !valid {
                return fail(format!(
                    "Unsupported start tag or entity at byte offset {at}"
                ));
            }
            let consumed = position + entity_end.unwrap_or(0) + 1;
            offset += consumed;
            rest = &rest[consumed..];
            continue;
        }
        let Some(end) = tail.find('>') else {
            return fail(format!("Unclosed start tag at byte offset {at}"));
        };
        let inner = &tail[1..end];
        if let Some(name) = inner.strip_prefix('/') {
            let name = name.trim().to_ascii_lowercase();
            match open.pop() {
                Some(expected) if expected == name => {}
                Some(expected) => {
                    return fail(format!(
                        "Can't find end tag corresponding to start tag \"{expected}\""
                    ));
                }
                None => return fail(format!("Unexpected end tag at byte offset {at}")),
            }
        } else {
            let name = inner
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !HTML_TAGS.contains(&name.as_str()) {
                return fail(format!(
                    "Unsupported start tag \"{name}\" at byte offset {at}"
                ));
            }
            open.push(name);
        }
        let consumed = position + end + 1;
        offset += consumed;
        rest = &rest[consumed..];
    }
    match open.last() {
        Some(tag) => fail(format!(
            "Can't find end tag corresponding to start tag \"{tag}\""
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod html_tests {
    use super::html_entities;

    #[test]
    fn accepts_supported_balanced_markup_and_entities() {
        assert!(
            html_entities("<b>bold</b> <a href=\"https://x\">link</a> 1 &lt; 2 &amp; &#33; &#x21;")
                .is_ok()
        );
        assert!(html_entities("<pre><code class=\"language-rust\">x</code></pre>").is_ok());
    }

    #[test]
    fn rejects_what_telegram_rejects() {
        assert!(html_entities("a < b").is_err(), "bare <");
        assert!(html_entities("fish & chips").is_err(), "bare &");
        assert!(html_entities("<div>x</div>").is_err(), "unsupported tag");
        assert!(html_entities("<b>x").is_err(), "unclosed");
        assert!(html_entities("<b><i>x</b></i>").is_err(), "misnested");
    }
}
