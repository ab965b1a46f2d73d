//! The checks LINE applies to message objects before sending them: the
//! limits the connector must respect (count, length, labels, URLs).

use serde_json::Value;

use super::errors::LineError;

pub const MAX_MESSAGES: usize = 5;
pub const MAX_TEXT: usize = 5000;
pub const MAX_QUICK_REPLY_ITEMS: usize = 13;
pub const MAX_LABEL: usize = 20;
pub const MAX_POSTBACK_DATA: usize = 300;
pub const MAX_ALT_TEXT: usize = 400;
pub const MAX_BUBBLES: usize = 12;
pub const MAX_URL: usize = 2000;

fn chars(text: &str) -> usize {
    text.encode_utf16().count()
}

fn string<'a>(message: &'a Value, field: &str, path: &str) -> Result<&'a str, LineError> {
    message[field]
        .as_str()
        .ok_or_else(|| LineError::invalid(format!("{path}.{field}"), "May not be empty"))
}

/// Real LINE wants HTTPS; the simulator also takes plain HTTP to loopback
/// so tests can serve media without certificates.
pub fn media_url(url: &str, property: &str) -> Result<(), LineError> {
    let loopback_http = url.starts_with("http://127.0.0.1")
        || url.starts_with("http://localhost")
        || url.starts_with("http://[::1]");
    if !(url.starts_with("https://") || loopback_http) {
        return Err(LineError::invalid(property, "Must be a valid HTTPS URL"));
    }
    if url.len() > MAX_URL {
        return Err(LineError::invalid(
            property,
            format!("Length must be between 0 and {MAX_URL}"),
        ));
    }
    Ok(())
}

fn label(action: &Value, path: &str) -> Result<(), LineError> {
    if let Some(label) = action["label"].as_str()
        && chars(label) > MAX_LABEL
    {
        return Err(LineError::invalid(
            format!("{path}.label"),
            format!("Length must be between 0 and {MAX_LABEL}"),
        ));
    }
    Ok(())
}

fn action(action: &Value, path: &str) -> Result<(), LineError> {
    label(action, path)?;
    match action["type"].as_str() {
        Some("postback") => {
            let data = string(action, "data", path)?;
            if data.len() > MAX_POSTBACK_DATA {
                return Err(LineError::invalid(
                    format!("{path}.data"),
                    format!("Length must be between 0 and {MAX_POSTBACK_DATA}"),
                ));
            }
        }
        Some("message") => {
            string(action, "text", path)?;
        }
        Some("uri") => {
            string(action, "uri", path)?;
        }
        Some(
            "datetimepicker" | "camera" | "cameraRoll" | "location" | "richmenuswitch"
            | "clipboard",
        ) => {}
        _ => {
            return Err(LineError::invalid(
                format!("{path}.type"),
                "Invalid action type",
            ));
        }
    }
    Ok(())
}

fn quick_reply(message: &Value, path: &str) -> Result<(), LineError> {
    let Some(quick) = message.get("quickReply") else {
        return Ok(());
    };
    let items = quick["items"].as_array().ok_or_else(|| {
        LineError::invalid(format!("{path}.quickReply.items"), "May not be empty")
    })?;
    if items.is_empty() || items.len() > MAX_QUICK_REPLY_ITEMS {
        return Err(LineError::invalid(
            format!("{path}.quickReply.items"),
            format!("Size must be between 1 and {MAX_QUICK_REPLY_ITEMS}"),
        ));
    }
    for (index, item) in items.iter().enumerate() {
        let item_path = format!("{path}.quickReply.items[{index}]");
        if item["type"] != "action" {
            return Err(LineError::invalid(
                format!("{item_path}.type"),
                "Must be action",
            ));
        }
        if let Some(image) = item["imageUrl"].as_str() {
            media_url(image, &format!("{item_path}.imageUrl"))?;
        }
        action(&item["action"], &format!("{item_path}.action"))?;
    }
    Ok(())
}

fn alt_text(message: &Value, path: &str) -> Result<(), LineError> {
    let alt = string(message, "altText", path)?;
    if alt.is_empty() || chars(alt) > MAX_ALT_TEXT {
        return Err(LineError::invalid(
            format!("{path}.altText"),
            format!("Length must be between 1 and {MAX_ALT_TEXT}"),
        ));
    }
    Ok(())
}

fn bubble(bubble: &Value, path: &str) -> Result<(), LineError> {
    if bubble["type"] != "bubble" {
        return Err(LineError::invalid(format!("{path}.type"), "Must be bubble"));
    }
    for section in ["header", "hero", "body", "footer"] {
        if let Some(contents) = bubble[section]["contents"].as_array() {
            for (index, component) in contents.iter().enumerate() {
                if component.get("action").is_some() {
                    action(
                        &component["action"],
                        &format!("{path}.{section}.contents[{index}].action"),
                    )?;
                }
            }
        }
    }
    if let Some(url) = bubble["hero"]["url"].as_str() {
        media_url(url, &format!("{path}.hero.url"))?;
    }
    Ok(())
}

