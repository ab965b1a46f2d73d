//! `X-Hub-Signature-256` of the Open Messaging outbound webhook:
//! `sha256=` + base64(HMAC-SHA256(integration token, raw body)).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::machinery::verify::{SignatureEncoding, hmac_sha256, verify_hmac_sha256};

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The header value Genesys sends for `body` (also used by tests).
pub fn sign(token: &[u8], body: &[u8]) -> String {
    format!("sha256={}", STANDARD.encode(mac(token, body)))
}

fn mac(token: &[u8], body: &[u8]) -> [u8; 32] {
    hmac_sha256(token, body)
}

/// Whether `header` is the signature of `body` under `token`, compared in
/// constant time. A missing prefix or undecodable value does not verify.
pub fn verify(token: &[u8], body: &[u8], header: Option<&str>) -> bool {
    header.is_some_and(|signature| {
        verify_hmac_sha256(token, body, signature, "sha256=", SignatureEncoding::Base64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently: printf '{"id":"1"}' |
    //   openssl dgst -sha256 -hmac 0123456789abcdef -binary | base64
    const BODY: &[u8] = br#"{"id":"1"}"#;
    const TOKEN: &[u8] = b"0123456789abcdef";
    const OPENSSL_B64: &str = "SINzXswafIer5Gk2e5pTmFvGZZ/fNEGb9hVpwqF2og4=";

    #[test]
    fn matches_openssl() {
        assert_eq!(sign(TOKEN, BODY), format!("sha256={}", OPENSSL_B64));
    }

    #[test]
    fn verifies_own_signature_only() {
        let header = sign(TOKEN, BODY);
        assert!(verify(TOKEN, BODY, Some(&header)));
        assert!(!verify(b"another-token-0000", BODY, Some(&header)));
        assert!(!verify(TOKEN, br#"{"id":"2"}"#, Some(&header)));
    }

    #[test]
    fn refuses_missing_malformed_or_hex() {
        assert!(!verify(TOKEN, BODY, None));
        assert!(!verify(TOKEN, BODY, Some("sha256=not base64!")));
        let hex_form = format!("sha256={}", hex::encode(mac(TOKEN, BODY)));
        assert!(!verify(TOKEN, BODY, Some(&hex_form)));
        let without_prefix = sign(TOKEN, BODY).trim_start_matches("sha256=").to_owned();
        assert!(!verify(TOKEN, BODY, Some(&without_prefix)));
    }
}
