//! A tenant's Slack settings (keys of the Tenant's `slack` spec) and the
//! per-workspace installs kept in Redis.

use crate::machinery::store::KEPT_TTL;
use serde::{Deserialize, Serialize};
use um_config::{MessagingConfig, Secret, TenantConfig};

use crate::machinery::store::{Store, StoreError};

/// Slack's host: Web API under `/api/`, OAuth pages under `/oauth/v2/`.
pub const DEFAULT_BASE_URL: &str = "https://slack.com";
/// Store kind of a workspace install (id: team id).
pub const INSTALL_KIND: &str = "slack-install";
/// Store kind of the note that the app left a workspace (id: team id).
pub const UNINSTALLED_KIND: &str = "slack-uninstalled";

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
        let Some(MessagingConfig::Slack(slack)) = &tenant.messaging else {
            return None;
        };
        let secret = |value: Option<&'a Secret>| value.filter(|s| !s.is_empty());
        let setting = |value: &'a Option<String>| value.as_deref().filter(|s| !s.is_empty());
        Some(Self {
            signing_secret: secret(Some(&slack.signing_secret)),
            bot_token: secret(Some(&slack.bot_token)),
            app_id: setting(&slack.app_id),
            client_id: setting(&slack.client_id),
            client_secret: secret(slack.client_secret.as_ref()),
            base_url: slack
                .api_base_url
                .as_deref()
                .map(|base| base.trim_end_matches('/'))
                .filter(|base| !base.is_empty())
                .unwrap_or(DEFAULT_BASE_URL)
                .to_owned(),
        })
    }

    /// The base URL when the tenant sets one (a simulator, a gateway).
    pub fn configured_base(&self) -> Option<&str> {
        Some(self.base_url.as_str()).filter(|base| *base != DEFAULT_BASE_URL)
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
    /// When the install was stored (Unix seconds): an uninstall event from
    /// before it is about an earlier install. Absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_at: Option<i64>,
}

/// The app left a workspace: remembered so that deliveries there fail
/// with this reason instead of trying a token Slack revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Uninstalled {
    /// `app_uninstalled` or `tokens_revoked`.
    pub event: String,
    /// Unix seconds of the event (or of its processing).
    pub at: i64,
    /// Digest of the tenant's configured bot token at that time: once the
    /// administrator configures another token, it is used again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_token: Option<String>,
}

impl Uninstalled {
    pub fn describe(&self, team_id: &str) -> String {
        let when = chrono::DateTime::from_timestamp(self.at, 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| self.at.to_string());
        let what = if self.event == "tokens_revoked" {
            "lost its bot token in"
        } else {
            "was uninstalled from"
        };
        format!(
            "the Slack app {what} workspace {team_id} ({} at {when}); \
             install it there again to reach this guest",
            self.event
        )
    }
}

/// A digest naming a configured token without revealing it.
pub fn token_digest(token: &Secret) -> String {
    hex::encode(
        &crate::machinery::verify::hmac_sha256(
            b"um-slack-configured-token",
            token.expose().as_bytes(),
        )[..16],
    )
}

#[derive(Debug, thiserror::Error)]
pub enum InstallStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored {what} of team {team} is unreadable: {source}")]
    Corrupt {
        what: &'static str,
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
            what: "install",
            team: team_id.to_owned(),
            source,
        })
}

/// Stores an install (a new one replaces the team's previous) and forgets
/// that the app had left the workspace.
pub async fn save_installation(
    store: &Store,
    tenant_key: &str,
    installation: &Installation,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(installation).unwrap_or_default();
    store
        .set(
            tenant_key,
            INSTALL_KIND,
            &installation.team_id,
            &json,
            KEPT_TTL,
        )
        .await?;
    store
        .delete(tenant_key, UNINSTALLED_KIND, &installation.team_id)
        .await
}

pub async fn load_uninstalled(
    store: &Store,
    tenant_key: &str,
    team_id: &str,
) -> Result<Option<Uninstalled>, InstallStoreError> {
    let Some(json) = store.get(tenant_key, UNINSTALLED_KIND, team_id).await? else {
        return Ok(None);
    };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|source| InstallStoreError::Corrupt {
            what: "uninstall note",
            team: team_id.to_owned(),
            source,
        })
}

/// What a lifecycle event did to the stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The install (if any) is gone and the workspace noted as left.
    Removed { had_install: bool },
    /// The event predates the stored install: the app was installed again
    /// since, nothing changed.
    Stale,
}

