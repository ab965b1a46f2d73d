//! `tracking_data` the bridge sends with a message that offers buttons, so
//! the guest's reply (which echoes it) can be recognised as a button tap:
//! a Viber `reply` button just sends its `ActionBody` as ordinary text.

use serde::{Deserialize, Serialize};

use crate::machinery::envelope::ButtonKind;

/// Viber's limit on `tracking_data`.
pub const MAX_TRACKING_DATA: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedButton {
    /// The payload (`ActionBody`).
    pub p: String,
    /// The label the guest saw.
    pub t: String,
    /// `q`: quick reply (keyboard), `b`: button of a card.
    pub k: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    #[serde(rename = "umButtons", default)]
    pub buttons: Vec<TrackedButton>,
}

impl Tracking {
    pub fn push(&mut self, kind: ButtonKind, payload: &str, label: &str) {
        self.buttons.push(TrackedButton {
            p: payload.to_owned(),
            t: label.to_owned(),
            k: match kind {
                ButtonKind::QuickReply => "q",
                _ => "b",
            }
            .to_owned(),
        });
    }

    /// The JSON to send, or None when there is nothing to track or it would
    /// not fit (the tap then arrives as plain text, nothing is lost).
    pub fn encode(&self) -> Option<String> {
        if self.buttons.is_empty() {
            return None;
        }
        serde_json::to_string(self)
            .ok()
            .filter(|json| json.len() <= MAX_TRACKING_DATA)
    }

    pub fn decode(data: &str) -> Option<Self> {
        serde_json::from_str(data).ok()
    }

    /// The button whose payload the guest's text is.
    pub fn find(&self, text: &str) -> Option<(ButtonKind, &TrackedButton)> {
        self.buttons.iter().find(|b| b.p == text).map(|b| {
            let kind = if b.k == "q" {
                ButtonKind::QuickReply
            } else {
                ButtonKind::Button
            };
            (kind, b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lookup() {
        let mut tracking = Tracking::default();
        tracking.push(ButtonKind::QuickReply, "yes", "Yes");
        tracking.push(ButtonKind::Button, "buy-1", "Buy");
        let json = tracking.encode().expect("fits");
        let back = Tracking::decode(&json).expect("decodes");
        assert_eq!(back, tracking);
        assert_eq!(
            back.find("yes").map(|(k, b)| (k, b.t.as_str())),
            Some((ButtonKind::QuickReply, "Yes"))
        );
        assert_eq!(back.find("buy-1").map(|(k, _)| k), Some(ButtonKind::Button));
        assert!(back.find("Yes").is_none(), "labels are not payloads");
    }

    #[test]
    fn too_large_or_empty_is_not_sent() {
        assert_eq!(Tracking::default().encode(), None);
        let mut tracking = Tracking::default();
        for i in 0..200 {
            tracking.push(ButtonKind::QuickReply, &format!("payload-{i}"), "label");
        }
        assert_eq!(tracking.encode(), None);
        assert_eq!(Tracking::decode("not json"), None);
    }
}
