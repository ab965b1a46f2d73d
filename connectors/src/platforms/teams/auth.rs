//! Authentication of inbound activities: the `Authorization: Bearer <JWT>`
//! the Bot Framework channel signs with a key published in its OpenID
//! metadata. Checked: RS256 signature by a published key endorsed for the
//! activity's channel, issuer `https://api.botframework.com`, audience = the
//! bot's app id, expiry and not-before (5 minutes of clock skew), and the
//! `serviceurl` claim equal to the activity's `serviceUrl`.
//!
//! [`KeyCache`] holds the signing keys per metadata URL: refreshed once a
//! day, and at once when a token names a key it does not know (keys
//! rotate), at most every [`KeyCache::min_refresh`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

/// `iss` of every token the Bot Framework channel sends to a bot.
pub const BOT_FRAMEWORK_ISSUER: &str = "https://api.botframework.com";
/// Clock skew the Bot Framework SDKs allow.
pub const CLOCK_SKEW_SECONDS: u64 = 300;
/// How long published keys are trusted without asking again.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Least time between two fetches caused by an unknown key id, so forged
/// tokens with random key ids cannot make the connector hammer the metadata.
pub const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no Bearer token in Authorization")]
    Missing,
    #[error("token is not a Bot Framework JWT: {0}")]
    Malformed(String),
    #[error("token signed by unknown key {0:?}")]
    UnknownKey(String),
    #[error("signing key {kid:?} is not endorsed for channel {channel:?}")]
    NotEndorsed { kid: String, channel: String },
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("serviceurl claim does not match the activity's serviceUrl")]
    ServiceUrlMismatch,
    #[error("signing key unusable: {0}")]
    Keys(String),
    /// The OpenID metadata or key set could not be fetched (and no cached
    /// key matches): the token cannot be judged now.
    #[error("signing keys unreachable: {0}")]
    KeysUnreachable(String),
}

/// One published signing key (JWK) with the Bot Framework `endorsements`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Jwk {
    #[serde(default)]
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub endorsements: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OpenIdMetadata {
    pub jwks_uri: String,
}

/// What the token must say for this activity.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub app_id: &'a str,
    pub service_url: &'a str,
    pub channel_id: &'a str,
}

#[derive(Debug, Deserialize)]
struct Claims {
    /// The SDKs name the claim `serviceurl`; accept the camel-case spelling
    /// some emulators use.
    #[serde(default)]
    serviceurl: Option<String>,
    #[serde(default, rename = "serviceUrl")]
    service_url: Option<String>,
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(value: Option<&str>) -> Result<&str, AuthError> {
    let value = value.ok_or(AuthError::Missing)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(token)
}

/// The key id the token names (RS256 only).
pub fn key_id(token: &str) -> Result<String, AuthError> {
    let header = decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
    if header.alg != Algorithm::RS256 {
        return Err(AuthError::Malformed(format!(
            "algorithm {:?}, expected RS256",
            header.alg
        )));
    }
    header
        .kid
        .ok_or_else(|| AuthError::Malformed("no kid in the header".to_owned()))
}

fn same_service_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Validates `token` with the published `key` (pure but for the clock).
pub fn validate(token: &str, key: &Jwk, expected: Expected<'_>) -> Result<(), AuthError> {
    let kid = key.kid.clone().unwrap_or_default();
    if !key.endorsements.iter().any(|e| e == expected.channel_id) {
        return Err(AuthError::NotEndorsed {
            kid,
            channel: expected.channel_id.to_owned(),
        });
    }
    let (Some(n), Some(e)) = (&key.n, &key.e) else {
        return Err(AuthError::Keys(format!("key {kid:?} is not an RSA key")));
    };
    let decoding = DecodingKey::from_rsa_components(n, e)
        .map_err(|error| AuthError::Keys(format!("key {kid:?}: {error}")))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[expected.app_id]);
    validation.set_issuer(&[BOT_FRAMEWORK_ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.leeway = CLOCK_SKEW_SECONDS;
    validation.validate_nbf = true;
    let data = decode::<Claims>(token, &decoding, &validation)
        .map_err(|error| AuthError::Invalid(error.to_string()))?;
    let claimed = data.claims.serviceurl.or(data.claims.service_url);
    match claimed {
        Some(url) if same_service_url(&url, expected.service_url) => Ok(()),
        _ => Err(AuthError::ServiceUrlMismatch),
    }
}

struct CachedKeys {
    keys: Vec<Jwk>,
    fetched: Instant,
}

/// Signing keys per OpenID metadata URL, shared by every tenant.
pub struct KeyCache {
    cached: tokio::sync::Mutex<HashMap<String, CachedKeys>>,
    min_refresh: Duration,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(DEFAULT_MIN_REFRESH)
    }
}

impl KeyCache {
    pub fn new(min_refresh: Duration) -> Self {
        Self {
            cached: tokio::sync::Mutex::new(HashMap::new()),
            min_refresh,
        }
    }

    pub fn min_refresh(&self) -> Duration {
        self.min_refresh
    }

