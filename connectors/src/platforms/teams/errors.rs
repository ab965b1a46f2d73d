//! What a failed Bot Framework answer means for the delivery (pure).

use std::time::Duration;

use super::types::ErrorResponse;
use crate::machinery::envelope::ReasonCode;
use crate::platform::DeliveryError;

/// Back-off when the channel answers 429 without `Retry-After`.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(2);

/// Classifies an answer of `POST /v3/conversations/{id}/activities`:
/// `retry_after` is the `Retry-After` header in seconds, `body` the raw
/// error body.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> DeliveryError {
    let error = serde_json::from_slice::<ErrorResponse>(body)
        .map(|r| r.error)
        .unwrap_or_default();
    let detail = if error.code.is_empty() && error.message.is_empty() {
        format!("Bot Framework answered HTTP {status}")
    } else {
        format!(
            "Bot Framework answered HTTP {status}: {} {}",
            error.code, error.message
        )
        .trim_end()
        .to_owned()
    };
    let code = error.code.to_ascii_lowercase();
    let permanent = |reason| DeliveryError::Permanent {
        reason,
        detail: detail.clone(),
    };
    match status {
        429 => DeliveryError::Retry {
            after: Some(
                retry_after
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(DEFAULT_RETRY, Duration::from_secs),
            ),
            detail,
        },
        // The token expired or was revoked between fetch and use: the
        // caller drops its cached token and the retry fetches a new one.
        401 => DeliveryError::retry(detail),
        // Blocked by the user, bot removed from the team or disabled.
        403 => permanent(ReasonCode::RecipientOptedOut),
        404 => permanent(ReasonCode::InvalidDestination),
        400 if code.contains("blocked") => permanent(ReasonCode::RecipientOptedOut),
        400 | 422 => permanent(ReasonCode::InvalidMessageStructure),
        413 => permanent(ReasonCode::InvalidMediaContentLength),
        408 | 500..=599 => DeliveryError::retry(detail),
        _ => permanent(ReasonCode::GeneralError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(status: u16, body: &str) -> ReasonCode {
        match classify(status, None, body.as_bytes()) {
            DeliveryError::Permanent { reason, .. } => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn conversation_errors() {
        let blocked = r#"{"error":{"code":"ConversationBlockedByUser","message":"User blocked the conversation with the bot."}}"#;
        assert_eq!(reason(403, blocked), ReasonCode::RecipientOptedOut);
        assert_eq!(reason(400, blocked), ReasonCode::RecipientOptedOut);
        assert_eq!(
            reason(
                404,
                r#"{"error":{"code":"ConversationNotFound","message":"x"}}"#
            ),
            ReasonCode::InvalidDestination
        );
        assert_eq!(
            reason(
                400,
                r#"{"error":{"code":"BadArgument","message":"Unknown activity type"}}"#
            ),
            ReasonCode::InvalidMessageStructure
        );
        assert_eq!(reason(413, ""), ReasonCode::InvalidMediaContentLength);
        let DeliveryError::Permanent { detail, .. } = classify(403, None, blocked.as_bytes())
        else {
            panic!()
        };
        assert!(detail.contains("ConversationBlockedByUser"), "{detail}");
    }

    #[test]
    fn throttling_honours_retry_after() {
        assert_eq!(
            classify(429, Some("7"), b""),
            DeliveryError::Retry {
                after: Some(Duration::from_secs(7)),
                detail: "Bot Framework answered HTTP 429".into()
            }
        );
        assert!(matches!(
            classify(429, None, b""),
            DeliveryError::Retry {
                after: Some(DEFAULT_RETRY),
                ..
            }
        ));
        assert!(matches!(
            classify(503, None, b""),
            DeliveryError::Retry { after: None, .. }
        ));
        assert!(matches!(
            classify(401, None, b""),
            DeliveryError::Retry { after: None, .. }
        ));
    }
}
