//! OAuth client-credentials grant against a region's login host, and the
//! in-memory cache that keeps each token until shortly before it expires.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use um_config::Secret;

use crate::error::{ApiFailure, ErrorBody};
use crate::http::{read_failure, retry_after};

/// Tokens are renewed this long before Genesys would expire them.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// Genesys' shortest token lifetime, assumed when it does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(
        "Genesys Cloud refused the OAuth client credentials at {login_base_url} ({cause}); check the client id and secret of the tenant"
    )]
    InvalidCredentials {
        login_base_url: String,
        cause: ApiFailure,
    },
    #[error("requesting an OAuth token from {login_base_url} failed: {cause}")]
    Failed {
        login_base_url: String,
        cause: ApiFailure,
    },
}

impl LoginError {
    pub fn cause(&self) -> &ApiFailure {
        match self {
            LoginError::InvalidCredentials { cause, .. } | LoginError::Failed { cause, .. } => {
                cause
            }
        }
    }
}

/// A fresh access token and how long it may be used (its lifetime less
/// [`EXPIRY_MARGIN`]).
pub struct Token {
    pub access_token: Secret,
    pub usable_for: Duration,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Asks `{login_base_url}/oauth/token` for a client-credentials token.
/// 400, 401 and 403 mean the credentials are wrong; 429 carries Genesys'
/// `Retry-After`.
pub async fn login(
    http: &reqwest::Client,
    login_base_url: &str,
    credentials: &ClientCredentials,
) -> Result<Token, LoginError> {
    let login_base_url = login_base_url.trim_end_matches('/');
    let url = format!("{login_base_url}/oauth/token");
    let failed = |cause| LoginError::Failed {
        login_base_url: login_base_url.to_owned(),
        cause,
    };
    let transport = |source| ApiFailure::Transport {
        url: url.clone(),
        source,
    };
    let response = http
        .post(&url)
        .basic_auth(
            &credentials.client_id,
            Some(credentials.client_secret.expose()),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map_err(|source| failed(transport(source)))?;
    let status = response.status().as_u16();
    if status == 429 {
        return Err(failed(ApiFailure::RateLimited {
            retry_after: retry_after(&response),
        }));
    }
    if matches!(status, 400 | 401 | 403) {
        let text = response.text().await.unwrap_or_default();
        return Err(LoginError::InvalidCredentials {
            login_base_url: login_base_url.to_owned(),
            cause: ApiFailure::Status {
                status,
                body: ErrorBody::from_response_text(&text),
            },
        });
    }
    if !response.status().is_success() {
        return Err(failed(read_failure(response).await));
    }
    let text = response
        .text()
        .await
        .map_err(|source| failed(transport(source)))?;
    let body: TokenResponse =
        serde_json::from_str(&text).map_err(|err| failed(ApiFailure::Decode(err)))?;
    let lifetime = body
        .expires_in
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    Ok(Token {
        access_token: body.access_token,
        usable_for: lifetime
            .saturating_sub(EXPIRY_MARGIN)
            .max(Duration::from_secs(1)),
    })
}

struct Cached {
    token: Secret,
    /// Which credentials obtained it: rotated credentials invalidate it.
    credentials: ClientCredentials,
    valid_until: Instant,
}

/// Tokens by a caller's key (the connectors key them by tenant; the
/// operator's client, which serves one tenant, by one fixed key).
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, Cached>>,
}

impl TokenCache {
    fn entries(&self) -> MutexGuard<'_, HashMap<String, Cached>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The token cached under `key` if these credentials obtained it and it
    /// is still usable.
    pub fn cached(&self, key: &str, credentials: &ClientCredentials) -> Option<Secret> {
        self.entries()
            .get(key)
            .filter(|c| &c.credentials == credentials && c.valid_until > Instant::now())
            .map(|c| c.token.clone())
    }

    pub fn remember(
        &self,
        key: &str,
        credentials: &ClientCredentials,
        token: Secret,
        usable_for: Duration,
    ) {
        self.entries().insert(
            key.to_owned(),
            Cached {
                token,
                credentials: credentials.clone(),
                valid_until: Instant::now() + usable_for,
            },
        );
    }

    /// Genesys refused the token (401): forget it.
    pub fn forget(&self, key: &str) {
        self.entries().remove(key);
    }

    /// The cached token, or a fresh one from [`login`] that is then cached.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        login_base_url: &str,
        key: &str,
        credentials: &ClientCredentials,
    ) -> Result<Secret, LoginError> {
        if let Some(token) = self.cached(key, credentials) {
            return Ok(token);
        }
        let fresh = login(http, login_base_url, credentials).await?;
        self.remember(
            key,
            credentials,
            fresh.access_token.clone(),
            fresh.usable_for,
        );
        Ok(fresh.access_token)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::post;

    use super::*;

    fn credentials(secret: &str) -> ClientCredentials {
        ClientCredentials {
            client_id: "client-1".into(),
            client_secret: Secret::new(secret),
        }
    }

    /// A login host that grants "good" and counts the grants it gave.
    async fn login_host(
        answer: fn(&HeaderMap) -> axum::response::Response,
    ) -> (String, Arc<AtomicUsize>) {
        let grants = Arc::new(AtomicUsize::new(0));
        let counted = grants.clone();
        let app = axum::Router::new().route(
            "/oauth/token",
            post(move |headers: HeaderMap| async move {
                counted.fetch_add(1, Ordering::SeqCst);
                answer(&headers)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, grants)
    }

    fn grant_good(headers: &HeaderMap) -> axum::response::Response {
        // Basic base64("client-1:good")
        if headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some("Basic Y2xpZW50LTE6Z29vZA==")
        {
            axum::Json(serde_json::json!({"access_token": "tok-1", "expires_in": 86399}))
                .into_response()
        } else {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"error": "invalid_client", "description": "client not found"})),
            )
                .into_response()
        }
    }

    #[tokio::test]
    async fn a_token_is_fetched_once_and_cached_per_credentials() {
        let (base, grants) = login_host(grant_good).await;
        let http = reqwest::Client::new();
        let cache = TokenCache::default();
        let good = credentials("good");
        for _ in 0..3 {
            let token = cache.token(&http, &base, "t1", &good).await.unwrap();
            assert_eq!(token.expose(), "tok-1");
        }
        assert_eq!(grants.load(Ordering::SeqCst), 1);
        // Rotated credentials do not reuse the old token.
        assert!(cache.cached("t1", &credentials("rotated")).is_none());
        cache.forget("t1");
        cache.token(&http, &base, "t1", &good).await.unwrap();
        assert_eq!(grants.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refused_credentials_are_named_without_the_secret() {
        let (base, _) = login_host(grant_good).await;
        let err = login(
            &reqwest::Client::new(),
            &base,
            &credentials("wrong-secret-value"),
        )
        .await
        .err()
        .unwrap();
        assert!(
            matches!(err, LoginError::InvalidCredentials { .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("HTTP 401: client not found"), "{text}");
        assert!(!text.contains("wrong-secret-value"), "{text}");
    }

    #[tokio::test]
    async fn rate_limiting_carries_retry_after() {
        let (base, _) = login_host(|_| {
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "7")]).into_response()
        })
        .await;
        let err = login(&reqwest::Client::new(), &base, &credentials("good"))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(
                err.cause(),
                ApiFailure::RateLimited { retry_after: Some(d) } if *d == Duration::from_secs(7)
            ),
            "{err}"
        );
    }
}
