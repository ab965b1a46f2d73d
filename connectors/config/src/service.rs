use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{MessagingConfig, Platform, Secret};

/// The key under which the operator stores the file in the service's Secret,
/// and the file name the connector reads from the mounted directory.
pub const CONFIG_FILE_NAME: &str = "service.json";

/// The version of the file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A Tenant's key in URLs, Redis keys and bus routing: `<namespace>.<name>`.
/// Namespaces are DNS labels (no dots), so the first dot splits it back.
pub fn tenant_key(namespace: &str, name: &str) -> String {
    format!("{namespace}.{name}")
}

/// The path a platform calls for one tenant, relative to the public base URL.
pub fn webhook_path(platform: Platform, tenant_key: &str) -> String {
    format!("/{}/{}", platform.as_str(), tenant_key)
}

/// Path Genesys Cloud calls with agent messages for one tenant.
pub fn openmessaging_webhook_path(tenant_key: &str) -> String {
    format!("/openmessaging/{tenant_key}")
}

/// One service's configuration: every tenant that service serves, with the
/// credentials that service needs and no others (a platform connector gets
/// the platform credentials, the gcloudcx connector the Genesys ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConfig {
    pub version: u32,
    /// `gcloudcx`, `api`, or a [`Platform`] name.
    pub service: String,
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantConfig>,
    #[serde(default)]
    pub storages: Vec<StorageConfig>,
    #[serde(default)]
    pub notifiers: Vec<NotifierConfig>,
    #[serde(default)]
    pub settings: ClusterSettings,
}

impl ServiceConfig {
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            version: FORMAT_VERSION,
            service: service.into(),
            tenants: BTreeMap::new(),
            storages: Vec::new(),
            notifiers: Vec::new(),
            settings: ClusterSettings::default(),
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let config: ServiceConfig = serde_json::from_slice(bytes).map_err(ConfigError::Parse)?;
        if config.version != FORMAT_VERSION {
            return Err(ConfigError::Version {
                found: config.version,
                expected: FORMAT_VERSION,
            });
        }
        Ok(config)
    }

    /// Reads `<dir>/service.json` (or the given file).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = if path.is_dir() {
            path.join(CONFIG_FILE_NAME)
        } else {
            path.to_path_buf()
        };
        let bytes = std::fs::read(&file).map_err(|source| ConfigError::Read {
            path: file.display().to_string(),
            source,
        })?;
        Self::from_json(&bytes)
    }

    /// Compact, stable JSON (maps are ordered), so an unchanged configuration
    /// renders to identical bytes and the Secret is not rewritten.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("ServiceConfig serialises: string keys only")
    }
}

/// One Tenant as a service sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantConfig {
    /// [`tenant_key`] of the Tenant.
    pub key: String,
    /// Name shown to agents.
    pub display_name: String,
    pub platform: Platform,
    /// Subscription identifier of the reference system (custom attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// Public URL the platform calls (`<apiRoot>/<platform>/<key>`).
    pub webhook_url: String,
    #[serde(default)]
    pub options: MessagingOptions,
    /// Present in the platform connector's file only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging: Option<MessagingConfig>,
    /// Present in the gcloudcx connector's file only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesys: Option<GenesysConfig>,
    /// Present in the api service's file only: IVR REST API authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_auth: Option<ApiAuth>,
    /// Name of the Storage used for attachments (None: the default one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
}

impl TenantConfig {
    /// A Tenant with its identity only: no platform, Genesys or API part
    /// yet. The operator adds what each service may see; tests add what
    /// they exercise (`with_messaging`, `with_genesys`).
    pub fn new(
        key: impl Into<String>,
        display_name: impl Into<String>,
        platform: Platform,
        webhook_url: impl Into<String>,
    ) -> Self {
        Self {
            key: key.into(),
            display_name: display_name.into(),
            platform,
            subscription_id: None,
            webhook_url: webhook_url.into(),
            options: MessagingOptions::default(),
            messaging: None,
            genesys: None,
            api_auth: None,
            storage: None,
        }
    }

    pub fn with_messaging(mut self, messaging: MessagingConfig) -> Self {
        self.messaging = Some(messaging);
        self
    }

