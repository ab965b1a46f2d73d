//! NotifierDestination: where services report start/stop and subscription
//! errors.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::SecretKeyRef;
use crate::secret_ref::{SecretRefs, secret_refs};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NotifierType {
    GenesysCloudWebhook,
    Slack,
    Discord,
    PagerDuty,
}

impl From<NotifierType> for um_config::NotifierKind {
    fn from(kind: NotifierType) -> Self {
        match kind {
            NotifierType::GenesysCloudWebhook => um_config::NotifierKind::GenesysCloudWebhook,
            NotifierType::Slack => um_config::NotifierKind::Slack,
            NotifierType::Discord => um_config::NotifierKind::Discord,
            NotifierType::PagerDuty => um_config::NotifierKind::PagerDuty,
        }
    }
}

impl From<NotifierTopic> for um_config::NotifierTopic {
    fn from(topic: NotifierTopic) -> Self {
        match topic {
            NotifierTopic::Default => um_config::NotifierTopic::Default,
            NotifierTopic::Subscriptions => um_config::NotifierTopic::Subscriptions,
        }
    }
}

impl NotifierType {
    pub const ALL: [NotifierType; 4] = [
        NotifierType::GenesysCloudWebhook,
        NotifierType::Slack,
        NotifierType::Discord,
        NotifierType::PagerDuty,
    ];

    /// As written in `spec.type` and in `um_config::NotifierConfig::kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifierType::GenesysCloudWebhook => "genesysCloudWebhook",
            NotifierType::Slack => "slack",
            NotifierType::Discord => "discord",
            NotifierType::PagerDuty => "pagerDuty",
        }
    }
}

/// What a destination receives. Subscription errors go to `Subscriptions`
/// destinations, or to `Default` ones when there is none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum NotifierTopic {
    #[default]
    Default,
    Subscriptions,
}

impl NotifierTopic {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifierTopic::Default => "Default",
            NotifierTopic::Subscriptions => "Subscriptions",
        }
    }
}

/// A destination for service notifications: a Genesys Cloud generic
/// webhook, Slack or Discord incoming webhook (`url`), or PagerDuty Events
/// v2 (`routingKey`). Webhook URLs carry their own credential, so they are
/// Secret references too.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "messaging.universal-messaging.io",
    version = "v1alpha1",
    kind = "NotifierDestination",
    namespaced,
    status = "NotifierDestinationStatus",
    derive = "PartialEq",
    shortname = "umnotifier",
    shortname = "umnd",
    category = "universal-messaging",
    doc = "Where Universal Messaging services report start/stop and subscription errors. The URL or routing key is a reference to a key of a Secret in the same namespace.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Topic", type_ = "string", json_path = ".spec.topic"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    crate::cel::rule(
        "self.type != 'pagerDuty' || has(self.routingKey)",
        "routingKey is required when type is pagerDuty",
        Some(".routingKey"),
        Some(crate::cel::Reason::Required),
    ),
    crate::cel::rule(
        "self.type == 'pagerDuty' || has(self.url)",
        "url is required when type is genesysCloudWebhook, slack or discord",
        Some(".url"),
        Some(crate::cel::Reason::Required),
    ),
    crate::cel::rule(
        "self.type == 'pagerDuty' || !has(self.routingKey)",
        "routingKey is only allowed when type is pagerDuty",
        Some(".routingKey"),
        Some(crate::cel::Reason::Forbidden),
    ),
    crate::cel::rule(
        "self.type != 'pagerDuty' || !has(self.url)",
        "url is not used when type is pagerDuty (set routingKey)",
        Some(".url"),
        Some(crate::cel::Reason::Forbidden),
    )
]))]
pub struct NotifierDestinationSpec {
    #[serde(rename = "type")]
    pub notifier_type: NotifierType,
    #[serde(default)]
    pub topic: NotifierTopic,
    /// Webhook URL (genesysCloudWebhook, slack, discord).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<SecretKeyRef>,
    /// PagerDuty Events v2 integration (routing) key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<SecretKeyRef>,
}

impl NotifierDestinationSpec {
    /// The one credential of this destination (URL or routing key):
    /// `um_config::NotifierConfig::target`.
    pub fn target(&self) -> Option<(&'static str, &SecretKeyRef)> {
        self.secret_refs().into_iter().next()
    }
}

impl SecretRefs for NotifierDestinationSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        match self.notifier_type {
            NotifierType::PagerDuty => secret_refs!["routingKey" => &self.routing_key],
            _ => secret_refs!["url" => &self.url],
        }
    }
}

/// What the operator observed for a NotifierDestination.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifierDestinationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
