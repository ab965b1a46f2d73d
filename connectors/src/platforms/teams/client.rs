//! HTTP I/O with the Bot Framework: the tenant's bot settings and endpoints,
//! client-credential tokens from the Microsoft identity platform (cached in
//! Redis until shortly before they expire), sending activities to a
//! conversation's `serviceUrl`, and downloading inbound files.

use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use um_config::{MessagingConfig, Secret, TenantConfig};

use super::errors::classify;
use super::types::{ConversationRef, ResourceResponse};
use crate::machinery::envelope::ReasonCode;
use crate::platform::{DeliveryError, PlatformContext};

pub const OPENID_METADATA_URL: &str =
    "https://login.botframework.com/v1/.well-known/openidconfiguration";
pub const OPENID_METADATA_PATH: &str = "/v1/.well-known/openidconfiguration";
pub const LOGIN_BASE_URL: &str = "https://login.microsoftonline.com";
/// The authority of multi-tenant bots.
pub const DEFAULT_AUTH_TENANT: &str = "botframework.com";
pub const TOKEN_SCOPE: &str = "https://api.botframework.com/.default";
/// A cached token is dropped this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);
const TOKEN_KIND: &str = "teams-token";

/// A tenant's bot: `settings.appId`, `secrets.appPassword`,
/// `settings.appTenantId` and the endpoints. The operator's `api_base_url`
/// (a simulator in tests) serves both the OpenID metadata and the token
/// endpoint; without it the real Bot Framework and identity platform.
#[derive(Debug, Clone)]
pub struct Bot {
    pub app_id: String,
    pub app_password: Secret,
    pub auth_tenant: String,
    pub openid_metadata_url: String,
    pub login_base_url: String,
    /// The operator's `api_base_url`, if set: files on its origin are
    /// fetched as configured ([`crate::machinery::url_policy::FetchRules`]).
    pub api_base_url: Option<String>,
}

impl Bot {
    pub fn of(tenant: &TenantConfig) -> Result<Self, String> {
        let Some(MessagingConfig::Teams(teams)) = &tenant.messaging else {
            return Err(format!("tenant {} has no Teams bot configured", tenant.key));
        };
        if teams.app_id.is_empty() {
            return Err(format!("tenant {} has no Teams appId", tenant.key));
        }
        let base = teams
            .api_base_url
            .as_deref()
            .map(|base| base.trim_end_matches('/'))
            .filter(|base| !base.is_empty());
        Ok(Self {
            app_id: teams.app_id.clone(),
            app_password: teams.app_password.clone(),
            auth_tenant: teams
                .app_tenant_id
                .clone()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| DEFAULT_AUTH_TENANT.to_owned()),
            openid_metadata_url: base.map_or_else(
                || OPENID_METADATA_URL.to_owned(),
                |base| format!("{base}{OPENID_METADATA_PATH}"),
            ),
            login_base_url: base.unwrap_or(LOGIN_BASE_URL).to_owned(),
            api_base_url: base.map(str::to_owned),
        })
    }

    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_base_url, self.auth_tenant
        )
    }

    /// Cache id of this bot's token: changes with the password, so a
    /// rotated password never reuses a token of the old one.
    fn token_cache_id(&self) -> String {
        let digest = Sha256::digest(
            format!(
                "{}\n{}\n{}",
                self.app_id,
                self.token_url(),
                self.app_password.expose()
            )
            .as_bytes(),
        );
        hex::encode(&digest[..16])
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

async fn request_token(http: &reqwest::Client, bot: &Bot) -> Result<(String, u64), DeliveryError> {
    let url = bot.token_url();
    let response = http
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", bot.app_id.as_str()),
            ("client_secret", bot.app_password.expose()),
            ("scope", TOKEN_SCOPE),
        ])
        .send()
        .await
        .map_err(|e| DeliveryError::retry(format!("token request to {url}: {e}")))?;
    let status = response.status().as_u16();
    if status == 429 || status >= 500 {
        return Err(DeliveryError::retry(format!(
            "token endpoint {url} answered HTTP {status}"
        )));
    }
    if !(200..300).contains(&status) {
        // AADSTS7000215 (bad secret), 700016 (unknown app): no retry helps.
        return Err(DeliveryError::permanent(
            ReasonCode::GeneralError,
            format!(
                "token endpoint {url} refused app {}: HTTP {status}",
                bot.app_id
            ),
        ));
    }
    let answer: TokenAnswer = response
        .json()
        .await
        .map_err(|e| DeliveryError::retry(format!("token answer of {url}: {e}")))?;
    Ok((answer.access_token, answer.expires_in.unwrap_or(3600)))
}

/// A bearer token for the Bot Connector API, from Redis or fetched.
pub async fn access_token(
    ctx: &PlatformContext,
    tenant_key: &str,
    bot: &Bot,
) -> Result<Secret, DeliveryError> {
    let id = bot.token_cache_id();
    match ctx.store.get(tenant_key, TOKEN_KIND, &id).await {
        Ok(Some(token)) => return Ok(Secret::new(token)),
        Ok(None) => {}
        Err(error) => tracing::warn!(error = %error, "token cache unavailable"),
    }
    let (token, expires_in) = request_token(&ctx.http(), bot).await?;
    let ttl = Duration::from_secs(expires_in).saturating_sub(TOKEN_MARGIN);
    if !ttl.is_zero()
        && let Err(error) = ctx
            .store
            .set(tenant_key, TOKEN_KIND, &id, &token, ttl)
            .await
    {
        tracing::warn!(error = %error, "token not cached");
    }
    Ok(Secret::new(token))
}

