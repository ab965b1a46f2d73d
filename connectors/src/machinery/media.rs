//! Signed, expiring media URLs.
//!
//! A platform's file URL often embeds its credential (Telegram
//! `https://api.telegram.org/file/bot<token>/...`). The connector never hands
//! such a URL on: it publishes `<tenant webhook URL>/media/<ref>?exp=&sig=`
//! instead and serves the bytes itself. `sig` is HMAC-SHA256 over tenant,
//! reference and expiry with a key derived per tenant (from the configured
//! `UM_MEDIA_SIGNING_KEY` and the tenant's own credentials), so one tenant's
//! URLs cannot be forged from another's, and rotating a credential revokes
//! the URLs signed with it.
//!
//! The bytes are the guest's or the agent's, not ours: whoever opens such a
//! URL in a browser must not have an HTML page or an SVG script run under
//! the connector's origin. So media goes out with [`safe_headers`]: its
//! declared type only when that is image, audio or video a browser renders
//! inertly, `application/octet-stream` and `Content-Disposition:
//! attachment` otherwise, and `X-Content-Type-Options: nosniff` always.

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::header::{self, HeaderMap, HeaderValue};
use um_config::{Secret, TenantConfig};

use crate::machinery::verify::{constant_time_eq, hmac_sha256};

pub const DEFAULT_MEDIA_URL_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaUrlError {
    #[error("media URL expired")]
    Expired,
    #[error("media URL signature does not verify")]
    BadSignature,
}

#[derive(Clone)]
pub struct MediaSigner {
    base_key: Option<Secret>,
    ttl: Duration,
}

impl std::fmt::Debug for MediaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSigner")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl MediaSigner {
    pub fn new(base_key: Option<Secret>, ttl: Duration) -> Self {
        Self {
            base_key: base_key.filter(|k| !k.is_empty()),
            ttl,
        }
    }

    fn tenant_key(&self, tenant: &TenantConfig) -> [u8; 32] {
        // The tenant's credentials as the operator rendered them: whatever
        // the service holds for this tenant and nobody outside does.
        let mut material = Vec::new();
        if let Some(messaging) = &tenant.messaging {
            material.extend(serde_json::to_vec(messaging).unwrap_or_default());
        }
        if let Some(genesys) = &tenant.genesys {
            material.extend(serde_json::to_vec(genesys).unwrap_or_default());
        }
        let base = self
            .base_key
            .as_ref()
            .map(|k| k.expose().as_bytes())
            .unwrap_or(b"um-media-v1");
        let credential_digest = hmac_sha256(base, &material);
        hmac_sha256(
            &credential_digest,
            format!("um-media-v1\0{}", tenant.key).as_bytes(),
        )
    }

    fn signature(&self, tenant: &TenantConfig, media_ref: &str, exp: i64) -> [u8; 32] {
        let key = self.tenant_key(tenant);
        hmac_sha256(
            &key,
            format!("{}\n{}\n{}", tenant.key, media_ref, exp).as_bytes(),
        )
    }

    /// `(exp, sig)` for a reference, valid until `now + ttl`.
    pub fn sign(
        &self,
        tenant: &TenantConfig,
        media_ref: &str,
        now: DateTime<Utc>,
    ) -> (i64, String) {
        let exp = now.timestamp() + self.ttl.as_secs() as i64;
        (exp, hex::encode(self.signature(tenant, media_ref, exp)))
    }

    /// The public URL: `<webhook_url>/media/<ref>?exp=<unix>&sig=<hex>`.
    pub fn url(&self, tenant: &TenantConfig, media_ref: &str) -> String {
        self.url_at(tenant, media_ref, Utc::now())
    }

    pub fn url_at(&self, tenant: &TenantConfig, media_ref: &str, now: DateTime<Utc>) -> String {
        let (exp, sig) = self.sign(tenant, media_ref, now);
        let encoded: String = url::form_urlencoded::byte_serialize(media_ref.as_bytes()).collect();
        format!(
            "{}/media/{}?exp={exp}&sig={sig}",
            tenant.webhook_url.trim_end_matches('/'),
            encoded.replace('+', "%20")
        )
    }

    pub fn verify(
        &self,
        tenant: &TenantConfig,
        media_ref: &str,
        exp: i64,
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MediaUrlError> {
        let given = hex::decode(sig).map_err(|_| MediaUrlError::BadSignature)?;
        if !constant_time_eq(&self.signature(tenant, media_ref, exp), &given) {
            return Err(MediaUrlError::BadSignature);
        }
        if now.timestamp() > exp {
            return Err(MediaUrlError::Expired);
        }
        Ok(())
    }
}

/// The content type media declared as `declared` is served with: its
/// essence (`image/png` of `image/png; q=1`) when it is image, audio or
/// video, else `application/octet-stream`. SVG and other XML images can
/// carry scripts: octet-stream.
pub fn served_content_type(declared: &str) -> String {
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let token = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    let inert = match essence.split_once('/') {
        Some((kind, subtype)) if token(kind) && token(subtype) => {
            matches!(kind, "image" | "audio" | "video")
                && !subtype.contains("xml")
                && !subtype.contains("svg")
        }
        _ => false,
    };
    if inert {
        essence
    } else {
        OCTET_STREAM.to_owned()
    }
}

const OCTET_STREAM: &str = "application/octet-stream";

/// Sets `Content-Type` ([`served_content_type`]), `X-Content-Type-Options:
/// nosniff`, and `Content-Disposition: attachment` unless the type is
/// image, audio or video.
pub fn safe_headers(headers: &mut HeaderMap, declared: &str) {
    let served = served_content_type(declared);
    let inline = served != OCTET_STREAM;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&served).unwrap_or(HeaderValue::from_static(OCTET_STREAM)),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if inline {
        headers.remove(header::CONTENT_DISPOSITION);
    } else {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_audio_and_video_keep_their_type() {
        for (declared, served) in [
            ("image/png", "image/png"),
            ("IMAGE/JPEG; foo=bar", "image/jpeg"),
            ("audio/ogg; codecs=opus", "audio/ogg"),
            ("video/mp4", "video/mp4"),
        ] {
            assert_eq!(served_content_type(declared), served, "{declared}");
        }
    }

    #[test]
    fn anything_else_is_octet_stream() {
        for declared in [
            "text/html",
            "text/html; charset=utf-8",
            "application/pdf",
            "image/svg+xml",
            "image/SVG",
            "application/xhtml+xml",
            "image/",
            "image",
            "",
            "image/png\r\nX-Injected: 1",
        ] {
            assert_eq!(served_content_type(declared), OCTET_STREAM, "{declared:?}");
        }
    }

    #[test]
    fn headers_say_nosniff_and_attachment_unless_inline() {
        let mut headers = HeaderMap::new();
        safe_headers(&mut headers, "text/html");
        assert_eq!(headers[header::CONTENT_TYPE], OCTET_STREAM);
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::CONTENT_DISPOSITION], "attachment");
        let mut headers = HeaderMap::new();
        safe_headers(&mut headers, "image/png");
        assert_eq!(headers[header::CONTENT_TYPE], "image/png");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(headers.get(header::CONTENT_DISPOSITION).is_none());
    }
}
