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

use std::time::Duration;

use chrono::{DateTime, Utc};
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
