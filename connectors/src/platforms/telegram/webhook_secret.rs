//! The `secret_token` of `setWebhook` — the Tenant's own
//! (`webhookSecretToken`) or, without one, derived from the bot token so
//! every replica computes the same value without shared state — and the
//! check of `X-Telegram-Bot-Api-Secret-Token`.

use um_config::Secret;

use crate::machinery::verify::{constant_time_eq, hmac_sha256};

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// hex(HMAC-SHA256(bot token, "um-telegram-webhook")): 64 characters of
/// `[0-9a-f]`, inside Telegram's 1–256 `[A-Za-z0-9_-]`. It reveals nothing
/// about the bot token.
pub fn derive_secret_token(bot_token: &str) -> String {
    hex::encode(hmac_sha256(bot_token.as_bytes(), b"um-telegram-webhook"))
}

/// The secret token of a bot: the configured one, else the derived one.
pub fn secret_token(bot_token: &Secret, configured: Option<&Secret>) -> String {
    match configured {
        Some(token) => token.expose().to_owned(),
        None => derive_secret_token(bot_token.expose()),
    }
}

/// Constant-time comparison of the header with the expected token.
pub fn verify(expected: &str, header: Option<&[u8]>) -> bool {
    header.is_some_and(|given| constant_time_eq(given, expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_valid_for_telegram_and_stable() {
        let token = derive_secret_token("123:ABC");
        assert_eq!(token.len(), 64);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
        assert_eq!(token, derive_secret_token("123:ABC"));
        assert_ne!(token, derive_secret_token("123:ABD"));
        assert!(!token.contains("ABC"));
    }

    #[test]
    fn verifies_only_the_right_header() {
        let bot = Secret::new("123:ABC");
        let token = secret_token(&bot, None);
        assert_eq!(token, derive_secret_token("123:ABC"));
        assert!(verify(&token, Some(token.as_bytes())));
        assert!(!verify(
            &derive_secret_token("123:ABD"),
            Some(token.as_bytes())
        ));
        assert!(!verify(&token, None));
        assert!(!verify(&token, Some(b"")));
        assert!(!verify(&token, Some(&token.as_bytes()[..63])));
    }

    #[test]
    fn a_configured_token_replaces_the_derived_one() {
        let bot = Secret::new("123:ABC");
        let own = Secret::new("tenant_own-secret_token");
        let token = secret_token(&bot, Some(&own));
        assert_eq!(token, "tenant_own-secret_token");
        assert!(verify(&token, Some(b"tenant_own-secret_token")));
        assert!(!verify(
            &token,
            Some(derive_secret_token("123:ABC").as_bytes())
        ));
    }
}
