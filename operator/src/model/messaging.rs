//! `spec.messaging.<platform>` + its resolved Secrets → the typed
//! configuration of the platform's connector: one pure function per
//! supported platform. Preview platforms have none (the reconciler reports
//! them `PlatformNotSupported` before this is reached).

use std::collections::BTreeMap;

use um_config::{
    LineConfig, LineSwitcherConfig, MessagingConfig, Secret, SlackConfig, TeamsAppConfig,
    TeamsConfig, TelegramConfig, ViberConfig,
};
use um_crds::{
    LineSpec, MessagingSpec, SecretKeyRef, SlackSpec, TeamsSpec, TelegramSpec, ViberSpec,
};

/// The values of the references that resolved, by reference.
pub type ResolvedSecrets = BTreeMap<SecretKeyRef, Secret>;

/// A reference that should have resolved did not: the caller resolved
/// every reference of the spec first, so this names a bug, not a user error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} was not resolved before building the connector configuration")]
pub struct Unresolved(pub String);

fn value(secrets: &ResolvedSecrets, reference: &SecretKeyRef) -> Result<Secret, Unresolved> {
    secrets
        .get(reference)
        .cloned()
        .ok_or_else(|| Unresolved(reference.to_string()))
}

fn optional(
    secrets: &ResolvedSecrets,
    reference: Option<&SecretKeyRef>,
) -> Result<Option<Secret>, Unresolved> {
    reference.map(|r| value(secrets, r)).transpose()
}

/// The connector configuration of `spec`; `Ok(None)` for a platform this
/// build does not serve. `api_base_url` is the operator's override of the
/// platform API (a simulator in tests).
pub fn messaging_config(
    spec: &MessagingSpec,
    secrets: &ResolvedSecrets,
    api_base_url: Option<String>,
) -> Result<Option<MessagingConfig>, Unresolved> {
    Ok(Some(match spec {
        MessagingSpec::Telegram(s) => {
            MessagingConfig::Telegram(telegram(s, secrets, api_base_url)?)
        }
        MessagingSpec::Line(s) => MessagingConfig::Line(line(s, secrets, api_base_url)?),
        MessagingSpec::Slack(s) => MessagingConfig::Slack(slack(s, secrets, api_base_url)?),
        MessagingSpec::Teams(s) => MessagingConfig::Teams(teams(s, secrets, api_base_url)?),
        MessagingSpec::Viber(s) => MessagingConfig::Viber(viber(s, secrets, api_base_url)?),
        _ => return Ok(None),
    }))
}

pub fn telegram(
    spec: &TelegramSpec,
    secrets: &ResolvedSecrets,
    api_base_url: Option<String>,
) -> Result<TelegramConfig, Unresolved> {
    Ok(TelegramConfig {
        bot_token: value(secrets, &spec.bot_token)?,
        webhook_secret_token: optional(secrets, spec.webhook_secret_token.as_ref())?,
        api_base_url,
    })
}

pub fn line(
    spec: &LineSpec,
    secrets: &ResolvedSecrets,
    api_base_url: Option<String>,
) -> Result<LineConfig, Unresolved> {
    let switcher = match &spec.switcher {
        Some(switcher) => Some(LineSwitcherConfig {
            service_code: switcher.service_code.clone(),
            destination_id: switcher.destination_id.clone(),
            secret: value(secrets, &switcher.secret)?,
        }),
        None => None,
    };
    Ok(LineConfig {
        channel_id: spec.channel_id.clone(),
        channel_secret: value(secrets, &spec.channel_secret)?,
        channel_access_token: optional(secrets, spec.channel_access_token.as_ref())?,
        switcher,
        api_base_url,
    })
}

pub fn slack(
    spec: &SlackSpec,
    secrets: &ResolvedSecrets,
    api_base_url: Option<String>,
) -> Result<SlackConfig, Unresolved> {
    Ok(SlackConfig {
        signing_secret: value(secrets, &spec.signing_secret)?,
        bot_token: value(secrets, &spec.bot_token)?,
        app_id: spec.app_id.clone(),
        client_id: spec.client_id.clone(),
        client_secret: optional(secrets, spec.client_secret.as_ref())?,
        api_base_url,
    })
}

pub fn teams(
    spec: &TeamsSpec,
    secrets: &ResolvedSecrets,
    api_base_url: Option<String>,
) -> Result<TeamsConfig, Unresolved> {
    let app = spec.app.clone().unwrap_or_default();
    Ok(TeamsConfig {
        app_id: spec.app_id.clone(),
        app_password: value(secrets, &spec.app_password)?,
        app_tenant_id: spec.app_tenant_id.clone(),
        app: TeamsAppConfig {
            bot_name: app.bot_name,
            accent_color: app.accent_color,
            description: app.description,
            website_url: app.website_url,
            privacy_url: app.privacy_url,
            terms_url: app.terms_url,
        },
        api_base_url,
    })
}