/// The app left `team_id` (`event` at `at`): drops its install and notes
/// the departure, so deliveries there fail at once with the reason.
pub async fn remove_installation(
    store: &Store,
    tenant: &TenantConfig,
    slack: &SlackTenant<'_>,
    team_id: &str,
    event: &str,
    at: i64,
) -> Result<Removal, InstallStoreError> {
    let installation = match load_installation(store, &tenant.key, team_id).await {
        Ok(installation) => installation,
        // An unreadable install is removed all the same.
        Err(InstallStoreError::Corrupt { .. }) => None,
        Err(error) => return Err(error),
    };
    if installation
        .as_ref()
        .and_then(|i| i.installed_at)
        .is_some_and(|installed| installed > at)
    {
        return Ok(Removal::Stale);
    }
    // Slack sends `app_uninstalled` and `tokens_revoked` in either order;
    // the note keeps the uninstall, the more telling of the two.
    let noted = load_uninstalled(store, &tenant.key, team_id)
        .await
        .ok()
        .flatten();
    let keep_note = installation.is_none()
        && noted
            .as_ref()
            .is_some_and(|n| n.event == "app_uninstalled" || n.event == event);
    if !keep_note {
        let note = Uninstalled {
            event: event.to_owned(),
            at,
            configured_token: slack.bot_token.map(token_digest),
        };
        let json = serde_json::to_string(&note).unwrap_or_default();
        store
            .set(&tenant.key, UNINSTALLED_KIND, team_id, &json, KEPT_TTL)
            .await?;
    }
    store.delete(&tenant.key, INSTALL_KIND, team_id).await?;
    Ok(Removal::Removed {
        had_install: installation.is_some(),
    })
}

/// The token that reaches a workspace, or why none does.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkspaceToken {
    /// Its own install's token, or the tenant's configured one.
    Token(Secret, Option<Installation>),
    /// The app left the workspace and nothing replaced its token since.
    Uninstalled(Uninstalled),
    /// No install and no configured token.
    None,
}

/// Which token answers for a workspace (pure): its install first; then,
/// unless the app left the workspace while the configured token was the
/// same, the tenant's configured token.
pub fn choose_token(
    installation: Option<Installation>,
    uninstalled: Option<Uninstalled>,
    configured: Option<&Secret>,
) -> WorkspaceToken {
    if let Some(installation) = installation {
        return WorkspaceToken::Token(installation.bot_token.clone(), Some(installation));
    }
    if let Some(note) = uninstalled {
        let replaced = match (&note.configured_token, configured) {
            (Some(then), Some(now)) => *then != token_digest(now),
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if !replaced {
            return WorkspaceToken::Uninstalled(note);
        }
    }
    match configured {
        Some(token) => WorkspaceToken::Token(token.clone(), None),
        None => WorkspaceToken::None,
    }
}

/// The bot token for `team_id`: its install, else the tenant's own token
/// unless the app left the workspace.
pub async fn bot_token(
    store: &Store,
    tenant: &TenantConfig,
    slack: &SlackTenant<'_>,
    team_id: &str,
) -> Result<WorkspaceToken, InstallStoreError> {
    let installation = load_installation(store, &tenant.key, team_id).await?;
    let uninstalled = match installation {
        Some(_) => None,
        None => load_uninstalled(store, &tenant.key, team_id).await?,
    };
    Ok(choose_token(installation, uninstalled, slack.bot_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installation(token: &str) -> Installation {
        Installation {
            team_id: "T1".into(),
            team_name: None,
            enterprise_id: None,
            enterprise_name: None,
            bot_user_id: None,
            bot_token: Secret::new(token),
            installed_at: Some(1_800_000_000),
        }
    }

    fn note(configured: Option<&Secret>) -> Uninstalled {
        Uninstalled {
            event: "app_uninstalled".into(),
            at: 1_800_000_100,
            configured_token: configured.map(token_digest),
        }
    }

    fn token_of(choice: WorkspaceToken) -> Option<String> {
        match choice {
            WorkspaceToken::Token(token, _) => Some(token.expose().to_owned()),
            _ => None,
        }
    }

    #[test]
    fn an_install_wins_then_the_uninstall_note_then_the_configured_token() {
        let configured = Secret::new("xoxb-configured");
        assert_eq!(
            token_of(choose_token(
                Some(installation("xoxb-installed")),
                Some(note(Some(&configured))),
                Some(&configured)
            ))
            .as_deref(),
            Some("xoxb-installed")
        );
        assert!(matches!(
            choose_token(None, Some(note(Some(&configured))), Some(&configured)),
            WorkspaceToken::Uninstalled(_)
        ));
        // The administrator configured another token since: it is tried.
        assert_eq!(
            token_of(choose_token(
                None,
                Some(note(Some(&configured))),
                Some(&Secret::new("xoxb-new"))
            ))
            .as_deref(),
            Some("xoxb-new")
        );
        assert!(matches!(
            choose_token(None, Some(note(None)), None),
            WorkspaceToken::Uninstalled(_)
        ));
        assert_eq!(
            token_of(choose_token(None, None, Some(&configured))).as_deref(),
            Some("xoxb-configured")
        );
        assert_eq!(choose_token(None, None, None), WorkspaceToken::None);
    }

    #[test]
    fn the_note_names_the_event_and_never_the_token() {
        let configured = Secret::new("xoxb-very-secret");
        let note = note(Some(&configured));
        let json = serde_json::to_string(&note).unwrap();
        assert!(!json.contains("xoxb-very-secret"), "{json}");
        let text = note.describe("T1");
        assert!(text.contains("uninstalled from workspace T1"), "{text}");
        assert!(text.contains("app_uninstalled"), "{text}");
        assert!(!text.contains("xoxb"), "{text}");
        let revoked = Uninstalled {
            event: "tokens_revoked".into(),
            ..note
        };
        let text = revoked.describe("T1");
        assert!(
            text.contains("lost its bot token in workspace T1"),
            "{text}"
        );
    }
}
