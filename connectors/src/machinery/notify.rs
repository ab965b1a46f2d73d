//! Notifications to the cluster's NotifierDestinations: service start and
//! stop on the `Default` topic, dead letters on `Subscriptions` (which
//! falls back to `Default` when no destination subscribes to it). A
//! business's destination (in a Tenant namespace) hears only about the
//! Tenants of its namespace; the installation's hears everything.
//!
//! Best effort: a failed notification is logged, never fails the work that
//! caused it. Targets are secrets (webhook URLs embed tokens) and never
//! appear in an error.

use std::time::Duration;

use serde_json::{Value, json};
use um_config::{NotifierConfig, NotifierKind, NotifierTopic};

use crate::machinery::config_watch::ConfigWatcher;
use crate::machinery::http_client::HttpClients;

pub const TOPIC_DEFAULT: NotifierTopic = NotifierTopic::Default;
pub const TOPIC_SUBSCRIPTIONS: NotifierTopic = NotifierTopic::Subscriptions;

/// What happened, in words an administrator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub topic: NotifierTopic,
    /// The Tenant it is about (`namespace.name`), if any.
    pub tenant: Option<String>,
    /// Short line (Slack text, PagerDuty summary).
    pub summary: String,
    /// The service that reports (`telegram`, `gcloudcx`).
    pub source: String,
    /// `info`, `warning`, `error` (PagerDuty severities).
    pub severity: &'static str,
    pub details: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notifier {name} ({}) failed: {detail}", kind.as_str())]
    Send {
        name: String,
        kind: NotifierKind,
        detail: String,
    },
}

/// PagerDuty Events API v2 endpoint (the target is the routing key).
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The request for one destination: URL and JSON body. Pure.
pub fn render(notifier: &NotifierConfig, notice: &Notice) -> (String, Value) {
    let text = format!("[{}] {}", notice.source, notice.summary);
    match notifier.kind {
        NotifierKind::Slack => (notifier.target.expose().to_owned(), json!({ "text": text })),
        NotifierKind::Discord => (
            notifier.target.expose().to_owned(),
            json!({ "content": text }),
        ),
        NotifierKind::PagerDuty => (
            PAGERDUTY_EVENTS_URL.to_owned(),
            json!({
                "routing_key": notifier.target.expose(),
                "event_action": "trigger",
                "payload": {
                    "summary": text,
                    "source": notice.source,
                    "severity": notice.severity,
                    "custom_details": notice.details,
                }
            }),
        ),
        NotifierKind::GenesysCloudWebhook => (
            notifier.target.expose().to_owned(),
            json!({
                "topic": notice.topic,
                "source": notice.source,
                "severity": notice.severity,
                "summary": notice.summary,
                "details": notice.details,
            }),
        ),
    }
}

/// The destinations of a notice: of those that may hear about it (the
/// installation's, and the business's whose Tenant it is about), each
/// owner's destinations of its topic, else that owner's `Default` ones.
pub fn destinations<'a>(
    notifiers: &'a [NotifierConfig],
    notice: &Notice,
) -> Vec<&'a NotifierConfig> {
    let tenant_namespace = notice
        .tenant
        .as_deref()
        .and_then(|tenant| tenant.split_once('.'))
        .map(|(namespace, _)| namespace);
    let allowed = |n: &&NotifierConfig| match n.namespace.as_deref() {
        None => true,
        Some(namespace) => tenant_namespace == Some(namespace),
    };
    let owner_subscribes = |owner: &Option<String>| {
        notifiers
            .iter()
            .any(|n| &n.namespace == owner && n.topic == notice.topic)
    };
    notifiers
        .iter()
        .filter(allowed)
        .filter(|n| {
            n.topic == notice.topic || (n.topic == TOPIC_DEFAULT && !owner_subscribes(&n.namespace))
        })
        .collect()
}

#[derive(Clone)]
pub struct Notifier {
    http: HttpClients,
    config: ConfigWatcher,
}

impl Notifier {
    pub fn new(http: HttpClients, config: ConfigWatcher) -> Self {
        Self { http, config }
    }

    /// Sends to every destination of the notice's topic; the errors of
    /// those that failed.
    pub async fn notify(&self, notice: &Notice) -> Vec<NotifyError> {
        let config = self.config.current();
        let mut errors = Vec::new();
        for notifier in destinations(&config.notifiers, notice) {
            if let Err(error) = self.send(notifier, notice).await {
                tracing::warn!(error = %error, "notification not delivered");
                errors.push(error);
            }
        }
        errors
    }