pub fn viber(
    spec: &ViberSpec,
    secrets: &ResolvedSecrets,
    api_base_url: Option<String>,
) -> Result<ViberConfig, Unresolved> {
    Ok(ViberConfig {
        auth_token: value(secrets, &spec.auth_token)?,
        sender_name: spec.sender_name.clone(),
        sender_avatar: spec.sender_avatar.clone(),
        api_base_url,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(value: serde_json::Value) -> MessagingSpec {
        serde_json::from_value(value).unwrap()
    }

    fn secrets(entries: &[(&str, &str, &str)]) -> ResolvedSecrets {
        entries
            .iter()
            .map(|(name, key, value)| (SecretKeyRef::new(*name, *key), Secret::new(*value)))
            .collect()
    }

    #[test]
    fn line_with_switcher() {
        let spec = spec(json!({"line": {
            "channelId": "1650",
            "channelSecret": {"name": "line", "key": "secret"},
            "switcher": {"serviceCode": "svc", "destinationId": "dest", "secret": {"name": "line", "key": "switcher"}}
        }}));
        let secrets = secrets(&[("line", "secret", "s"), ("line", "switcher", "sw")]);
        let Some(MessagingConfig::Line(line)) = messaging_config(&spec, &secrets, None).unwrap()
        else {
            panic!("a LINE configuration")
        };
        assert_eq!(line.channel_id.as_deref(), Some("1650"));
        assert_eq!(line.channel_secret.expose(), "s");
        assert_eq!(line.channel_access_token, None);
        let switcher = line.switcher.unwrap();
        assert_eq!(
            (
                switcher.service_code.as_str(),
                switcher.destination_id.as_str(),
                switcher.secret.expose()
            ),
            ("svc", "dest", "sw")
        );
    }

    #[test]
    fn slack_with_oauth_client() {
        let spec = spec(json!({"slack": {
            "signingSecret": {"name": "slack", "key": "signing"},
            "botToken": {"name": "slack", "key": "bot"},
            "appId": "A01", "clientId": "123.456",
            "clientSecret": {"name": "slack", "key": "client"}
        }}));
        let secrets = secrets(&[
            ("slack", "signing", "sg"),
            ("slack", "bot", "xoxb"),
            ("slack", "client", "cs"),
        ]);
        let Some(MessagingConfig::Slack(slack)) =
            messaging_config(&spec, &secrets, Some("http://127.0.0.1:9".into())).unwrap()
        else {
            panic!("a Slack configuration")
        };
        assert_eq!(slack.signing_secret.expose(), "sg");
        assert_eq!(slack.bot_token.expose(), "xoxb");
        assert_eq!(slack.client_secret.as_ref().map(Secret::expose), Some("cs"));
        assert_eq!(slack.app_id.as_deref(), Some("A01"));
        assert_eq!(slack.client_id.as_deref(), Some("123.456"));
        assert_eq!(slack.api_base_url.as_deref(), Some("http://127.0.0.1:9"));
    }

    #[test]
    fn teams_carries_the_app_presentation() {
        let spec = spec(json!({"teams": {
            "appId": "app-1", "appPassword": {"name": "teams", "key": "password"},
            "app": {"botName": "ACME Help", "accentColor": "#112233"}
        }}));
        let secrets = secrets(&[("teams", "password", "pw")]);
        let Some(MessagingConfig::Teams(teams)) = messaging_config(&spec, &secrets, None).unwrap()
        else {
            panic!("a Teams configuration")
        };
        assert_eq!(teams.app_id, "app-1");
        assert_eq!(teams.app_password.expose(), "pw");
        assert_eq!(teams.app.bot_name.as_deref(), Some("ACME Help"));
        assert_eq!(teams.app.accent_color.as_deref(), Some("#112233"));
        assert_eq!(teams.app.description, None);
    }

    #[test]
    fn viber_sender() {
        let spec = spec(json!({"viber": {
            "authToken": {"name": "viber", "key": "token"},
            "senderName": "ACME", "senderAvatar": "https://acme.example/a.png"
        }}));
        let secrets = secrets(&[("viber", "token", "tok")]);
        let Some(MessagingConfig::Viber(viber)) = messaging_config(&spec, &secrets, None).unwrap()
        else {
            panic!("a Viber configuration")
        };
        assert_eq!(viber.auth_token.expose(), "tok");
        assert_eq!(viber.sender_name, "ACME");
        assert_eq!(
            viber.sender_avatar.as_deref(),
            Some("https://acme.example/a.png")
        );
    }

    #[test]
    fn a_reference_left_unresolved_is_an_error_not_a_panic() {
        let spec = spec(json!({"telegram": {"botToken": {"name": "tg", "key": "token"}}}));
        let err = messaging_config(&spec, &ResolvedSecrets::new(), None).unwrap_err();
        assert!(err.to_string().contains("secret/tg[token]"), "{err}");
    }

    #[test]
    fn preview_platforms_get_no_configuration() {
        let spec = crate::model::tests::preview_tenant("p").spec.messaging;
        assert_eq!(
            messaging_config(&spec, &ResolvedSecrets::new(), None),
            Ok(None)
        );
    }
}
