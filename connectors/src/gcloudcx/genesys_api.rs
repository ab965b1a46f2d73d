//! Posting to the Open Messaging inbound endpoints with the tenant's token.

use chrono::Utc;
use um_config::GenesysConfig;

use um_genesys::{ApiFailure, LoginError};

use super::oauth::SharedTokens;
use super::to_genesys::GenesysRequest;
use crate::machinery::bus::HandlerError;
use crate::machinery::envelope::ReasonCode;
use crate::machinery::http_client::retry_after;
use crate::machinery::store::Store;

pub struct GenesysApi<'a> {
    pub http: &'a reqwest::Client,
    pub store: &'a Store,
    pub tokens: &'a SharedTokens,
    pub tenant: &'a str,
    pub genesys: &'a GenesysConfig,
    pub integration_id: &'a str,
}

/// Even refused credentials are retried (until dead-lettered): an
/// administrator fixes them, and the guest's message must not be dropped.
/// A rate-limited login waits as long as Genesys asked.
fn token_error(error: LoginError) -> HandlerError {
    let after = match error.cause() {
        ApiFailure::RateLimited { retry_after } => *retry_after,
        _ => None,
    };
    HandlerError::Retry {
        after,
        detail: error.to_string(),
    }
}

impl GenesysApi<'_> {
    pub fn url(&self, request: &GenesysRequest) -> String {
        format!(
            "{}/api/v2/conversations/messages/{}/{}",
            self.genesys.api_base_url.trim_end_matches('/'),
            self.integration_id,
            request.endpoint()
        )
    }

    /// Posts one request. 401 drops the cached token and retries at once,
    /// 429 and 5xx are retried after `Retry-After` or the back-off, other
    /// 4xx are permanent: the same body would be refused again.
    pub async fn post(&self, request: &GenesysRequest) -> Result<(), HandlerError> {
        let step = request.endpoint();
        let url = self.url(request);
        let body = request.to_body();
        for fresh_token in [false, true] {
            let token = self
                .tokens
                .token(self.http, self.store, self.tenant, self.genesys)
                .await
                .map_err(token_error)?;
            let response = self
                .http
                .post(&url)
                .bearer_auth(token.expose())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|error| {
                    HandlerError::retry(format!("Genesys {step}: {}", error.without_url()))
                })?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            if status == reqwest::StatusCode::UNAUTHORIZED && !fresh_token {
                self.tokens
                    .invalidate(self.store, self.tenant, self.genesys)
                    .await;
                continue;
            }
            let after = retry_after(response.headers(), Utc::now());
            let text = response.text().await.unwrap_or_default();
            let detail = format!(
                "Genesys {step} answered HTTP {}: {}",
                status.as_u16(),
                text.chars().take(300).collect::<String>()
            );
            return Err(
                if status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
                    || status == reqwest::StatusCode::UNAUTHORIZED
                {
                    HandlerError::Retry { after, detail }
                } else {
                    HandlerError::Permanent {
                        reason: Some(ReasonCode::InvalidMessageStructure),
                        detail,
                    }
                },
            );
        }
        Err(HandlerError::retry(format!(
            "Genesys {step}: token refused twice"
        )))
    }
}