    pub fn with_genesys(mut self, genesys: GenesysConfig) -> Self {
        self.genesys = Some(genesys);
        self
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagingOptions {
    #[serde(default)]
    pub show_system_messages: bool,
    #[serde(default)]
    pub prefix_agent_name: bool,
}

/// Genesys Cloud CX side of a Tenant, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesysConfig {
    pub region: String,
    /// `https://api.<region host>` (or a simulator in tests).
    pub api_base_url: String,
    /// `https://login.<region host>`.
    pub login_base_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Open Messaging integration id, once the operator registered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    /// Secret token Genesys signs its outbound webhook with.
    pub webhook_token: Secret,
    /// Custom data added to every inbound message as custom attributes.
    #[serde(default)]
    pub custom_data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    #[serde(default)]
    pub commander: CommanderConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommanderConfig {
    pub enabled: bool,
    /// Use the cluster's default commander instead of the tenant's own.
    pub use_default: bool,
    pub prefix: String,
}

impl Default for CommanderConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            use_default: true,
            prefix: ">".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ApiAuth {
    None,
    Basic { username: String, password: Secret },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageConfig {
    pub name: String,
    pub kind: StorageKind,
    pub default: bool,
    pub purge_delay_seconds: u64,
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret>,
}

/// Attachment storage providers (`spec.type` of a Storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StorageKind {
    S3,
    AzureBlob,
    Gcs,
    Box,
    Dropbox,
}

impl NotifierKind {
    /// As written in a NotifierDestination's `spec.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifierKind::GenesysCloudWebhook => "genesysCloudWebhook",
            NotifierKind::Slack => "slack",
            NotifierKind::Discord => "discord",
            NotifierKind::PagerDuty => "pagerDuty",
        }
    }
}

/// Where a NotifierDestination sends (`spec.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NotifierKind {
    GenesysCloudWebhook,
    Slack,
    Discord,
    PagerDuty,
}

/// What a NotifierDestination receives: `Subscriptions` falls back to
/// `Default` when no destination subscribes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotifierTopic {
    Default,
    Subscriptions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifierConfig {
    pub name: String,
    pub kind: NotifierKind,
    pub topic: NotifierTopic,
    /// URL or PagerDuty routing key.
    pub target: Secret,
    /// Whose destination this is. None: the installation's (a
    /// NotifierDestination in the operator's namespace), told everything.
    /// Some(namespace): a business's, told only about the Tenants of its
    /// namespace, since one data plane serves many businesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Cluster-wide settings every service honours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSettings {
    /// Outbound HTTP proxy for every platform and Genesys call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_proxy: Option<String>,
    /// Default commander prefix for tenants that use the default commander.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_commander_prefix: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read service configuration {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("service configuration is not valid JSON of the expected shape: {0}")]
    Parse(#[source] serde_json::Error),
    #[error(
        "service configuration has format version {found}, this build reads version {expected}"
    )]
    Version { found: u32, expected: u32 },
    #[error("unknown platform {0:?}")]
    UnknownPlatform(String),
    #[error("configuration Secret has no key {0:?}")]
    MissingKey(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telegram_service() -> ServiceConfig {
        let mut config = ServiceConfig::new("telegram");
        let key = tenant_key("shop", "acme");
        config.tenants.insert(
            key.clone(),
            TenantConfig::new(
                key.clone(),
                "ACME",
                Platform::Telegram,
                format!(
                    "https://um.example.com{}",
                    webhook_path(Platform::Telegram, &key)
                ),
            )
            .with_messaging(MessagingConfig::Telegram(crate::TelegramConfig {
                bot_token: Secret::new("123:ABC"),
                webhook_secret_token: None,
                api_base_url: None,
            })),
        );
        config
    }

    #[test]
    fn round_trips_and_is_stable() {
        let config = telegram_service();
        let bytes = config.to_json();
        assert_eq!(ServiceConfig::from_json(&bytes).unwrap(), config);
        assert_eq!(config.to_json(), bytes);
    }

    #[test]
    fn debug_output_hides_credentials() {
        let printed = format!("{:?}", telegram_service());
        assert!(!printed.contains("123:ABC"), "{printed}");
    }

    #[test]
    fn refuses_another_format_version() {
        let mut value: serde_json::Value =
            serde_json::from_slice(&telegram_service().to_json()).unwrap();
        value["version"] = 99.into();
        let err = ServiceConfig::from_json(value.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("version 99"), "{err}");
    }

    #[test]
    fn a_notifier_kind_this_build_does_not_know_is_refused() {
        let mut value: serde_json::Value =
            serde_json::from_slice(&telegram_service().to_json()).unwrap();
        value["notifiers"] = serde_json::json!([
            {"name": "n", "kind": "carrierPigeon", "topic": "Default", "target": "x"}
        ]);
        let err = ServiceConfig::from_json(value.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("carrierPigeon"), "{err}");
    }

    #[test]
    fn webhook_paths() {
        let key = tenant_key("shop", "acme");
        assert_eq!(
            webhook_path(Platform::Telegram, &key),
            "/telegram/shop.acme"
        );
        assert_eq!(openmessaging_webhook_path(&key), "/openmessaging/shop.acme");
    }
}