fn flex(message: &Value, path: &str) -> Result<(), LineError> {
    alt_text(message, path)?;
    let contents = &message["contents"];
    match contents["type"].as_str() {
        Some("bubble") => bubble(contents, &format!("{path}.contents")),
        Some("carousel") => {
            let bubbles = contents["contents"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if bubbles.is_empty() || bubbles.len() > MAX_BUBBLES {
                return Err(LineError::invalid(
                    format!("{path}.contents.contents"),
                    format!("Size must be between 1 and {MAX_BUBBLES}"),
                ));
            }
            for (index, item) in bubbles.iter().enumerate() {
                bubble(item, &format!("{path}.contents.contents[{index}]"))?;
            }
            Ok(())
        }
        _ => Err(LineError::invalid(
            format!("{path}.contents.type"),
            "Must be bubble or carousel",
        )),
    }
}

/// One message object.
pub fn message(message: &Value, index: usize) -> Result<(), LineError> {
    let path = format!("messages[{index}]");
    match message["type"].as_str() {
        Some("text") => {
            let text = string(message, "text", &path)?;
            if text.is_empty() || chars(text) > MAX_TEXT {
                return Err(LineError::invalid(
                    format!("{path}.text"),
                    format!("Length must be between 1 and {MAX_TEXT}"),
                ));
            }
        }
        Some("image" | "video") => {
            media_url(
                string(message, "originalContentUrl", &path)?,
                &format!("{path}.originalContentUrl"),
            )?;
            media_url(
                string(message, "previewImageUrl", &path)?,
                &format!("{path}.previewImageUrl"),
            )?;
        }
        Some("audio") => {
            media_url(
                string(message, "originalContentUrl", &path)?,
                &format!("{path}.originalContentUrl"),
            )?;
            if message["duration"].as_u64().is_none() {
                return Err(LineError::invalid(
                    format!("{path}.duration"),
                    "May not be empty",
                ));
            }
        }
        Some("location") => {
            string(message, "title", &path)?;
            string(message, "address", &path)?;
            if message["latitude"].as_f64().is_none() || message["longitude"].as_f64().is_none() {
                return Err(LineError::invalid(
                    format!("{path}.latitude"),
                    "May not be empty",
                ));
            }
        }
        Some("sticker") => {
            string(message, "packageId", &path)?;
            string(message, "stickerId", &path)?;
        }
        Some("flex") => flex(message, &path)?,
        Some("template") => {
            alt_text(message, &path)?;
            if let Some(actions) = message["template"]["actions"].as_array() {
                for (index, item) in actions.iter().enumerate() {
                    action(item, &format!("{path}.template.actions[{index}]"))?;
                }
            }
        }
        Some("imagemap") => alt_text(message, &path)?,
        _ => {
            return Err(LineError::invalid(
                format!("{path}.type"),
                "Invalid message type",
            ));
        }
    }
    quick_reply(message, &path)
}

/// The `messages` of a reply or push.
pub fn messages(body: &Value) -> Result<&Vec<Value>, LineError> {
    let messages = body["messages"]
        .as_array()
        .ok_or_else(|| LineError::invalid("messages", "May not be empty"))?;
    if messages.is_empty() || messages.len() > MAX_MESSAGES {
        return Err(LineError::invalid(
            "messages",
            format!("Size must be between 1 and {MAX_MESSAGES}"),
        ));
    }
    for (index, item) in messages.iter().enumerate() {
        message(item, index)?;
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits() {
        assert!(messages(&json!({"messages": [{"type": "text", "text": "hi"}]})).is_ok());
        let six: Vec<Value> = (0..6)
            .map(|_| json!({"type": "text", "text": "x"}))
            .collect();
        assert_eq!(
            messages(&json!({"messages": six})).unwrap_err().details[0].0,
            "messages"
        );
        let long = "a".repeat(MAX_TEXT + 1);
        assert!(message(&json!({"type": "text", "text": long}), 0).is_err());
        let label = json!({"type": "text", "text": "q", "quickReply": {"items": [
            {"type": "action", "action": {"type": "message", "label": "a".repeat(21), "text": "x"}}]}});
        assert_eq!(
            message(&label, 0).unwrap_err().details[0].0,
            "messages[0].quickReply.items[0].action.label"
        );
        let image = json!({"type": "image", "originalContentUrl": "http://example.com/a.png",
                           "previewImageUrl": "https://example.com/a.png"});
        assert!(message(&image, 0).is_err());
        let image = json!({"type": "image", "originalContentUrl": "http://127.0.0.1:9/a.png",
                           "previewImageUrl": "https://example.com/a.png"});
        assert!(message(&image, 0).is_ok());
        assert!(message(&json!({"type": "flex", "contents": {"type": "bubble"}}), 0).is_err());
    }
}
