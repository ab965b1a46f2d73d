//! Open Messaging integration CRUD (`/api/v2/conversations/messaging/integrations/open`)
//! and the operator's "make it so" on top: adopt or create, wait for the
//! asynchronous create, patch what changed, delete idempotently.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use um_config::Secret;

use um_genesys::http::read_failure;
use um_genesys::{ApiFailure, ClientCredentials, TokenCache};

use super::directory::{IntegrationDirectory, Listed, Organisation};
use super::error::GenesysError;
use crate::region::GenesysEndpoints;

const INTEGRATIONS_PATH: &str = "/api/v2/conversations/messaging/integrations/open";

/// What the Tenant asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationSpec {
    pub name: String,
    pub webhook_url: String,
    pub webhook_token: Secret,
    pub supported_content_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdRef {
    pub id: String,
}

/// The fields of Genesys' `OpenIntegration` the operator reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenIntegration {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub outbound_notification_webhook_url: Option<String>,
    #[serde(default)]
    pub outbound_notification_webhook_signature_secret_token: Option<Secret>,
    #[serde(default)]
    pub supported_content: Option<IdRef>,
    /// `Initiated`, `Completed` or `Error`.
    #[serde(default)]
    pub create_status: Option<String>,
    #[serde(default)]
    pub create_error: Option<um_genesys::ErrorBody>,
}

impl OpenIntegration {
    /// The fields that differ from the spec (names only, for Events).
    pub fn differences(&self, spec: &IntegrationSpec) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.name != spec.name {
            changed.push("name");
        }
        if self.outbound_notification_webhook_url.as_deref() != Some(spec.webhook_url.as_str()) {
            changed.push("webhook URL");
        }
        // Genesys echoes the token back; when it does not, there is nothing
        // to compare and the token is left as it is.
        if let Some(token) = &self.outbound_notification_webhook_signature_secret_token
            && token != &spec.webhook_token
        {
            changed.push("webhook token");
        }
        if let Some(wanted) = &spec.supported_content_id
            && self.supported_content.as_ref().map(|s| &s.id) != Some(wanted)
        {
            changed.push("supported content");
        }
        changed
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntegrationListing {
    #[serde(default)]
    entities: Vec<OpenIntegration>,
    #[serde(default)]
    page_count: Option<u32>,
}

/// How the create poll backs off and when it gives up for this reconcile.
#[derive(Debug, Clone, Copy)]
pub struct PollPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub give_up_after: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            give_up_after: Duration::from_secs(30),
        }
    }
}

/// What [`GenesysClient::ensure_integration`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnsureOutcome {
    Created {
        id: String,
    },
    /// Found by name and webhook URL (a previous create whose id was never
    /// recorded) and reused.
    Adopted {
        id: String,
    },
    Updated {
        id: String,
        fields: Vec<&'static str>,
    },
    Unchanged {
        id: String,
    },
}

