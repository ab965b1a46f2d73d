//! Slack request signing: `X-Slack-Signature: v0=<hex HMAC-SHA256(signing
//! secret, "v0:{X-Slack-Request-Timestamp}:{raw body}")>`, refused when the
//! timestamp is more than five minutes away from now (replays).

use chrono::{DateTime, Utc};

use crate::machinery::verify::{SignatureEncoding, hmac_sha256, verify_hmac_sha256};

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Largest distance between the request timestamp and our clock.
pub const MAX_SKEW_SECONDS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("X-Slack-Request-Timestamp is missing or not a number")]
    NoTimestamp,
    #[error("X-Slack-Request-Timestamp is {0} s away from now (at most 300 s allowed)")]
    Stale(i64),
    #[error("X-Slack-Signature is missing")]
    NoSignature,
    #[error("X-Slack-Signature does not verify")]
    Mismatch,
}

fn base_string(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut base = format!("v0:{timestamp}:").into_bytes();
    base.extend_from_slice(body);
    base
}

/// The `X-Slack-Signature` value Slack sends for `body` at `timestamp`.
pub fn sign(signing_secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "v0={}",
        hex::encode(hmac_sha256(
            signing_secret.as_bytes(),
            &base_string(timestamp, body)
        ))
    )
}

/// Checks both headers against the raw body (constant-time comparison).
pub fn verify(
    signing_secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let timestamp = timestamp
        .map(str::trim)
        .ok_or(SignatureError::NoTimestamp)?;
    let seconds: i64 = timestamp.parse().map_err(|_| SignatureError::NoTimestamp)?;
    let skew = now.timestamp().saturating_sub(seconds);
    if skew.abs() > MAX_SKEW_SECONDS {
        return Err(SignatureError::Stale(skew));
    }
    let signature = signature.ok_or(SignatureError::NoSignature)?;
    if signing_secret.is_empty() {
        return Err(SignatureError::Mismatch);
    }
    if verify_hmac_sha256(
        signing_secret.as_bytes(),
        &base_string(timestamp, body),
        signature,
        "v0=",
        SignatureEncoding::Hex,
    ) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn matches_the_published_example() {
        // The worked example of Slack's "Verifying requests from Slack".
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let signature = sign(secret, "1531420618", body);
        assert_eq!(
            signature,
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
        assert_eq!(
            verify(
                secret,
                Some("1531420618"),
                Some(&signature),
                body,
                at(1531420618 + 10)
            ),
            Ok(())
        );
    }

    #[test]
    fn refuses_tampering_staleness_and_missing_headers() {
        let now = at(1_700_000_000);
        let ts = "1700000000";
        let good = sign("s3cret", ts, b"{}");
        assert_eq!(
            verify("s3cret", Some(ts), Some(&good), b"{ }", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("other", Some(ts), Some(&good), b"{}", now),
            Err(SignatureError::Mismatch)
        );
        let old = sign("s3cret", "1699999600", b"{}");
        assert_eq!(
            verify("s3cret", Some("1699999600"), Some(&old), b"{}", now),
            Err(SignatureError::Stale(400))
        );
        let edge = sign("s3cret", "1699999700", b"{}");
        assert_eq!(
            verify("s3cret", Some("1699999700"), Some(&edge), b"{}", now),
            Ok(())
        );
        assert_eq!(
            verify("s3cret", None, Some(&good), b"{}", now),
            Err(SignatureError::NoTimestamp)
        );
        assert_eq!(
            verify("s3cret", Some(ts), None, b"{}", now),
            Err(SignatureError::NoSignature)
        );
        assert_eq!(
            verify(
                "s3cret",
                Some(ts),
                Some(good.trim_start_matches("v0=")),
                b"{}",
                now
            ),
            Err(SignatureError::Mismatch)
        );
    }
}