    async fn send(&self, notifier: &NotifierConfig, notice: &Notice) -> Result<(), NotifyError> {
        let (url, body) = render(notifier, notice);
        let failed = |detail: String| NotifyError::Send {
            name: notifier.name.clone(),
            kind: notifier.kind,
            detail,
        };
        let response = self
            .http
            .client()
            .post(&url)
            .timeout(Duration::from_secs(10))
            .json(&body)
            .send()
            .await
            // The URL is the secret: report the kind of failure only.
            .map_err(|e| {
                failed(if e.is_timeout() {
                    "timeout".to_owned()
                } else {
                    "request failed".to_owned()
                })
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(failed(format!("HTTP {}", response.status().as_u16())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use um_config::Secret;

    fn notifier(name: &str, kind: NotifierKind, topic: NotifierTopic) -> NotifierConfig {
        NotifierConfig {
            name: name.into(),
            kind,
            topic,
            target: Secret::new(format!("https://hooks.example.com/{name}/T0KEN")),
            namespace: None,
        }
    }

    fn about(topic: NotifierTopic, tenant: Option<&str>) -> Notice {
        Notice {
            topic,
            tenant: tenant.map(str::to_owned),
            ..notice()
        }
    }

    fn notice() -> Notice {
        Notice {
            topic: TOPIC_SUBSCRIPTIONS,
            tenant: Some("shop.acme".into()),
            summary: "envelope e1 dead-lettered".into(),
            source: "telegram".into(),
            severity: "error",
            details: json!({"queue": "um.dead.to-cx"}),
        }
    }

    #[test]
    fn renders_each_kind() {
        let (url, body) = render(
            &notifier("s", NotifierKind::Slack, TOPIC_DEFAULT),
            &notice(),
        );
        assert_eq!(url, "https://hooks.example.com/s/T0KEN");
        assert_eq!(
            body,
            json!({"text": "[telegram] envelope e1 dead-lettered"})
        );
        let (_, body) = render(
            &notifier("d", NotifierKind::Discord, TOPIC_DEFAULT),
            &notice(),
        );
        assert_eq!(body["content"], "[telegram] envelope e1 dead-lettered");
        let (url, body) = render(
            &notifier("p", NotifierKind::PagerDuty, TOPIC_DEFAULT),
            &notice(),
        );
        assert_eq!(url, PAGERDUTY_EVENTS_URL);
        assert_eq!(body["routing_key"], "https://hooks.example.com/p/T0KEN");
        assert_eq!(body["payload"]["severity"], "error");
    }

    #[test]
    fn subscriptions_fall_back_to_default() {
        let both = [
            notifier("a", NotifierKind::Slack, TOPIC_DEFAULT),
            notifier("b", NotifierKind::Slack, TOPIC_SUBSCRIPTIONS),
        ];
        let names =
            |list: Vec<&NotifierConfig>| list.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
        let dead = about(TOPIC_SUBSCRIPTIONS, Some("shop.acme"));
        let started = about(TOPIC_DEFAULT, None);
        assert_eq!(names(destinations(&both, &dead)), ["b"]);
        assert_eq!(names(destinations(&both, &started)), ["a"]);
        let default_only = [notifier("a", NotifierKind::Slack, TOPIC_DEFAULT)];
        assert_eq!(names(destinations(&default_only, &dead)), ["a"]);
        let subscriptions_only = [notifier("b", NotifierKind::Slack, TOPIC_SUBSCRIPTIONS)];
        assert!(destinations(&subscriptions_only, &started).is_empty());
    }

    #[test]
    fn a_business_hears_only_about_its_own_tenants() {
        let scoped = |name: &str, namespace: &str| NotifierConfig {
            namespace: Some(namespace.into()),
            ..notifier(name, NotifierKind::Slack, TOPIC_DEFAULT)
        };
        let all = [
            notifier("platform-team", NotifierKind::Slack, TOPIC_DEFAULT),
            scoped("shop", "shop"),
            scoped("shop-b", "shop-b"),
        ];
        let names =
            |list: Vec<&NotifierConfig>| list.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
        let dead_in_shop = about(TOPIC_SUBSCRIPTIONS, Some("shop.acme"));
        assert_eq!(
            names(destinations(&all, &dead_in_shop)),
            ["platform-team", "shop"]
        );
        let dead_in_b = about(TOPIC_SUBSCRIPTIONS, Some("shop-b.acme"));
        assert_eq!(
            names(destinations(&all, &dead_in_b)),
            ["platform-team", "shop-b"]
        );
        // Not about a Tenant (a service started): the installation's only.
        let started = about(TOPIC_DEFAULT, None);
        assert_eq!(names(destinations(&all, &started)), ["platform-team"]);
        // Each owner falls back on its own: a business subscribing to dead
        // letters takes the fallback from neither the installation nor
        // another business.
        let mut subscribed = all.to_vec();
        subscribed.push(NotifierConfig {
            namespace: Some("shop-b".into()),
            ..notifier("shop-b-dead", NotifierKind::Slack, TOPIC_SUBSCRIPTIONS)
        });
        assert_eq!(
            names(destinations(&subscribed, &dead_in_shop)),
            ["platform-team", "shop"]
        );
        assert_eq!(
            names(destinations(&subscribed, &dead_in_b)),
            ["platform-team", "shop-b-dead"]
        );
    }
}
