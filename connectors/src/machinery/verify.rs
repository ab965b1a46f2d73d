//! Signature checks every platform uses the same way: HMAC over the raw body,
//! compared in constant time so the comparison leaks nothing about how many
//! bytes matched.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Constant-time equality of two byte strings (length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// How a platform writes its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    /// Lower- or upper-case hex.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

fn decode(encoding: SignatureEncoding, signature: &str) -> Option<Vec<u8>> {
    let signature = signature.trim();
    match encoding {
        SignatureEncoding::Hex => hex::decode(signature).ok(),
        SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(signature)
            .ok(),
    }
}

/// Checks `signature` (optionally behind a prefix such as `sha256=`) against
/// HMAC-SHA256(key, data).
pub fn verify_hmac_sha256(
    key: &[u8],
    data: &[u8],
    signature: &str,
    prefix: &str,
    encoding: SignatureEncoding,
) -> bool {
    let Some(encoded) = signature.trim().strip_prefix(prefix) else {
        return false;
    };
    match decode(encoding, encoded) {
        Some(given) => constant_time_eq(&hmac_sha256(key, data), &given),
        None => false,
    }
}

/// Checks `signature` against HMAC-SHA1(key, data) (older platforms).
pub fn verify_hmac_sha1(
    key: &[u8],
    data: &[u8],
    signature: &str,
    prefix: &str,
    encoding: SignatureEncoding,
) -> bool {
    let Some(encoded) = signature.trim().strip_prefix(prefix) else {
        return false;
    };
    match decode(encoding, encoded) {
        Some(given) => constant_time_eq(&hmac_sha1(key, data), &given),
        None => false,
    }
}

/// Compares a shared secret sent verbatim (e.g. Telegram's
/// `X-Telegram-Bot-Api-Secret-Token`) in constant time.
pub fn verify_token(expected: &str, given: Option<&str>) -> bool {
    match given {
        Some(given) => {
            !expected.is_empty() && constant_time_eq(expected.as_bytes(), given.as_bytes())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn hmac_sha256_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verifies_prefixed_hex_and_base64() {
        let key = b"secret";
        let body = br#"{"a":1}"#;
        let mac = hmac_sha256(key, body);
        let hex_sig = format!("sha256={}", hex::encode(mac));
        assert!(verify_hmac_sha256(
            key,
            body,
            &hex_sig,
            "sha256=",
            SignatureEncoding::Hex
        ));
        assert!(!verify_hmac_sha256(
            key,
            b"{\"a\":2}",
            &hex_sig,
            "sha256=",
            SignatureEncoding::Hex
        ));
        assert!(!verify_hmac_sha256(
            key,
            body,
            &hex_sig,
            "sha1=",
            SignatureEncoding::Hex
        ));
        let b64 = base64::engine::general_purpose::STANDARD.encode(mac);
        assert!(verify_hmac_sha256(
            key,
            body,
            &b64,
            "",
            SignatureEncoding::Base64
        ));
        assert!(!verify_hmac_sha256(
            b"other",
            body,
            &b64,
            "",
            SignatureEncoding::Base64
        ));
        assert!(!verify_hmac_sha256(
            key,
            body,
            "not base64!",
            "",
            SignatureEncoding::Base64
        ));
        let sha1 = hex::encode(hmac_sha1(key, body));
        assert!(verify_hmac_sha1(
            key,
            body,
            &sha1,
            "",
            SignatureEncoding::Hex
        ));
    }

    #[test]
    fn token_comparison() {
        assert!(verify_token("t0k", Some("t0k")));
        assert!(!verify_token("t0k", Some("t0x")));
        assert!(!verify_token("t0k", None));
        assert!(!verify_token("", Some("")));
    }
}
