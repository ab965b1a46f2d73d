//! What a Slack Web API failure means for the delivery (pure).
//!
//! Slack answers most failures with HTTP 200 `{"ok":false,"error":"..."}`;
//! rate limits with HTTP 429 and `Retry-After`.

use std::time::Duration;

use crate::machinery::envelope::ReasonCode;
use crate::platform::DeliveryError;

/// Back-off when Slack answers 429 without `Retry-After`.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(1);

/// Classifies an answer that was not a success. `error` is Slack's error
/// code, `retry_after` the header when present; `method` names the call.
pub fn classify(
    method: &str,
    http_status: u16,
    error: Option<&str>,
    retry_after: Option<Duration>,
) -> DeliveryError {
    let code = error.unwrap_or("");
    let detail = if code.is_empty() {
        format!("{method}: HTTP {http_status}")
    } else {
        format!("{method}: {code}")
    };
    let permanent = |reason| DeliveryError::Permanent {
        reason,
        detail: detail.clone(),
    };
    if http_status == 429 || code == "ratelimited" || code == "rate_limited" {
        return DeliveryError::Retry {
            after: Some(retry_after.unwrap_or(DEFAULT_RETRY)),
            detail,
        };
    }
    match code {
        "channel_not_found" | "user_not_found" => permanent(ReasonCode::InvalidDestination),
        // The guest's side is gone or shut us out: archived conversation,
        // the bot removed from it, a deactivated user.
        "is_archived"
        | "not_in_channel"
        | "user_disabled"
        | "cannot_dm_bot"
        | "messages_tab_disabled" => permanent(ReasonCode::RecipientOptedOut),
        "invalid_blocks"
        | "invalid_blocks_format"
        | "msg_too_long"
        | "no_text"
        | "too_many_attachments"
        | "invalid_attachments"
        | "invalid_arguments"
        | "invalid_arg_name"
        | "invalid_array_arg"
        | "invalid_form_data"
        | "invalid_json"
        | "json_not_object" => permanent(ReasonCode::InvalidMessageStructure),
        "file_too_large" | "invalid_file_length" => {
            permanent(ReasonCode::InvalidMediaContentLength)
        }
        "restricted_action"
        | "restricted_action_read_only_channel"
        | "restricted_action_thread_only_channel"
        | "restricted_action_non_threadable_channel"
        | "ekm_access_denied"
        | "team_access_not_granted"
        | "duplicate_channel_not_found" => permanent(ReasonCode::MessageNotAllowed),
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
            DeliveryError::retry(detail)
        }
        // A revoked or wrong token: retrying will not help until the
        // workspace installs the app again.
        "invalid_auth"
        | "not_authed"
        | "token_revoked"
        | "token_expired"
        | "account_inactive"
        | "missing_scope"
        | "not_allowed_token_type" => permanent(ReasonCode::GeneralError),
        _ if (500..=599).contains(&http_status) || http_status == 408 => {
            DeliveryError::retry(detail)
        }
        _ => permanent(ReasonCode::GeneralError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str) -> ReasonCode {
        match classify("chat.postMessage", 200, Some(code), None) {
            DeliveryError::Permanent { reason, detail } => {
                assert_eq!(detail, format!("chat.postMessage: {code}"));
                reason
            }
            other => panic!("{code}: {other:?}"),
        }
    }

    #[test]
    fn error_codes_map_to_reasons() {
        assert_eq!(reason("channel_not_found"), ReasonCode::InvalidDestination);
        assert_eq!(reason("is_archived"), ReasonCode::RecipientOptedOut);
        assert_eq!(reason("not_in_channel"), ReasonCode::RecipientOptedOut);
        assert_eq!(
            reason("invalid_blocks"),
            ReasonCode::InvalidMessageStructure
        );
        assert_eq!(reason("msg_too_long"), ReasonCode::InvalidMessageStructure);
        assert_eq!(reason("token_revoked"), ReasonCode::GeneralError);
        assert_eq!(reason("something_new"), ReasonCode::GeneralError);
    }

    #[test]
    fn rate_limits_and_server_errors_retry() {
        assert_eq!(
            classify("chat.postMessage", 429, None, Some(Duration::from_secs(30))),
            DeliveryError::Retry {
                after: Some(Duration::from_secs(30)),
                detail: "chat.postMessage: HTTP 429".into()
            }
        );
        assert!(matches!(
            classify("chat.postMessage", 200, Some("ratelimited"), None),
            DeliveryError::Retry {
                after: Some(DEFAULT_RETRY),
                ..
            }
        ));
        assert!(matches!(
            classify("chat.postMessage", 503, None, None),
            DeliveryError::Retry { after: None, .. }
        ));
        assert!(matches!(
            classify("chat.postMessage", 200, Some("internal_error"), None),
            DeliveryError::Retry { .. }
        ));
    }
}
