//! OAuth client-credentials grant against the region's login host, with the
//! token cached until shortly before it expires.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;
use um_config::Secret;

use super::error::{ApiFailure, ErrorBody, GenesysError};
use super::http::{read_failure, retry_after};

/// Tokens are renewed this long before Genesys would expire them.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct CachedToken {
    token: Secret,
    valid_until: Instant,
}

pub struct TokenSource {
    http: reqwest::Client,
    login_base_url: String,
    credentials: ClientCredentials,
    cached: Mutex<Option<CachedToken>>,
}

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        login_base_url: String,
        credentials: ClientCredentials,
    ) -> Self {
        Self {
            http,
            login_base_url,
            credentials,
            cached: Mutex::new(None),
        }
    }

    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// A valid access token, from the cache when it has one.
    pub async fn token(&self) -> Result<Secret, GenesysError> {
        let mut cached = self.cached.lock().await;
        if let Some(entry) = cached.as_ref()
            && entry.valid_until > Instant::now()
        {
            return Ok(entry.token.clone());
        }
        let fresh = self.request().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets the cached token (after Genesys answered 401 to it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn request(&self) -> Result<CachedToken, GenesysError> {
        let url = format!("{}/oauth/token", self.login_base_url);
        let token_error = |cause| GenesysError::Token {
            login_base_url: self.login_base_url.clone(),
            cause,
        };
        let response = self
            .http
            .post(&url)
            .basic_auth(
                &self.credentials.client_id,
                Some(self.credentials.client_secret.expose()),
            )
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|source| {
                token_error(ApiFailure::Transport {
                    url: url.clone(),
                    source,
                })
            })?;
        let status = response.status();
        if status.as_u16() == 429 {
            return Err(token_error(ApiFailure::RateLimited {
                retry_after: retry_after(&response),
            }));
        }
        if matches!(status.as_u16(), 400 | 401 | 403) {
            let text = response.text().await.unwrap_or_default();
            return Err(GenesysError::InvalidCredentials {
                login_base_url: self.login_base_url.clone(),
                cause: ApiFailure::Status {
                    status: status.as_u16(),
                    body: ErrorBody::from_response_text(&text),
                },
            });
        }
        if !status.is_success() {
            return Err(token_error(read_failure(response).await));
        }
        let text = response.text().await.map_err(|source| {
            token_error(ApiFailure::Transport {
                url: url.clone(),
                source,
            })
        })?;
        let body: TokenResponse =
            serde_json::from_str(&text).map_err(|err| token_error(ApiFailure::Decode(err)))?;
        // Genesys' minimum lifetime is 300 s; without expires_in assume that.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(300));
        Ok(CachedToken {
            token: body.access_token,
            valid_until: Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN),
        })
    }
}
