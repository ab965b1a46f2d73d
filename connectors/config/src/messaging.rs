//! What a platform connector receives for one Tenant: one typed struct per
//! supported platform, produced by the operator from the Tenant's
//! `spec.messaging.<platform>` (credentials resolved) and read by the
//! connector as is. A field renamed on one side no longer compiles on the
//! other; a field the connector does not know is refused when the file is
//! read (`deny_unknown_fields`), so an operator newer than its connectors
//! says so instead of being half understood.

use serde::{Deserialize, Serialize};

use crate::{Platform, Secret};

/// Platform credentials and settings of one Tenant, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "camelCase")]
pub enum MessagingConfig {
    Telegram(TelegramConfig),
    Line(LineConfig),
    Slack(SlackConfig),
    Teams(TeamsConfig),
    Viber(ViberConfig),
}

impl MessagingConfig {
    pub fn platform(&self) -> Platform {
        match self {
            MessagingConfig::Telegram(_) => Platform::Telegram,
            MessagingConfig::Line(_) => Platform::Line,
            MessagingConfig::Slack(_) => Platform::Slack,
            MessagingConfig::Teams(_) => Platform::Teams,
            MessagingConfig::Viber(_) => Platform::Viber,
        }
    }
}

/// Telegram Bot API (`spec.messaging.telegram`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TelegramConfig {
    pub bot_token: Secret,
    /// The Tenant's own `secret_token` for setWebhook; absent, the
    /// connector derives one from the bot token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_token: Option<Secret>,
    /// Bot API base when not `https://api.telegram.org` (a simulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
}

/// LINE Messaging API channel (`spec.messaging.line`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineConfig {
    /// Needed to issue short-lived tokens when no long-lived token is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    pub channel_secret: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_access_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switcher: Option<LineSwitcherConfig>,
    /// One base for both LINE hosts when not LINE's own (a simulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
}

/// LINE Switcher API settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineSwitcherConfig {
    pub service_code: String,
    pub destination_id: String,
    pub secret: Secret,
}

/// Slack app (`spec.messaging.slack`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackConfig {
    pub signing_secret: Secret,
    pub bot_token: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// OAuth client, for installs into more workspaces (both or neither).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
}

/// Microsoft Teams bot (`spec.messaging.teams`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TeamsConfig {
    pub app_id: String,
    pub app_password: Secret,
    /// Entra ID tenant of a single-tenant bot; absent: `botframework.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_tenant_id: Option<String>,
    /// How the app package the connector builds presents the bot.
    #[serde(default)]
    pub app: TeamsAppConfig,
    /// One base for the Bot Framework, its OpenID metadata and the token
    /// endpoint when not Microsoft's own (a simulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
}

/// `spec.messaging.teams.app`: the Teams app package's presentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TeamsAppConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_url: Option<String>,
}

/// Viber bot (`spec.messaging.viber`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ViberConfig {
    pub auth_token: Secret,
    pub sender_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_avatar: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_by_platform_name() {
        let config = MessagingConfig::Viber(ViberConfig {
            auth_token: Secret::new("t"),
            sender_name: "ACME".into(),
            sender_avatar: None,
            api_base_url: None,
        });
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["platform"], "viber");
        assert_eq!(json["senderName"], "ACME");
        let back: MessagingConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, config);
        assert_eq!(back.platform(), Platform::Viber);
    }

    #[test]
    fn a_field_the_connector_does_not_know_is_refused() {
        let json = serde_json::json!({
            "platform": "viber", "authToken": "t", "senderName": "ACME", "senderColour": "red"
        });
        let err = serde_json::from_value::<MessagingConfig>(json).unwrap_err();
        assert!(err.to_string().contains("senderColour"), "{err}");
    }

    #[test]
    fn the_variant_tags_are_the_platform_names() {
        for config in [
            serde_json::json!({"platform": "telegram", "botToken": "t"}),
            serde_json::json!({"platform": "line", "channelSecret": "s"}),
            serde_json::json!({"platform": "slack", "signingSecret": "s", "botToken": "t"}),
            serde_json::json!({"platform": "teams", "appId": "a", "appPassword": "p"}),
            serde_json::json!({"platform": "viber", "authToken": "t", "senderName": "n"}),
        ] {
            let tag = config["platform"].as_str().unwrap().to_owned();
            let parsed: MessagingConfig = serde_json::from_value(config).unwrap();
            assert_eq!(parsed.platform().as_str(), tag);
        }
    }
}
