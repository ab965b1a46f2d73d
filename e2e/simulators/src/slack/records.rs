//! What the Slack simulator records: Web API calls, posted messages,
//! uploaded files, private file downloads and Events API deliveries.

use serde::Serialize;
use serde_json::Value;

/// One Web API call and how it was answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiCall {
    pub method: String,
    pub team_id: Option<String>,
    pub http_status: u16,
    pub error: Option<String>,
}

/// A message the bot posted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostedMessage {
    pub team_id: String,
    pub channel: String,
    pub ts: String,
    /// The parent message when posted as a thread reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<String>,
    pub text: Option<String>,
    pub blocks: Option<Value>,
}

/// A file the bot uploaded into a channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UploadedFile {
    pub team_id: String,
    pub channel: String,
    pub file_id: String,
    pub filename: String,
    pub title: Option<String>,
    pub bytes_len: usize,
    /// Hex SHA-256 of the uploaded bytes.
    pub sha256: String,
    /// The parent message when shared as a thread reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<String>,
    /// The message text introducing the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_comment: Option<String>,
}

/// A download of a private file (by the connector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDownload {
    pub file_id: String,
    pub http_status: u16,
    /// `Content-Type` of the answer (`text/html` for the sign-in page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub retry_num: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// The outcome of posting one request to the webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventDelivery {
    pub body: String,
    pub attempts: Vec<Attempt>,
    pub response_body: Option<String>,
}

impl EventDelivery {
    /// The HTTP status of the last attempt (None: no answer at all).
    pub fn status(&self) -> Option<u16> {
        self.attempts.last().and_then(|a| a.status)
    }
}

/// The record lists, by the names the control API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackRecordKind {
    Call,
    Posted,
    Uploaded,
    Download,
    Delivery,
}

impl std::str::FromStr for SlackRecordKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "call" | "calls" => Self::Call,
            "posted" => Self::Posted,
            "uploaded" => Self::Uploaded,
            "download" | "downloads" => Self::Download,
            "delivery" | "deliveries" => Self::Delivery,
            other => {
                return Err(format!(
                    "unknown slack record kind '{other}' (calls, posted, uploaded, downloads, deliveries)"
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_kinds_parse_by_their_control_names() {
        let parsed: Vec<SlackRecordKind> =
            ["calls", "posted", "uploaded", "downloads", "deliveries"]
                .iter()
                .map(|name| name.parse().unwrap())
                .collect();
        assert_eq!(
            parsed,
            [
                SlackRecordKind::Call,
                SlackRecordKind::Posted,
                SlackRecordKind::Uploaded,
                SlackRecordKind::Download,
                SlackRecordKind::Delivery
            ]
        );
        let refused = "sent".parse::<SlackRecordKind>().unwrap_err();
        assert!(refused.contains("'sent'"), "{refused}");
    }

    #[test]
    fn delivery_status_is_the_last_attempts() {
        let attempt = |status| Attempt {
            retry_num: 0,
            status,
            error: None,
        };
        let delivery = EventDelivery {
            body: String::new(),
            attempts: vec![attempt(Some(500)), attempt(None)],
            response_body: None,
        };
        assert_eq!(delivery.status(), None);
        let delivered = EventDelivery {
            attempts: vec![attempt(None), attempt(Some(200))],
            ..delivery
        };
        assert_eq!(delivered.status(), Some(200));
    }
}
