//! What a Viber answer means for a delivery (pure). Viber answers most
//! failures with HTTP 200 and a non-zero `status`.

use std::time::Duration;

use crate::machinery::envelope::ReasonCode;
use crate::platform::DeliveryError;

/// Back-off for `tooManyRequests` (12): Viber gives no hint.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(1);

/// The Viber status codes of the REST Bot API.
pub mod status {
    pub const OK: i64 = 0;
    pub const INVALID_URL: i64 = 1;
    pub const INVALID_AUTH_TOKEN: i64 = 2;
    pub const BAD_DATA: i64 = 3;
    pub const MISSING_DATA: i64 = 4;
    pub const RECEIVER_NOT_REGISTERED: i64 = 5;
    pub const RECEIVER_NOT_SUBSCRIBED: i64 = 6;
    pub const PUBLIC_ACCOUNT_BLOCKED: i64 = 7;
    pub const PUBLIC_ACCOUNT_NOT_FOUND: i64 = 8;
    pub const PUBLIC_ACCOUNT_SUSPENDED: i64 = 9;
    pub const WEBHOOK_NOT_SET: i64 = 10;
    pub const RECEIVER_NO_SUITABLE_DEVICE: i64 = 11;
    pub const TOO_MANY_REQUESTS: i64 = 12;
    pub const API_VERSION_NOT_SUPPORTED: i64 = 13;
    pub const INCOMPATIBLE_WITH_VERSION: i64 = 14;
}

/// A non-zero `status` of a send as a delivery failure.
pub fn classify_status(method: &str, code: i64, message: &str) -> DeliveryError {
    let detail = format!("Viber {method}: status {code} {message}");
    let permanent = |reason| DeliveryError::permanent(reason, detail.clone());
    match code {
        status::TOO_MANY_REQUESTS => DeliveryError::Retry {
            after: Some(DEFAULT_RETRY),
            detail,
        },
        status::RECEIVER_NOT_REGISTERED | status::RECEIVER_NOT_SUBSCRIBED => {
            permanent(ReasonCode::RecipientOptedOut)
        }
        status::BAD_DATA | status::MISSING_DATA | status::INVALID_URL => {
            permanent(ReasonCode::InvalidMessageStructure)
        }
        status::RECEIVER_NO_SUITABLE_DEVICE
        | status::API_VERSION_NOT_SUPPORTED
        | status::INCOMPATIBLE_WITH_VERSION => permanent(ReasonCode::UnsupportedMessage),
        status::PUBLIC_ACCOUNT_BLOCKED | status::PUBLIC_ACCOUNT_SUSPENDED => {
            permanent(ReasonCode::MessageNotAllowed)
        }
        // A wrong token, a missing account or webhook: nothing a retry of
        // this message fixes; the tenant must change.
        status::INVALID_AUTH_TOKEN | status::PUBLIC_ACCOUNT_NOT_FOUND | status::WEBHOOK_NOT_SET => {
            permanent(ReasonCode::GeneralError)
        }
        _ => permanent(ReasonCode::GeneralError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: i64) -> ReasonCode {
        match classify_status("send_message", code, "x") {
            DeliveryError::Permanent { reason, .. } => reason,
            retry => panic!("{retry:?}"),
        }
    }

    #[test]
    fn unsubscribed_and_unregistered_are_opt_outs() {
        assert_eq!(reason(5), ReasonCode::RecipientOptedOut);
        assert_eq!(reason(6), ReasonCode::RecipientOptedOut);
    }

    #[test]
    fn bad_payloads_and_versions() {
        assert_eq!(reason(3), ReasonCode::InvalidMessageStructure);
        assert_eq!(reason(4), ReasonCode::InvalidMessageStructure);
        assert_eq!(reason(13), ReasonCode::UnsupportedMessage);
        assert_eq!(reason(7), ReasonCode::MessageNotAllowed);
        assert_eq!(reason(2), ReasonCode::GeneralError);
        assert_eq!(reason(99), ReasonCode::GeneralError);
    }

    #[test]
    fn too_many_requests_retries() {
        assert_eq!(
            classify_status("send_message", 12, "tooManyRequests"),
            DeliveryError::Retry {
                after: Some(DEFAULT_RETRY),
                detail: "Viber send_message: status 12 tooManyRequests".into()
            }
        );
    }
}
