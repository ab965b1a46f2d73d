//! `X-Line-Signature`: base64(HMAC-SHA256(channel secret, raw body)).

use base64::Engine;

use crate::machinery::verify::{SignatureEncoding, hmac_sha256, verify_hmac_sha256};

pub const SIGNATURE_HEADER: &str = "x-line-signature";

/// The header value LINE computes for `body` (also what the simulator sends).
pub fn sign(channel_secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(channel_secret.as_bytes(), body))
}

/// Constant-time check of the header against the raw body.
pub fn verify(channel_secret: &str, body: &[u8], header: Option<&str>) -> bool {
    match header {
        Some(signature) if !channel_secret.is_empty() => verify_hmac_sha256(
            channel_secret.as_bytes(),
            body,
            signature,
            "",
            SignatureEncoding::Base64,
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_and_tampering() {
        // Independent value: python3 -c "import hmac,hashlib,base64;
        // print(base64.b64encode(hmac.new(b'secret', b'{\"events\":[]}', hashlib.sha256).digest()))"
        let body = br#"{"events":[]}"#;
        let signature = sign("secret", body);
        assert_eq!(signature, "pkK1lVPJPiJ+wPLziRD79xIxohl8AImYM8AEeM7IbzQ=");
        assert!(verify("secret", body, Some(&signature)));
        assert!(!verify("other", body, Some(&signature)));
        assert!(!verify("secret", br#"{"events":[{}]}"#, Some(&signature)));
        assert!(!verify("secret", body, None));
        assert!(!verify("", body, Some(&sign("", body))));
        assert!(!verify("secret", body, Some("not base64")));
    }
}