    /// The key `kid` published under `metadata_url`, fetching the metadata
    /// and key set when none are cached, they are older than a day, or
    /// `kid` is unknown (rotation). Fetches are serialised per process.
    pub async fn key(
        &self,
        http: &reqwest::Client,
        metadata_url: &str,
        kid: &str,
    ) -> Result<Jwk, AuthError> {
        let mut cached = self.cached.lock().await;
        let find = |keys: &[Jwk]| keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned();
        let refetch = match cached.get(metadata_url) {
            None => true,
            Some(entry) => {
                let age = entry.fetched.elapsed();
                match find(&entry.keys) {
                    Some(key) if age < KEYS_MAX_AGE => return Ok(key),
                    Some(_) => true,
                    None => age >= self.min_refresh,
                }
            }
        };
        if refetch {
            match fetch_keys(http, metadata_url).await {
                Ok(keys) => {
                    tracing::info!(metadata = %metadata_url, keys = keys.len(), "Bot Framework signing keys fetched");
                    cached.insert(
                        metadata_url.to_owned(),
                        CachedKeys {
                            keys,
                            fetched: Instant::now(),
                        },
                    );
                }
                // A known key stays usable while the metadata is unreachable.
                Err(error) => match cached.get(metadata_url).and_then(|e| find(&e.keys)) {
                    Some(key) => {
                        tracing::warn!(error = %error, "signing keys not refreshed, using cached ones");
                        return Ok(key);
                    }
                    None => return Err(error),
                },
            }
        }
        cached
            .get(metadata_url)
            .and_then(|entry| find(&entry.keys))
            .ok_or_else(|| AuthError::UnknownKey(kid.to_owned()))
    }
}

async fn fetch_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    what: &str,
) -> Result<T, AuthError> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| AuthError::KeysUnreachable(format!("{what} {url}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(AuthError::KeysUnreachable(format!(
            "{what} {url}: HTTP {status}"
        )));
    }
    response
        .json::<T>()
        .await
        .map_err(|e| AuthError::KeysUnreachable(format!("{what} {url}: {e}")))
}

async fn fetch_keys(http: &reqwest::Client, metadata_url: &str) -> Result<Vec<Jwk>, AuthError> {
    let metadata: OpenIdMetadata = fetch_json(http, metadata_url, "OpenID metadata").await?;
    let set: JwkSet = fetch_json(http, &metadata.jwks_uri, "key set").await?;
    Ok(set.keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const PRIVATE_KEY: &str = include_str!("testdata/signing-key.pem");
    const MODULUS: &str = include_str!("testdata/signing-key.n");
    const SERVICE_URL: &str = "https://smba.trafficmanager.net/amer/";

    fn key() -> Jwk {
        Jwk {
            kty: "RSA".into(),
            kid: Some("k1".into()),
            n: Some(MODULUS.trim().into()),
            e: Some("AQAB".into()),
            endorsements: vec!["msteams".into()],
        }
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn token(claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        let key = EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).unwrap();
        encode(&header, &claims, &key).unwrap()
    }

    fn good_claims() -> serde_json::Value {
        json!({"iss": BOT_FRAMEWORK_ISSUER, "aud": "app-1", "exp": now() + 3600,
               "nbf": now() - 10, "serviceurl": SERVICE_URL})
    }

    fn expected() -> Expected<'static> {
        Expected {
            app_id: "app-1",
            service_url: SERVICE_URL,
            channel_id: "msteams",
        }
    }

    fn with(field: &str, value: serde_json::Value) -> String {
        let mut claims = good_claims();
        claims[field] = value;
        token(claims)
    }

    #[test]
    fn a_good_token_passes() {
        let token = token(good_claims());
        assert_eq!(key_id(&token).unwrap(), "k1");
        assert_eq!(validate(&token, &key(), expected()), Ok(()));
    }

    #[test]
    fn wrong_audience_issuer_expiry_and_service_url_fail() {
        let invalid = |token: String| validate(&token, &key(), expected());
        assert!(matches!(
            invalid(with("aud", json!("other-app"))),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            invalid(with("iss", json!("https://sts.windows.net/x/"))),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            invalid(with("exp", json!(now() - 600))),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            invalid(with("nbf", json!(now() + 900))),
            Err(AuthError::Invalid(_))
        ));
        assert_eq!(
            invalid(with("serviceurl", json!("https://evil.example/"))),
            Err(AuthError::ServiceUrlMismatch)
        );
        let mut claims = good_claims();
        claims.as_object_mut().unwrap().remove("serviceurl");
        assert_eq!(invalid(token(claims)), Err(AuthError::ServiceUrlMismatch));
    }

    #[test]
    fn expiry_within_clock_skew_passes() {
        assert_eq!(
            validate(&with("exp", json!(now() - 60)), &key(), expected()),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let token = token(good_claims());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut payload: serde_json::Value =
            serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
        payload["aud"] = json!("app-1");
        payload["serviceurl"] = json!(SERVICE_URL);
        payload["extra"] = json!("forged");
        parts[1] = engine.encode(payload.to_string());
        let forged = parts.join(".");
        assert!(matches!(
            validate(&forged, &key(), expected()),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn a_key_not_endorsed_for_the_channel_fails() {
        let mut key = key();
        key.endorsements = vec!["webchat".into()];
        assert!(matches!(
            validate(&token(good_claims()), &key, expected()),
            Err(AuthError::NotEndorsed { .. })
        ));
    }

    #[test]
    fn bearer_and_header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer(Some("Basic abc")), Err(AuthError::Missing));
        assert_eq!(bearer(Some("Bearer ")), Err(AuthError::Missing));
        assert_eq!(bearer(None), Err(AuthError::Missing));
        assert!(matches!(key_id("not.a.jwt"), Err(AuthError::Malformed(_))));
        let hs = encode(
            &Header::new(Algorithm::HS256),
            &good_claims(),
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        assert!(matches!(key_id(&hs), Err(AuthError::Malformed(_))));
    }
}
