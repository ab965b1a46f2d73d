//! Genesys OAuth tokens per tenant: the shared login and in-memory cache of
//! `um-genesys`, plus Redis so that every gcloudcx replica uses one token
//! instead of logging in on its own.

use std::sync::Arc;
use std::time::Duration;

use um_config::{GenesysConfig, Secret};
use um_genesys::{ClientCredentials, LoginError, TokenCache};

use crate::machinery::store::Store;

/// Store kind of cached tokens.
const TOKEN_KIND: &str = "oauth-token";
/// A token read from Redis is kept in memory this long only: Redis owns its
/// expiry.
const SHARED_TOKEN_MEMORY: Duration = Duration::from_secs(60);

fn credentials(genesys: &GenesysConfig) -> ClientCredentials {
    ClientCredentials {
        client_id: genesys.client_id.clone(),
        client_secret: genesys.client_secret.clone(),
    }
}

#[derive(Clone, Default)]
pub struct SharedTokens {
    memory: Arc<TokenCache>,
}

impl SharedTokens {
    /// A valid bearer token for the tenant: from memory, else from Redis,
    /// else from a login whose token is then shared.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        store: &Store,
        tenant: &str,
        genesys: &GenesysConfig,
    ) -> Result<Secret, LoginError> {
        let credentials = credentials(genesys);
        if let Some(token) = self.memory.cached(tenant, &credentials) {
            return Ok(token);
        }
        let shared_id = &genesys.client_id;
        if let Ok(Some(shared)) = store.get(tenant, TOKEN_KIND, shared_id).await {
            let token = Secret::new(shared);
            self.memory
                .remember(tenant, &credentials, token.clone(), SHARED_TOKEN_MEMORY);
            return Ok(token);
        }
        let fresh = um_genesys::login(http, &genesys.login_base_url, &credentials).await?;
        if let Err(error) = store
            .set(
                tenant,
                TOKEN_KIND,
                shared_id,
                fresh.access_token.expose(),
                fresh.usable_for,
            )
            .await
        {
            tracing::warn!(tenant, error = %error, "OAuth token not shared through Redis");
        }
        self.memory.remember(
            tenant,
            &credentials,
            fresh.access_token.clone(),
            fresh.usable_for,
        );
        Ok(fresh.access_token)
    }

    /// Genesys refused the token (401): forget it everywhere.
    pub async fn invalidate(&self, store: &Store, tenant: &str, genesys: &GenesysConfig) {
        self.memory.forget(tenant);
        if let Err(error) = store.delete(tenant, TOKEN_KIND, &genesys.client_id).await {
            tracing::warn!(tenant, error = %error, "stale OAuth token not removed from Redis");
        }
    }
}
