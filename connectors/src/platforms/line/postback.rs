//! The `data` of the postback actions the bridge sends: the Genesys payload
//! plus the button's text, so a tap comes back as a structured response
//! with both (a postback event carries nothing but `data`).

use serde::{Deserialize, Serialize};

use crate::machinery::envelope::ButtonKind;

/// LINE's limit for `postback.data`.
pub const MAX_DATA: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Data {
    /// `q`: quick reply, `b`: card button.
    k: String,
    /// Payload.
    p: String,
    /// Text of the button.
    t: String,
}

/// The data for a button, or None when it does not fit in [`MAX_DATA`].
pub fn encode(kind: ButtonKind, text: &str, payload: &str) -> Option<String> {
    let data = Data {
        k: match kind {
            ButtonKind::QuickReply => "q",
            _ => "b",
        }
        .to_owned(),
        p: payload.to_owned(),
        t: text.to_owned(),
    };
    let encoded = serde_json::to_string(&data).ok()?;
    (encoded.len() <= MAX_DATA).then_some(encoded)
}

/// What a postback means: ours decode to kind, text and payload; foreign
/// data (a native template's action) is a button whose text is the data.
pub fn decode(data: &str) -> (ButtonKind, String, String) {
    match serde_json::from_str::<Data>(data) {
        Ok(ours) => {
            let kind = if ours.k == "q" {
                ButtonKind::QuickReply
            } else {
                ButtonKind::Button
            };
            (kind, ours.t, ours.p)
        }
        Err(_) => (ButtonKind::Button, data.to_owned(), data.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_data() {
        let data = encode(ButtonKind::QuickReply, "Yes", "help-yes").unwrap();
        assert_eq!(
            decode(&data),
            (ButtonKind::QuickReply, "Yes".into(), "help-yes".into())
        );
        let data = encode(ButtonKind::Button, "Buy", "sku=1").unwrap();
        assert_eq!(decode(&data).0, ButtonKind::Button);
        assert_eq!(
            decode("action=buy&itemid=1"),
            (
                ButtonKind::Button,
                "action=buy&itemid=1".into(),
                "action=buy&itemid=1".into()
            )
        );
        assert_eq!(encode(ButtonKind::QuickReply, "x", &"p".repeat(300)), None);
    }
}
