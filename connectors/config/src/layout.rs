//! Where a service's configuration lives in Kubernetes: one small Secret per
//! (Tenant, service) plus one per service for what is not per Tenant, all in
//! the installation's namespace and found by labels.
//!
//! Why not one Secret per service: its size grows with the Tenants (the
//! apiserver refuses objects over 1 MiB, about 1,900 Genesys Tenants), and
//! every change of one Tenant rewrites it whole. A Secret per Tenant is a few
//! hundred bytes whatever the number of Tenants, a change writes one object,
//! and a connector watching its label selector sees it within a second.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::{
    ClusterSettings, ConfigError, FORMAT_VERSION, NotifierConfig, ServiceConfig, TenantConfig,
};

/// Installation (the operator's `instance`) a configuration Secret belongs to.
pub const INSTANCE_LABEL: &str = "messaging.universal-messaging.io/instance";
/// Service (`gcloudcx` or a platform name) that reads the Secret.
pub const SERVICE_LABEL: &str = "messaging.universal-messaging.io/service";
/// What part of the configuration the Secret holds: [`ConfigPart`].
pub const PART_LABEL: &str = "messaging.universal-messaging.io/config";
/// Namespace of the Tenant a tenant part belongs to (a DNS label, so it fits
/// a label value; the Tenant's full key is in [`TENANT_ANNOTATION`]).
pub const TENANT_NAMESPACE_LABEL: &str = "messaging.universal-messaging.io/tenant-namespace";
/// `<namespace>.<name>` of the Tenant a tenant part belongs to.
pub const TENANT_ANNOTATION: &str = "messaging.universal-messaging.io/tenant";

/// Key of the settings part: [`ClusterSettings`].
pub const SETTINGS_PART_KEY: &str = "settings.json";
/// Key of a tenant part: one [`TenantConfig`].
pub const TENANT_PART_KEY: &str = "tenant.json";
/// Key of a notifier part: one [`NotifierConfig`].
pub const NOTIFIER_PART_KEY: &str = "notifier.json";

/// The kinds of configuration Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigPart {
    /// The installation's settings: one Secret, read by every service.
    Settings,
    /// One Tenant as one service sees it.
    Tenant,
    /// One NotifierDestination, read by every service.
    Notifier,
}

impl ConfigPart {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigPart::Settings => "settings",
            ConfigPart::Tenant => "tenant",
            ConfigPart::Notifier => "notifier",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            ConfigPart::Settings,
            ConfigPart::Tenant,
            ConfigPart::Notifier,
        ]
        .into_iter()
        .find(|part| part.as_str() == value)
    }

    /// The Secret key that holds the part's JSON.
    pub fn data_key(self) -> &'static str {
        match self {
            ConfigPart::Settings => SETTINGS_PART_KEY,
            ConfigPart::Tenant => TENANT_PART_KEY,
            ConfigPart::Notifier => NOTIFIER_PART_KEY,
        }
    }
}

/// [`SERVICE_LABEL`] value of the parts every service reads.
pub const EVERY_SERVICE: &str = "all";

/// Name of the installation's settings part: `<instance>-settings`.
pub fn settings_part_name(instance: &str) -> String {
    format!("{instance}-settings")
}

/// Name of a Tenant's part for one service: `<instance>-<service>-t-<hash>`,
/// a hash of the Tenant key because `<namespace>.<name>` can be longer than
/// a Secret name may be.
pub fn tenant_part_name(instance: &str, service: &str, tenant_key: &str) -> String {
    format!("{instance}-{service}-t-{}", short_hash(tenant_key))
}

/// Name of a NotifierDestination's part: `<instance>-notifier-<hash>`.
pub fn notifier_part_name(instance: &str, namespace: &str, name: &str) -> String {
    format!(
        "{instance}-notifier-{}",
        short_hash(&format!("{namespace}/{name}"))
    )
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..10].iter().map(|b| format!("{b:02x}")).collect()
}

/// Label selector of every configuration Secret one service reads: its own
/// Tenant parts and the parts of every service.
pub fn config_selector(instance: &str, service: &str) -> String {
    format!("{INSTANCE_LABEL}={instance},{SERVICE_LABEL} in ({service},{EVERY_SERVICE})")
}

/// Labels of a configuration Secret (besides the operator's own); `service`
/// is [`EVERY_SERVICE`] for settings and notifier parts.
pub fn config_labels(instance: &str, service: &str, part: ConfigPart) -> BTreeMap<String, String> {
    BTreeMap::from([
        (INSTANCE_LABEL.to_owned(), instance.to_owned()),
        (SERVICE_LABEL.to_owned(), service.to_owned()),
        (PART_LABEL.to_owned(), part.as_str().to_owned()),
    ])
}

/// Reads one Secret's data as the part its label says.
pub fn parse_part(part: ConfigPart, data: &BTreeMap<String, Vec<u8>>) -> Result<Part, ConfigError> {
    let key = part.data_key();
    let bytes = data.get(key).ok_or(ConfigError::MissingKey(key))?;
    let parsed = match part {
        ConfigPart::Settings => serde_json::from_slice(bytes).map(Part::Settings),
        ConfigPart::Tenant => serde_json::from_slice(bytes).map(|t| Part::Tenant(Box::new(t))),
        ConfigPart::Notifier => serde_json::from_slice(bytes).map(Part::Notifier),
    };
    parsed.map_err(ConfigError::Parse)
}

