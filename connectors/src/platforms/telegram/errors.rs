//! What a failed Bot API answer means for the delivery (pure).

use std::time::Duration;

use super::types::ErrorAnswer;
use crate::machinery::envelope::ReasonCode;
use crate::platform::DeliveryError;

/// Back-off when Telegram answers 429 without `retry_after`.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(2);

pub type SendFailure = DeliveryError;

/// Classifies an HTTP status and the (optional) Bot API error body.
pub fn classify(status: u16, answer: Option<&ErrorAnswer>) -> SendFailure {
    let description = answer.map(|a| a.description.clone()).unwrap_or_default();
    let lower = description.to_ascii_lowercase();
    let code = answer
        .map(|a| a.error_code)
        .filter(|code| *code != 0)
        .unwrap_or(status);
    let permanent = |reason| SendFailure::Permanent {
        reason,
        detail: if description.is_empty() {
            format!("Telegram answered HTTP {status}")
        } else {
            description.clone()
        },
    };
    match code {
        429 => SendFailure::Retry {
            after: Some(
                answer
                    .and_then(|a| a.parameters.as_ref())
                    .and_then(|p| p.retry_after)
                    .map_or(DEFAULT_RETRY, Duration::from_secs),
            ),
            detail: format!("Telegram rate limit: {description}"),
        },
        // "bot was blocked by the user", "user is deactivated", "bot was
        // kicked from the group chat".
        403 => permanent(ReasonCode::RecipientOptedOut),
        400 if lower.contains("chat not found") || lower.contains("user not found") => {
            permanent(ReasonCode::InvalidDestination)
        }
        400 if lower.contains("failed to get http url content")
            || lower.contains("wrong file identifier")
            || lower.contains("wrong type of the web page content") =>
        {
            permanent(ReasonCode::MediaTypeNotAllowed)
        }
        400 => permanent(ReasonCode::InvalidMessageStructure),
        413 => permanent(ReasonCode::InvalidMediaContentLength),
        // A wrong bot token: retrying will not help until the tenant changes.
        401 | 404 => permanent(ReasonCode::GeneralError),
        500..=599 => SendFailure::Retry {
            after: None,
            detail: format!("Telegram answered HTTP {status}"),
        },
        _ => permanent(ReasonCode::GeneralError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> ErrorAnswer {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn blocked_bot_is_opt_out() {
        let a = answer(
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
        );
        assert_eq!(
            classify(403, Some(&a)),
            SendFailure::Permanent {
                reason: ReasonCode::RecipientOptedOut,
                detail: "Forbidden: bot was blocked by the user".into()
            }
        );
    }

    #[test]
    fn bad_request_variants() {
        let reason = |description: &str| match classify(
            400,
            Some(&answer(&format!(
                r#"{{"ok":false,"error_code":400,"description":"{description}"}}"#
            ))),
        ) {
            SendFailure::Permanent { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason("Bad Request: message text is empty"),
            ReasonCode::InvalidMessageStructure
        );
        assert_eq!(
            reason("Bad Request: chat not found"),
            ReasonCode::InvalidDestination
        );
        assert_eq!(
            reason("Bad Request: failed to get HTTP URL content"),
            ReasonCode::MediaTypeNotAllowed
        );
    }

    #[test]
    fn rate_limit_honours_retry_after() {
        let a = answer(
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        );
        assert!(matches!(
            classify(429, Some(&a)),
            SendFailure::Retry { after: Some(after), .. } if after == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify(429, None),
            SendFailure::Retry {
                after: Some(DEFAULT_RETRY),
                ..
            }
        ));
    }

    #[test]
    fn server_errors_retry_and_unknown_is_general() {
        assert!(matches!(
            classify(502, None),
            SendFailure::Retry { after: None, .. }
        ));
        assert!(matches!(
            classify(401, None),
            SendFailure::Permanent {
                reason: ReasonCode::GeneralError,
                ..
            }
        ));
    }
}
