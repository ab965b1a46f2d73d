//! A tenant's Slack settings (keys of the Tenant's `slack` spec) and the
//! per-workspace installs kept in Redis.

use serde::{Deserialize, Serialize};
use um_config::{MessagingConfig, Secret, TenantConfig};

use crate::store::{Store, StoreError};

/// Slack's host: Web API under `/api/`, OAuth pages under `/oauth/v2/`.
pub const DEFAULT_BASE_URL: &str = "https://slack.com";
/// Store kind of a workspace install (id: team id).
pub const INSTALL_KIND: &str = "slack-install";

/// What the connector needs of a Slack tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackTenant<'a> {
    pub signing_secret: Option<&'a Secret>,
    /// Single-workspace token, used when no install is stored for a team.
    pub bot_token: Option<&'a Secret>,
    pub app_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub client_secret: Option<&'a Secret>,
    pub base_url: String,
}

impl<'a> SlackTenant<'a> {
    pub fn of(tenant: &'a TenantConfig) -> Option<Self> {
        let Some(MessagingConfig::Generic {
            settings,
            secrets,
            api_base_url,
        }) = &tenant.messaging
        else {
            return None;
        };
        let secret = |key: &str| secrets.get(key).filter(|s| !s.is_empty());
        let setting = |key: &str| {
            settings
                .get(key)
                .map(String::as_str)
                .filter(|s| !s.is_empty())
        };
        Some(Self {
            signing_secret: secret("signingSecret"),
            bot_token: secret("botToken"),
            app_id: setting("appId"),
            client_id: setting("clientId"),
            client_secret: secret("clientSecret"),
            base_url: api_base_url
                .as_deref()
                .map(|base| base.trim_end_matches('/'))
                .filter(|base| !base.is_empty())
                .unwrap_or(DEFAULT_BASE_URL)
                .to_owned(),
        })
    }

    /// Client id and secret, when OAuth installs are configured.
    pub fn oauth_client(&self) -> Option<(&'a str, &'a Secret)> {
        Some((self.client_id?, self.client_secret?))
    }
}

/// One workspace that installed the tenant's app (OAuth v2). The token
/// never prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Installation {
    pub team_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_user_id: Option<String>,
    pub bot_token: Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored install of team {team} is unreadable: {source}")]
    Corrupt {
        team: String,
        source: serde_json::Error,
    },
}

pub async fn load_installation(
    store: &Store,
    tenant_key: &str,
    team_id: &str,
) -> Result<Option<Installation>, InstallStoreError> {
    let Some(json) = store.get(tenant_key, INSTALL_KIND, team_id).await? else {
        return Ok(None);
    };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|source| InstallStoreError::Corrupt {
            team: team_id.to_owned(),
            source,
        })
}

pub async fn save_installation(
    store: &Store,
    tenant_key: &str,
    installation: &Installation,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(installation).unwrap_or_default();
    store
        .set(tenant_key, INSTALL_KIND, &installation.team_id, &json, None)
        .await
}

/// The bot token for `team_id`: its install, else the tenant's own token.
pub async fn bot_token(
    store: &Store,
    tenant: &TenantConfig,
    slack: &SlackTenant<'_>,
    team_id: &str,
) -> Result<Option<(Secret, Option<Installation>)>, InstallStoreError> {
    if let Some(installation) = load_installation(store, &tenant.key, team_id).await? {
        return Ok(Some((installation.bot_token.clone(), Some(installation))));
    }
    Ok(slack.bot_token.map(|token| (token.clone(), None)))
}