/// One parsed configuration Secret.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Settings(ClusterSettings),
    Tenant(Box<TenantConfig>),
    Notifier(NotifierConfig),
}

impl Part {
    /// The JSON the operator writes under [`ConfigPart::data_key`].
    pub fn to_json(&self) -> Vec<u8> {
        let written = match self {
            Part::Settings(settings) => serde_json::to_vec(settings),
            Part::Tenant(tenant) => serde_json::to_vec(tenant),
            Part::Notifier(notifier) => serde_json::to_vec(notifier),
        };
        written.expect("configuration parts serialise: string keys only")
    }

    pub fn kind(&self) -> ConfigPart {
        match self {
            Part::Settings(_) => ConfigPart::Settings,
            Part::Tenant(_) => ConfigPart::Tenant,
            Part::Notifier(_) => ConfigPart::Notifier,
        }
    }
}

/// The service's whole configuration from its parts: the settings
/// (defaults until they exist), every notifier (sorted by name) and every
/// Tenant part. A Tenant part of another platform is left out, so a
/// mislabelled Secret cannot hand a connector a Tenant it cannot serve.
pub fn assemble<'a>(service: &str, parts: impl IntoIterator<Item = &'a Part>) -> ServiceConfig {
    let mut config = ServiceConfig::new(service);
    for part in parts {
        match part {
            Part::Settings(settings) => config.settings = settings.clone(),
            Part::Notifier(notifier) => config.notifiers.push(notifier.clone()),
            Part::Tenant(tenant) => {
                if service == crate::GCLOUDCX_SERVICE || tenant.platform.as_str() == service {
                    config
                        .tenants
                        .insert(tenant.key.clone(), (**tenant).clone());
                }
            }
        }
    }
    config.notifiers.sort_by(|a, b| a.name.cmp(&b.name));
    config.version = FORMAT_VERSION;
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NotifierKind, NotifierTopic, Platform, Secret, tenant_key};

    fn tenant(namespace: &str, platform: Platform) -> TenantConfig {
        let key = tenant_key(namespace, "acme");
        TenantConfig::new(
            &key,
            "ACME",
            platform,
            format!("https://um.example.com/{key}"),
        )
    }

    fn notifier(name: &str) -> NotifierConfig {
        NotifierConfig {
            namespace: None,
            name: name.to_owned(),
            kind: NotifierKind::Slack,
            topic: NotifierTopic::Default,
            target: Secret::new("https://hooks.example.com/x"),
        }
    }

    fn data(key: &str, bytes: Vec<u8>) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(key.to_owned(), bytes)])
    }

    #[test]
    fn names_are_valid_secret_names_whatever_the_tenant_key() {
        let long = format!("{}.{}", "n".repeat(63), "t".repeat(253));
        let name = tenant_part_name(&"i".repeat(40), "telegram", &long);
        assert!(name.len() <= 253, "{}", name.len());
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert_ne!(
            tenant_part_name("um", "telegram", "shop.acme"),
            tenant_part_name("um", "telegram", "shop.acme2")
        );
        assert_ne!(
            notifier_part_name("um", "a", "n"),
            notifier_part_name("um", "b", "n")
        );
        assert_eq!(settings_part_name("um"), "um-settings");
        assert_eq!(
            config_selector("um", "line"),
            "messaging.universal-messaging.io/instance=um,messaging.universal-messaging.io/service in (line,all)"
        );
    }

    #[test]
    fn assembles_the_service_from_its_parts() {
        let settings = ClusterSettings {
            outbound_proxy: Some("http://proxy:3128".into()),
            ..ClusterSettings::default()
        };
        let parts = vec![
            Part::Tenant(Box::new(tenant("a", Platform::Telegram))),
            Part::Notifier(notifier("z")),
            Part::Settings(settings),
            Part::Tenant(Box::new(tenant("b", Platform::Telegram))),
            Part::Notifier(notifier("a")),
            // Not this service's platform: left out.
            Part::Tenant(Box::new(tenant("c", Platform::Line))),
        ];
        let config = assemble("telegram", &parts);
        assert_eq!(
            config.tenants.keys().collect::<Vec<_>>(),
            vec!["a.acme", "b.acme"]
        );
        assert_eq!(
            config.settings.outbound_proxy.as_deref(),
            Some("http://proxy:3128")
        );
        let names: Vec<&str> = config.notifiers.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "z"]);
        // gcloudcx serves Tenants of every platform.
        assert_eq!(assemble("gcloudcx", &parts).tenants.len(), 3);
        assert_eq!(assemble("telegram", &[]), ServiceConfig::new("telegram"));
    }

    #[test]
    fn every_part_round_trips_under_its_key_and_a_missing_key_is_named() {
        for part in [
            Part::Tenant(Box::new(tenant("a", Platform::Telegram))),
            Part::Settings(ClusterSettings::default()),
            Part::Notifier(notifier("n")),
        ] {
            let kind = part.kind();
            assert_eq!(ConfigPart::parse(kind.as_str()), Some(kind));
            let parsed = parse_part(kind, &data(kind.data_key(), part.to_json())).unwrap();
            assert_eq!(parsed, part);
        }
        let bytes = Part::Tenant(Box::new(tenant("a", Platform::Telegram))).to_json();
        let err = parse_part(ConfigPart::Settings, &data(TENANT_PART_KEY, bytes)).unwrap_err();
        assert!(err.to_string().contains("settings.json"), "{err}");
        assert_eq!(ConfigPart::parse("other"), None);
    }
}
