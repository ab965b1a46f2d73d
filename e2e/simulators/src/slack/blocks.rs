//! The Block Kit rules `chat.postMessage` enforces (answering
//! `invalid_blocks` when broken), for the block types the bridge sends.

use serde_json::Value;

pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_BUTTON_TEXT: usize = 75;
pub const MAX_BUTTON_VALUE: usize = 2000;
pub const MAX_ACTION_ELEMENTS: usize = 25;
pub const MAX_TEXT: usize = 40_000;

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

fn text_object(value: &Value, plain_only: bool, max: usize) -> Result<(), String> {
    let kind = value["type"].as_str().unwrap_or("");
    if kind != "plain_text" && (plain_only || kind != "mrkdwn") {
        return Err(format!("text object of type {kind:?}"));
    }
    let length = chars(&value["text"]);
    if length == 0 || length > max {
        return Err(format!("text of {length} characters (1 to {max})"));
    }
    Ok(())
}

fn button(element: &Value) -> Result<(), String> {
    text_object(&element["text"], true, MAX_BUTTON_TEXT)?;
    if let Some(value) = element.get("value") {
        let length = chars(value);
        if length == 0 || length > MAX_BUTTON_VALUE {
            return Err(format!("button value of {length} characters"));
        }
    }
    if element.get("url").is_some_and(|u| !u.is_string()) {
        return Err("button url is not a string".into());
    }
    Ok(())
}

fn image_url(value: &Value) -> Result<(), String> {
    match value.as_str() {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => Ok(()),
        _ => Err("image_url must be an http(s) URL".into()),
    }
}

/// `Ok` when Slack would accept the blocks; the reason otherwise.
pub fn validate(blocks: &Value) -> Result<(), String> {
    let blocks = blocks.as_array().ok_or("blocks is not an array")?;
    if blocks.len() > MAX_BLOCKS {
        return Err(format!("{} blocks (at most {MAX_BLOCKS})", blocks.len()));
    }
    let mut action_ids = std::collections::HashSet::new();
    for (index, block) in blocks.iter().enumerate() {
        let at = |e: String| format!("blocks[{index}]: {e}");
        match block["type"].as_str().unwrap_or("") {
            "section" => {
                text_object(&block["text"], false, MAX_SECTION_TEXT).map_err(at)?;
                if let Some(accessory) = block.get("accessory") {
                    match accessory["type"].as_str() {
                        Some("image") => {
                            image_url(&accessory["image_url"]).map_err(at)?;
                            if chars(&accessory["alt_text"]) == 0 {
                                return Err(at("image accessory without alt_text".into()));
                            }
                        }
                        Some("button") => button(accessory).map_err(at)?,
                        other => return Err(at(format!("accessory of type {other:?}"))),
                    }
                }
            }
            "actions" => {
                let elements = block["elements"]
                    .as_array()
                    .ok_or_else(|| at("actions without elements".into()))?;
                if elements.is_empty() || elements.len() > MAX_ACTION_ELEMENTS {
                    return Err(at(format!(
                        "{} elements (1 to {MAX_ACTION_ELEMENTS})",
                        elements.len()
                    )));
                }
                for element in elements {
                    if element["type"] != "button" {
                        return Err(at(format!("element of type {}", element["type"])));
                    }
                    button(element).map_err(at)?;
                    if let Some(id) = element["action_id"].as_str()
                        && !action_ids.insert(id.to_owned())
                    {
                        return Err(at(format!("duplicate action_id {id:?}")));
                    }
                }
            }
            "image" => {
                image_url(&block["image_url"]).map_err(at)?;
                if chars(&block["alt_text"]) == 0 {
                    return Err(at("image without alt_text".into()));
                }
            }
            "divider" => {}
            "header" => text_object(&block["text"], true, 150).map_err(at)?,
            "context" => {}
            other => return Err(at(format!("unknown block type {other:?}"))),
        }
    }
    Ok(())
}