/// Drops the cached token (the channel refused it).
pub async fn forget_token(ctx: &PlatformContext, tenant_key: &str, bot: &Bot) {
    if let Err(error) = ctx
        .store
        .delete(tenant_key, TOKEN_KIND, &bot.token_cache_id())
        .await
    {
        tracing::warn!(error = %error, "cached token not dropped");
    }
}

/// `{serviceUrl}/v3/conversations/{conversationId}/activities`, the id
/// percent-encoded as one path segment.
pub fn activities_url(conversation: &ConversationRef) -> Result<url::Url, DeliveryError> {
    let mut url = url::Url::parse(&conversation.service_url).map_err(|e| {
        DeliveryError::permanent(ReasonCode::InvalidDestination, format!("serviceUrl: {e}"))
    })?;
    url.path_segments_mut()
        .map_err(|()| {
            DeliveryError::permanent(
                ReasonCode::InvalidDestination,
                "serviceUrl cannot be a base",
            )
        })?
        .pop_if_empty()
        .extend([
            "v3",
            "conversations",
            &conversation.conversation_id,
            "activities",
        ]);
    Ok(url)
}

/// A refused send: the HTTP status (None: no answer) and what it means.
#[derive(Debug)]
pub struct SendError {
    pub status: Option<u16>,
    pub error: DeliveryError,
}

impl From<DeliveryError> for SendError {
    fn from(error: DeliveryError) -> Self {
        Self {
            status: None,
            error,
        }
    }
}

/// Posts one activity; the id the channel gave it.
pub async fn send_activity(
    http: &reqwest::Client,
    conversation: &ConversationRef,
    token: &Secret,
    activity: &serde_json::Value,
) -> Result<Option<String>, SendError> {
    let url = activities_url(conversation)?;
    let response = http
        .post(url.clone())
        .bearer_auth(token.expose())
        .json(activity)
        .send()
        .await
        .map_err(|e| DeliveryError::retry(format!("POST {url}: {e}")))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        let answer: ResourceResponse = response.json().await.unwrap_or_default();
        return Ok(answer.id);
    }
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await.unwrap_or_default();
    Err(SendError {
        status: Some(status),
        error: classify(status, retry_after.as_deref(), &body),
    })
}

/// Whether `url` is served by the origin of `service_url` (the only place
/// the bot token may go).
pub fn same_origin(url: &str, service_url: &str) -> bool {
    match (url::Url::parse(url), url::Url::parse(service_url)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platforms::teams::types::{ChannelAccount, Scope};

    fn tenant(api_base_url: Option<&str>, tenant_id: Option<&str>) -> TenantConfig {
        crate::platforms::teams::inbound::tests::tenant().with_messaging(MessagingConfig::Teams(
            um_config::TeamsConfig {
                app_id: "app-1".into(),
                app_password: Secret::new("pw"),
                app_tenant_id: tenant_id.map(str::to_owned),
                app: Default::default(),
                api_base_url: api_base_url.map(str::to_owned),
            },
        ))
    }

    #[test]
    fn real_endpoints_by_default_and_the_tenant_authority() {
        let bot = Bot::of(&tenant(None, None)).unwrap();
        assert_eq!(bot.openid_metadata_url, OPENID_METADATA_URL);
        assert_eq!(
            bot.token_url(),
            "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
        );
        let single = Bot::of(&tenant(None, Some("contoso-tenant"))).unwrap();
        assert_eq!(
            single.token_url(),
            "https://login.microsoftonline.com/contoso-tenant/oauth2/v2.0/token"
        );
        let sim = Bot::of(&tenant(Some("http://127.0.0.1:9/"), None)).unwrap();
        assert_eq!(
            sim.openid_metadata_url,
            "http://127.0.0.1:9/v1/.well-known/openidconfiguration"
        );
        assert_eq!(
            sim.token_url(),
            "http://127.0.0.1:9/botframework.com/oauth2/v2.0/token"
        );
        assert_ne!(bot.token_cache_id(), sim.token_cache_id());
        let no_bot = crate::platforms::teams::inbound::tests::tenant();
        assert!(Bot::of(&no_bot).unwrap_err().contains("no Teams bot"));
    }

    #[test]
    fn activities_url_encodes_the_conversation_id() {
        let conversation = ConversationRef {
            service_url: "https://smba.trafficmanager.net/amer/".into(),
            conversation_id: "19:abc@thread.tacv2;messageid=17/x".into(),
            scope: Scope::Channel,
            bot: ChannelAccount::default(),
            user: ChannelAccount::default(),
            tenant_id: None,
        };
        assert_eq!(
            activities_url(&conversation).unwrap().as_str(),
            "https://smba.trafficmanager.net/amer/v3/conversations/19:abc@thread.tacv2;messageid=17%2Fx/activities"
        );
    }

    #[test]
    fn the_token_goes_only_to_the_service_origin() {
        let service = "https://smba.trafficmanager.net/amer/";
        assert!(same_origin(
            "https://smba.trafficmanager.net/amer/v3/attachments/1",
            service
        ));
        assert!(!same_origin(
            "https://evil.example/amer/v3/attachments/1",
            service
        ));
        assert!(!same_origin(
            "http://smba.trafficmanager.net/amer/",
            service
        ));
    }
}
