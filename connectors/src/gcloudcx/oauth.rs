//! OAuth client-credentials tokens per tenant: cached in memory until shortly
//! before expiry, shared with other replicas through Redis, dropped on 401.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use um_config::{GenesysConfig, Secret};

use crate::machinery::store::Store;

/// Store kind of cached tokens.
const TOKEN_KIND: &str = "oauth-token";
/// A token is renewed this long before Genesys says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("Genesys login for client {client_id}: {detail}")]
    Transport { client_id: String, detail: String },
    #[error("Genesys login for client {client_id} answered HTTP {status}")]
    Refused { client_id: String, status: u16 },
    #[error("Genesys login for client {client_id}: answer without access_token ({detail})")]
    Malformed { client_id: String, detail: String },
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct Cached {
    token: Secret,
    /// Which credentials obtained it: a rotated secret invalidates it.
    client: (String, Secret),
    valid_until: Instant,
}

#[derive(Clone, Default)]
pub struct TokenCache {
    tokens: Arc<Mutex<HashMap<String, Cached>>>,
}

fn lock(
    tokens: &Mutex<HashMap<String, Cached>>,
) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
    tokens
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TokenCache {
    /// A valid bearer token for the tenant.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        store: &Store,
        tenant: &str,
        genesys: &GenesysConfig,
    ) -> Result<Secret, TokenError> {
        if let Some(cached) = lock(&self.tokens).get(tenant)
            && cached.client.0 == genesys.client_id
            && cached.client.1 == genesys.client_secret
            && cached.valid_until > Instant::now()
        {
            return Ok(cached.token.clone());
        }
        let client = (genesys.client_id.clone(), genesys.client_secret.clone());
        let shared_id = &genesys.client_id;
        if let Ok(Some(shared)) = store.get(tenant, TOKEN_KIND, shared_id).await {
            // Redis expires it; keep it in memory for a short while only.
            self.remember(
                tenant,
                client,
                Secret::new(shared.clone()),
                Duration::from_secs(60),
            );
            return Ok(Secret::new(shared));
        }
        let (token, lifetime) = login(http, genesys).await?;
        let usable = lifetime
            .saturating_sub(EXPIRY_MARGIN)
            .max(Duration::from_secs(1));
        if let Err(error) = store
            .set(tenant, TOKEN_KIND, shared_id, token.expose(), Some(usable))
            .await
        {
            tracing::warn!(tenant, error = %error, "OAuth token not shared through Redis");
        }
        self.remember(tenant, client, token.clone(), usable);
        Ok(token)
    }

    fn remember(&self, tenant: &str, client: (String, Secret), token: Secret, usable: Duration) {
        lock(&self.tokens).insert(
            tenant.to_owned(),
            Cached {
                token,
                client,
                valid_until: Instant::now() + usable,
            },
        );
    }

    /// Genesys refused the token (401): forget it everywhere.
    pub async fn invalidate(&self, store: &Store, tenant: &str, genesys: &GenesysConfig) {
        lock(&self.tokens).remove(tenant);
        if let Err(error) = store.delete(tenant, TOKEN_KIND, &genesys.client_id).await {
            tracing::warn!(tenant, error = %error, "stale OAuth token not removed from Redis");
        }
    }
}

async fn login(
    http: &reqwest::Client,
    genesys: &GenesysConfig,
) -> Result<(Secret, Duration), TokenError> {
    let client_id = genesys.client_id.clone();
    let url = format!(
        "{}/oauth/token",
        genesys.login_base_url.trim_end_matches('/')
    );
    let response = http
        .post(url)
        .basic_auth(&genesys.client_id, Some(genesys.client_secret.expose()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map_err(|error| TokenError::Transport {
            client_id: client_id.clone(),
            detail: error.without_url().to_string(),
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(TokenError::Refused {
            client_id,
            status: status.as_u16(),
        });
    }
    let answer: TokenAnswer = response
        .json()
        .await
        .map_err(|error| TokenError::Malformed {
            client_id: client_id.clone(),
            detail: error.without_url().to_string(),
        })?;
    // Genesys allows 300 s to 2 days; assume the shortest when it is silent.
    let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(300));
    Ok((Secret::new(answer.access_token), lifetime))
}