impl EnsureOutcome {
    pub fn id(&self) -> &str {
        match self {
            EnsureOutcome::Created { id }
            | EnsureOutcome::Adopted { id }
            | EnsureOutcome::Updated { id, .. }
            | EnsureOutcome::Unchanged { id } => id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    AlreadyGone,
}

/// A client for one Genesys Cloud organisation (one OAuth client).
pub struct GenesysClient {
    http: reqwest::Client,
    endpoints: GenesysEndpoints,
    credentials: ClientCredentials,
    tokens: TokenCache,
    poll: PollPolicy,
    directory: Arc<IntegrationDirectory>,
}

/// The one key under which a client (one tenant's credentials) caches.
const TOKEN_KEY: &str = "";

impl GenesysClient {
    pub fn new(
        http: reqwest::Client,
        endpoints: GenesysEndpoints,
        credentials: ClientCredentials,
    ) -> Self {
        Self {
            http,
            endpoints,
            credentials,
            tokens: TokenCache::default(),
            poll: PollPolicy::default(),
            directory: Arc::default(),
        }
    }

    pub fn with_poll_policy(mut self, poll: PollPolicy) -> Self {
        self.poll = poll;
        self
    }

    /// Shares one directory between the clients of an organisation (the
    /// operator holds a client per Tenant).
    pub fn with_directory(mut self, directory: Arc<IntegrationDirectory>) -> Self {
        self.directory = directory;
        self
    }

    fn organisation(&self) -> Organisation {
        Organisation {
            api_base_url: self.endpoints.api_base_url.clone(),
            client_id: self.credentials.client_id.clone(),
        }
    }

    /// Whether this client was built for these endpoints and credentials.
    pub fn serves(&self, endpoints: &GenesysEndpoints, credentials: &ClientCredentials) -> bool {
        &self.endpoints == endpoints && &self.credentials == credentials
    }

    /// One authenticated call; a 401 drops the cached token and retries once
    /// with a fresh one (tokens can be revoked before they expire).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, CallError> {
        let url = format!("{}{}", self.endpoints.api_base_url, path);
        for attempt in 0..2 {
            let token = self
                .tokens
                .token(
                    &self.http,
                    &self.endpoints.login_base_url,
                    TOKEN_KEY,
                    &self.credentials,
                )
                .await
                .map_err(|err| CallError::Token(err.into()))?;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token.expose());
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|source| {
                CallError::Api(ApiFailure::Transport {
                    url: url.clone(),
                    source,
                })
            })?;
            if response.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                self.tokens.forget(TOKEN_KEY);
                continue;
            }
            return Ok(response);
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn json<T: DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, ApiFailure> {
        if !response.status().is_success() {
            return Err(read_failure(response).await);
        }
        let url = response.url().to_string();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ApiFailure::Transport { url, source })?;
        serde_json::from_slice(&bytes).map_err(ApiFailure::Decode)
    }

    pub async fn create_integration(
        &self,
        spec: &IntegrationSpec,
    ) -> Result<OpenIntegration, GenesysError> {
        let wrap = |err: CallError| {
            err.into_genesys(|cause| GenesysError::Create {
                name: spec.name.clone(),
                cause,
            })
        };
        let response = self
            .call(Method::POST, INTEGRATIONS_PATH, Some(&request_body(spec)))
            .await
            .map_err(wrap)?;
        let created: OpenIntegration =
            self.json(response)
                .await
                .map_err(|cause| GenesysError::Create {
                    name: spec.name.clone(),
                    cause,
                })?;
        self.directory
            .remember(&self.organisation(), listed(spec), created.id.clone())
            .await;
        Ok(created)
    }

    /// None when Genesys answers 404.
    pub async fn get_integration(&self, id: &str) -> Result<Option<OpenIntegration>, GenesysError> {
        let get_error = |cause| GenesysError::Get {
            id: id.to_owned(),
            cause,
        };
        let response = self
            .call(Method::GET, &format!("{INTEGRATIONS_PATH}/{id}"), None)
            .await
            .map_err(|err| err.into_genesys(get_error))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.json(response).await.map(Some).map_err(get_error)
    }

    /// Every integration of the organisation (all pages).
    pub async fn list_integrations(&self) -> Result<Vec<OpenIntegration>, GenesysError> {
        let mut all = Vec::new();
        let mut page = 1u32;
        loop {
            let path = format!("{INTEGRATIONS_PATH}?pageSize=100&pageNumber={page}");
            let response = self
                .call(Method::GET, &path, None)
                .await
                .map_err(|err| err.into_genesys(|cause| GenesysError::List { cause }))?;
            let listing: IntegrationListing = self
                .json(response)
                .await
                .map_err(|cause| GenesysError::List { cause })?;
            let empty = listing.entities.is_empty();
            all.extend(listing.entities);
            // Bounded: a server that never reports a page count stops at the
            // first empty page.
            match listing.page_count {
                Some(count) if page < count => page += 1,
                None if !empty && page < 100 => page += 1,
                _ => return Ok(all),
            }
        }
    }

    pub async fn update_integration(
        &self,
        id: &str,
        spec: &IntegrationSpec,
    ) -> Result<OpenIntegration, GenesysError> {
        let update_error = |cause| GenesysError::Update {
            id: id.to_owned(),
            cause,
        };
        let response = self
            .call(
                Method::PATCH,
                &format!("{INTEGRATIONS_PATH}/{id}"),
                Some(&request_body(spec)),
            )
            .await
            .map_err(|err| err.into_genesys(update_error))?;
        let updated = self.json(response).await.map_err(update_error)?;
        self.directory
            .remember(&self.organisation(), listed(spec), id.to_owned())
            .await;
        Ok(updated)
    }

    /// 404 counts as gone: deleting twice is fine.
    pub async fn delete_integration(&self, id: &str) -> Result<DeleteOutcome, GenesysError> {
        let delete_error = |cause| GenesysError::Delete {
            id: id.to_owned(),
            cause,
        };
        let response = self
            .call(Method::DELETE, &format!("{INTEGRATIONS_PATH}/{id}"), None)
            .await
            .map_err(|err| err.into_genesys(delete_error))?;
        let outcome = match response.status() {
            StatusCode::NOT_FOUND => DeleteOutcome::AlreadyGone,
            status if status.is_success() => DeleteOutcome::Deleted,
            _ => return Err(delete_error(read_failure(response).await)),
        };
        self.directory.forget(&self.organisation(), id).await;
        Ok(outcome)
    }

    /// Polls `createStatus` until `Completed` (Ok) or `Error` (CreateFailed
    /// with Genesys' message), backing off; gives up with CreatePending.
    pub async fn wait_until_created(
        &self,
        mut integration: OpenIntegration,
    ) -> Result<OpenIntegration, GenesysError> {
        let started = Instant::now();
        let mut delay = self.poll.first_delay;
        loop {
            match integration.create_status.as_deref() {
                // An integration without createStatus predates async creation.
                None | Some("Completed") => return Ok(integration),
                Some("Error") => {
                    let message = integration
                        .create_error
                        .as_ref()
                        .map(|body| body.summary())
                        .unwrap_or_else(|| "createStatus is Error without createError".to_owned());
                    return Err(GenesysError::CreateFailed {
                        id: integration.id,
                        message,
                    });
                }
                Some(_) => {}
            }
            if started.elapsed() + delay > self.poll.give_up_after {
                return Err(GenesysError::CreatePending {
                    id: integration.id,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.poll.max_delay);
            let id = integration.id.clone();
            integration =
                self.get_integration(&id)
                    .await?
                    .ok_or_else(|| GenesysError::CreateFailed {
                        id: id.clone(),
                        message: "the integration disappeared while it was being created"
                            .to_owned(),
                    })?;
        }
    }

    /// Makes Genesys hold exactly one integration matching `spec`:
    /// `known_id` (from the Tenant's status) is read and patched when it
    /// differs; without one, or when it is gone, an integration with the
    /// same name and webhook URL is adopted, else one is created. A create
    /// that ends in `Error` is deleted so the next attempt starts clean.
    pub async fn ensure_integration(
        &self,
        known_id: Option<&str>,
        spec: &IntegrationSpec,
    ) -> Result<EnsureOutcome, GenesysError> {
        if let Some(id) = known_id
            && let Some(existing) = self.get_integration(id).await?
        {
            return self.converge(existing, spec, false).await;
        }
        if let Some(existing) = self.find_integration(spec).await? {
            return self.converge(existing, spec, true).await;
        }
        let created = self.create_integration(spec).await?;
        let id = created.id.clone();
        match self.wait_until_created(created).await {
            Ok(_) => Ok(EnsureOutcome::Created { id }),
            Err(err @ GenesysError::CreateFailed { .. }) => {
                // Best effort: the create already failed; its error is what matters.
                let _ = self.delete_integration(&id).await;
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    /// The integration with the spec's name and webhook URL, if Genesys
    /// holds one (a create whose id was never recorded). Looked up in the
    /// organisation's directory, which lists every integration only when
    /// it holds no fresh listing.
    pub async fn find_integration(
        &self,
        spec: &IntegrationSpec,
    ) -> Result<Option<OpenIntegration>, GenesysError> {
        let organisation = self.organisation();
        let id = self
            .directory
            .find(&organisation, &listed(spec), || async {
                Ok::<_, GenesysError>(
                    self.list_integrations()
                        .await?
                        .into_iter()
                        .filter_map(|integration| {
                            let webhook_url = integration.outbound_notification_webhook_url?;
                            Some((
                                Listed {
                                    name: integration.name,
                                    webhook_url,
                                },
                                integration.id,
                            ))
                        })
                        .collect(),
                )
            })
            .await?;
        let Some(id) = id else { return Ok(None) };
        // Changed in Genesys since it was listed: not this spec's any more.
        let found = self.get_integration(&id).await?.filter(|found| {
            found.name == spec.name
                && found.outbound_notification_webhook_url.as_deref()
                    == Some(spec.webhook_url.as_str())
        });
        if found.is_none() {
            self.directory.forget(&organisation, &id).await;
        }
        Ok(found)
    }

    async fn converge(
        &self,
        existing: OpenIntegration,
        spec: &IntegrationSpec,
        adopted: bool,
    ) -> Result<EnsureOutcome, GenesysError> {
        let id = existing.id.clone();
        let existing = match self.wait_until_created(existing).await {
            Ok(done) => done,
            Err(err @ GenesysError::CreateFailed { .. }) => {
                let _ = self.delete_integration(&id).await;
                return Err(err);
            }
            Err(err) => return Err(err),
        };
        let fields = existing.differences(spec);
        if !fields.is_empty() {
            self.update_integration(&id, spec).await?;
            if !adopted {
                return Ok(EnsureOutcome::Updated { id, fields });
            }
        }
        Ok(if adopted {
            EnsureOutcome::Adopted { id }
        } else {
            EnsureOutcome::Unchanged { id }
        })
    }
}

fn listed(spec: &IntegrationSpec) -> Listed {
    Listed {
        name: spec.name.clone(),
        webhook_url: spec.webhook_url.clone(),
    }
}

fn request_body(spec: &IntegrationSpec) -> serde_json::Value {
    let mut body = serde_json::json!({
        "name": spec.name,
        "outboundNotificationWebhookUrl": spec.webhook_url,
        "outboundNotificationWebhookSignatureSecretToken": spec.webhook_token.expose(),
    });
    if let Some(id) = &spec.supported_content_id {
        body["supportedContent"] = serde_json::json!({ "id": id });
    }
    body
}

/// A call fails either while getting a token or in the call itself.
enum CallError {
    Token(GenesysError),
    Api(ApiFailure),
}

impl CallError {
    fn into_genesys(self, step: impl FnOnce(ApiFailure) -> GenesysError) -> GenesysError {
        match self {
            CallError::Token(err) => err,
            CallError::Api(cause) => step(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> IntegrationSpec {
        IntegrationSpec {
            name: "ACME Telegram".into(),
            webhook_url: "https://um.example.com/openmessaging/shop.acme".into(),
            webhook_token: Secret::new("0123456789abcdefXYZ"),
            supported_content_id: None,
        }
    }

    fn observed(json: serde_json::Value) -> OpenIntegration {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn differences_name_the_changed_fields() {
        let same = observed(serde_json::json!({
            "id": "i1", "name": "ACME Telegram",
            "outboundNotificationWebhookUrl": "https://um.example.com/openmessaging/shop.acme",
            "outboundNotificationWebhookSignatureSecretToken": "0123456789abcdefXYZ",
        }));
        assert!(same.differences(&spec()).is_empty());
        let changed = observed(serde_json::json!({
            "id": "i1", "name": "Old name",
            "outboundNotificationWebhookUrl": "https://old/openmessaging/shop.acme",
            "outboundNotificationWebhookSignatureSecretToken": "another-token-of-16+",
        }));
        assert_eq!(
            changed.differences(&spec()),
            vec!["name", "webhook URL", "webhook token"]
        );
        let no_token_echo = observed(serde_json::json!({
            "id": "i1", "name": "ACME Telegram",
            "outboundNotificationWebhookUrl": "https://um.example.com/openmessaging/shop.acme",
        }));
        assert!(no_token_echo.differences(&spec()).is_empty());
    }

    #[test]
    fn request_body_has_genesys_field_names() {
        let mut with_content = spec();
        with_content.supported_content_id = Some("sc-1".into());
        let body = request_body(&with_content);
        assert_eq!(body["name"], "ACME Telegram");
        assert_eq!(
            body["outboundNotificationWebhookUrl"],
            "https://um.example.com/openmessaging/shop.acme"
        );
        assert_eq!(
            body["outboundNotificationWebhookSignatureSecretToken"],
            "0123456789abcdefXYZ"
        );
        assert_eq!(body["supportedContent"]["id"], "sc-1");
        assert!(request_body(&spec()).get("supportedContent").is_none());
    }

    #[test]
    fn debug_of_an_integration_hides_the_token() {
        let integration = observed(serde_json::json!({
            "id": "i1", "name": "n", "outboundNotificationWebhookSignatureSecretToken": "very-secret-token-123",
        }));
        assert!(!format!("{integration:?}").contains("very-secret"));
    }
}
