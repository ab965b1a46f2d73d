//! What a failed Messaging API answer means for the delivery (pure).

use std::time::Duration;

use super::types::ErrorBody;
use crate::machinery::envelope::ReasonCode;
use crate::platform::DeliveryError;

/// Back-off when LINE answers 429 (it sends no `Retry-After`).
pub const DEFAULT_RETRY: Duration = Duration::from_secs(1);

/// The monthly message quota is spent: retrying this month will not help.
fn quota_spent(body: &ErrorBody) -> bool {
    body.message.to_ascii_lowercase().contains("monthly limit")
}

/// A reply token that expired or was used already (push instead).
pub fn is_invalid_reply_token(status: u16, body: &ErrorBody) -> bool {
    status == 400 && body.message.to_ascii_lowercase().contains("reply token")
}

fn describe(step: &str, status: u16, body: &ErrorBody) -> String {
    let mut text = format!("LINE {step} answered HTTP {status}");
    if !body.message.is_empty() {
        text.push_str(": ");
        text.push_str(&body.message);
    }
    for detail in &body.details {
        text.push_str(&format!(" [{}: {}]", detail.property, detail.message));
    }
    text
}

/// Classifies an HTTP status and the error body of `step` (`push`, `reply`).
pub fn classify(
    step: &str,
    status: u16,
    retry_after: Option<Duration>,
    body: &ErrorBody,
) -> DeliveryError {
    let detail = describe(step, status, body);
    let lower = body.message.to_ascii_lowercase();
    let property_is = |wanted: &dyn Fn(&str) -> bool| {
        body.details
            .iter()
            .any(|detail| wanted(detail.property.as_str()))
    };
    match status {
        429 if quota_spent(body) => DeliveryError::permanent(ReasonCode::RateLimited, detail),
        429 => DeliveryError::Retry {
            after: Some(retry_after.unwrap_or(DEFAULT_RETRY)),
            detail,
        },
        400 if lower.contains("blocked")
            || lower.contains("not a friend")
            || lower.contains("unfollow") =>
        {
            DeliveryError::permanent(ReasonCode::RecipientOptedOut, detail)
        }
        400 if property_is(&|p| p == "to") => {
            DeliveryError::permanent(ReasonCode::InvalidDestination, detail)
        }
        400 if property_is(&|p| p.ends_with("ContentUrl") || p.ends_with("imageUrl")) => {
            DeliveryError::permanent(ReasonCode::MediaTypeNotAllowed, detail)
        }
        400 => DeliveryError::permanent(ReasonCode::InvalidMessageStructure, detail),
        // A wrong or revoked channel access token: nothing to gain from
        // retrying until the tenant's secret changes.
        401 => DeliveryError::permanent(ReasonCode::GeneralError, detail),
        403 => DeliveryError::permanent(ReasonCode::MessageNotAllowed, detail),
        404 => DeliveryError::permanent(ReasonCode::InvalidDestination, detail),
        413 => DeliveryError::permanent(ReasonCode::InvalidMediaContentLength, detail),
        408 | 500..=599 => DeliveryError::Retry {
            after: retry_after,
            detail,
        },
        _ => DeliveryError::permanent(ReasonCode::GeneralError, detail),
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::ErrorDetail;
    use super::*;

    fn body(message: &str, details: &[(&str, &str)]) -> ErrorBody {
        ErrorBody {
            message: message.into(),
            details: details
                .iter()
                .map(|(property, message)| ErrorDetail {
                    property: (*property).into(),
                    message: (*message).into(),
                })
                .collect(),
            sent_messages: vec![],
        }
    }

    fn reason(status: u16, body: &ErrorBody) -> ReasonCode {
        match classify("push", status, None, body) {
            DeliveryError::Permanent { reason, .. } => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rate_limit_retries_but_monthly_quota_does_not() {
        let limited = body(
            "The API rate limit has been exceeded. Try again later.",
            &[],
        );
        assert_eq!(
            classify("push", 429, None, &limited),
            DeliveryError::Retry {
                after: Some(DEFAULT_RETRY),
                detail: "LINE push answered HTTP 429: The API rate limit has been exceeded. Try again later.".into()
            }
        );
        assert!(matches!(
            classify("push", 429, Some(Duration::from_secs(4)), &limited),
            DeliveryError::Retry { after: Some(after), .. } if after == Duration::from_secs(4)
        ));
        assert_eq!(
            reason(429, &body("You have reached your monthly limit.", &[])),
            ReasonCode::RateLimited
        );
    }

    #[test]
    fn bad_requests_by_cause() {
        assert_eq!(
            reason(
                400,
                &body(
                    "The request body has 1 error(s)",
                    &[("messages[0].text", "Length must be between 0 and 5000")]
                )
            ),
            ReasonCode::InvalidMessageStructure
        );
        assert_eq!(
            reason(
                400,
                &body(
                    "The property, 'to', in the request body is invalid",
                    &[("to", "invalid")]
                )
            ),
            ReasonCode::InvalidDestination
        );
        assert_eq!(
            reason(
                400,
                &body(
                    "The request body has 1 error(s)",
                    &[("messages[0].originalContentUrl", "must be https")]
                )
            ),
            ReasonCode::MediaTypeNotAllowed
        );
        assert_eq!(
            reason(400, &body("The user has blocked the account", &[])),
            ReasonCode::RecipientOptedOut
        );
        assert!(is_invalid_reply_token(
            400,
            &body("Invalid reply token", &[])
        ));
        assert!(!is_invalid_reply_token(
            400,
            &body("The request body has 1 error(s)", &[])
        ));
    }

    #[test]
    fn server_errors_retry_auth_errors_do_not() {
        assert!(matches!(
            classify("push", 503, None, &ErrorBody::default()),
            DeliveryError::Retry { after: None, .. }
        ));
        assert_eq!(
            reason(401, &body("Authentication failed", &[])),
            ReasonCode::GeneralError
        );
        assert_eq!(
            reason(
                403,
                &body("Access to this API is not available for your account", &[])
            ),
            ReasonCode::MessageNotAllowed
        );
    }
}
