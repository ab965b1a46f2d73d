//! The add-friend link of a LINE Official Account (pure): the URL a
//! customer's phone opens from the QR code, and the JSON
//! `GET /line/{tenant}/friend-link` answers.

use serde::Serialize;

use super::types::BotInfo;

/// LINE's add-friend URL prefix; the account's id follows, `@` as `%40`
/// as in the links LINE itself hands out.
pub const ADD_FRIEND_PREFIX: &str = "https://line.me/R/ti/p/";

/// Longest id accepted after the `@` (basic ids have 8 characters, premium
/// ids at most 18); anything longer is not an id LINE issues.
const MAX_ID_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BasicIdError {
    #[error("LINE answered an empty basicId")]
    Empty,
    #[error(
        "LINE answered a basicId that is not @ followed by letters, digits, '.', '_' or '-': {0:?}"
    )]
    Malformed(String),
}

/// `https://line.me/R/ti/p/%40123abcde` for `@123abcde`. The id is checked
/// rather than escaped: LINE's ids are `@` plus ASCII letters, digits and
/// `._-`, so anything else means the answer was not what LINE sends.
pub fn add_friend_url(basic_id: &str) -> Result<String, BasicIdError> {
    let trimmed = basic_id.trim();
    if trimmed.is_empty() {
        return Err(BasicIdError::Empty);
    }
    let id = trimmed
        .strip_prefix('@')
        .filter(|id| {
            (1..=MAX_ID_LEN).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .ok_or_else(|| BasicIdError::Malformed(trimmed.to_owned()))?;
    Ok(format!("{ADD_FRIEND_PREFIX}%40{id}"))
}

/// The answer of `GET /line/{tenant}/friend-link`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FriendLink {
    pub basic_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub premium_id: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    /// The add-friend URL the QR code holds.
    pub url: String,
    /// Where the connector serves the QR code (SVG).
    pub qr_code: String,
    /// The same QR code as PNG.
    pub qr_code_png: String,
}

/// The friend link of the bot `info`, whose tenant's webhook URL is
/// `webhook_url` (the QR code routes sit under it).
pub fn friend_link(info: &BotInfo, webhook_url: &str) -> Result<FriendLink, BasicIdError> {
    let base = webhook_url.trim_end_matches('/');
    Ok(FriendLink {
        basic_id: info.basic_id.trim().to_owned(),
        premium_id: info.premium_id.clone().filter(|id| !id.is_empty()),
        display_name: info.display_name.clone(),
        url: add_friend_url(&info.basic_id)?,
        qr_code: format!("{base}/qr.svg"),
        qr_code_png: format!("{base}/qr.png"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_id_becomes_the_add_friend_url_with_the_at_sign_encoded() {
        assert_eq!(
            add_friend_url("@123abcde").unwrap(),
            "https://line.me/R/ti/p/%40123abcde"
        );
        assert_eq!(
            add_friend_url(" @shop.tokyo_1-a ").unwrap(),
            "https://line.me/R/ti/p/%40shop.tokyo_1-a"
        );
    }

    #[test]
    fn ids_line_does_not_issue_are_refused() {
        assert_eq!(add_friend_url(""), Err(BasicIdError::Empty));
        for bad in [
            "123abcde",
            "@",
            "@a/b",
            "@a b",
            "@abc?x=1",
            "@アカウント",
            "@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(
                matches!(add_friend_url(bad), Err(BasicIdError::Malformed(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn friend_link_points_at_the_qr_routes_under_the_webhook_url() {
        let info = BotInfo {
            user_id: "Ubot".into(),
            basic_id: "@123abcde".into(),
            premium_id: Some(String::new()),
            display_name: "ACME Support".into(),
            picture_url: None,
        };
        let link = friend_link(&info, "https://um.example/line/shop.acme/").unwrap();
        assert_eq!(
            serde_json::to_value(&link).unwrap(),
            serde_json::json!({
                "basicId": "@123abcde",
                "displayName": "ACME Support",
                "url": "https://line.me/R/ti/p/%40123abcde",
                "qrCode": "https://um.example/line/shop.acme/qr.svg",
                "qrCodePng": "https://um.example/line/shop.acme/qr.png",
            })
        );
        let premium = BotInfo {
            premium_id: Some("@acme".into()),
            ..info
        };
        assert_eq!(
            friend_link(&premium, "https://um.example/line/shop.acme")
                .unwrap()
                .premium_id
                .as_deref(),
            Some("@acme")
        );
    }
}
