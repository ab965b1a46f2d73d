//! The operator's own configuration: one YAML file (env `UM_OPERATOR_CONFIG`)
//! that the Helm chart renders into the ConfigMap
//! `<release>-universal-messaging-operator-config`.
//!
//! Unknown fields are refused (`deny_unknown_fields`) so a typo in the chart
//! values surfaces at start instead of silently falling back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "UM_OPERATOR_CONFIG";
/// Where the chart mounts the file when the variable is not set.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/um-operator/config.yaml";

/// Longest installation name: `<instance>-operator-leader` and the bus
/// names built from it stay well inside Kubernetes' and AMQP's limits.
pub const MAX_INSTANCE_LEN: usize = 40;

/// Service names that are not platforms.
pub use um_config::GCLOUDCX_SERVICE;
pub const API_SERVICE: &str = "api";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorConfig {
    /// Name of this installation (the chart gives its release-scoped name):
    /// it names the leader Lease and starts the bus namespace of every
    /// connector (queues, exchanges and Redis keys), so two installations
    /// on one cluster, broker and Redis share none of them.
    #[serde(default = "default_instance")]
    pub instance: String,
    /// Namespaces whose Tenants, Storages and NotifierDestinations this
    /// installation serves; empty means all. Two installations on one
    /// cluster serve disjoint lists.
    #[serde(default)]
    pub watch_namespaces: Vec<String>,
    /// ServiceAccount of the connector pods; empty = `<instance>-connector`.
    #[serde(default)]
    pub connector_service_account: String,
    /// Public base URL of the ingress, without trailing slash; webhook URLs
    /// are built from it.
    pub api_root: String,
    #[serde(default)]
    pub image: ImageConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Per service (`gcloudcx`, `api`, or a platform name); a missing entry
    /// means defaults.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceSettings>,
    #[serde(default)]
    pub ingress: IngressConfig,
    pub rabbitmq: ConnectionConfig,
    pub redis: ConnectionConfig,
    #[serde(default)]
    pub settings: SettingsConfig,
    #[serde(default)]
    pub genesys_cloud: GenesysCloudConfig,
    /// Platform API base URL overrides (empty = the platform's real API).
    #[serde(default)]
    pub platform_api_base_urls: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageConfig {
    #[serde(default)]
    pub registry: String,
    pub repository: String,
    pub tag: String,
    #[serde(default = "default_pull_policy")]
    pub pull_policy: String,
}

fn default_instance() -> String {
    "um".to_owned()
}

fn default_pull_policy() -> String {
    "IfNotPresent".to_owned()
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            registry: "ghcr.io".to_owned(),
            repository: "universal-messaging/um-connector".to_owned(),
            tag: env!("CARGO_PKG_VERSION").to_owned(),
            pull_policy: default_pull_policy(),
        }
    }
}

impl ImageConfig {
    /// `registry/repository:tag`, or `repository:tag` without a registry.
    pub fn reference(&self) -> String {
        let registry = self.registry.trim_end_matches('/');
        if registry.is_empty() {
            format!("{}:{}", self.repository, self.tag)
        } else {
            format!("{registry}/{}:{}", self.repository, self.tag)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoggingConfig {
    #[serde(default = "default_log_level")]
    pub level: String,
}

fn default_log_level() -> String {
    "INFO".to_owned()
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: default_log_level(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSettings {
    /// None = the service's default (true, except `api`).
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub logging: ServiceLogging,
    #[serde(default)]
    pub autoscaling: AutoscalingConfig,
    /// Replicas when autoscaling is disabled.
    #[serde(default)]
    pub replicas: Option<i32>,
    #[serde(default)]
    pub resources: ResourcesConfig,
    #[serde(default)]
    pub service: KubeServiceConfig,
    /// Requests a connector handles at once before it answers 503
    /// (`UM_MAX_INFLIGHT_REQUESTS`); None = the connector's default.
    #[serde(default)]
    pub max_inflight_requests: Option<u32>,
    /// How long a failing delivery is retried before it is dead-lettered
    /// (`UM_RETRY_FOR_SECONDS`); None = the connector's default (24 h).
    #[serde(default)]
    pub retry_for_seconds: Option<u64>,
    /// CIDRs, addresses and host names the connector may fetch outside URLs
    /// from although they are private, loopback, ... (`UM_FETCH_ALLOW`).
    #[serde(default)]
    pub fetch_allow: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceLogging {
    /// Empty = the global level.
    #[serde(default)]
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoscalingConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_min_replicas")]
    pub min_replicas: i32,
    #[serde(default = "default_max_replicas")]
    pub max_replicas: i32,
    #[serde(
        default = "default_cpu_target",
        rename = "targetCPUUtilizationPercentage"
    )]
    pub target_cpu_utilization_percentage: i32,
}

fn yes() -> bool {
    true
}
fn default_min_replicas() -> i32 {
    1
}
fn default_max_replicas() -> i32 {
    10
}
fn default_cpu_target() -> i32 {
    80
}

impl Default for AutoscalingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_replicas: default_min_replicas(),
            max_replicas: default_max_replicas(),
            target_cpu_utilization_percentage: default_cpu_target(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcesConfig {
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
}

impl Default for ResourcesConfig {
    fn default() -> Self {
        let pair = |cpu: &str, memory: &str| {
            BTreeMap::from([
                ("cpu".to_owned(), cpu.to_owned()),
                ("memory".to_owned(), memory.to_owned()),
            ])
        };
        Self {
            limits: pair("50m", "64Mi"),
            requests: pair("20m", "32Mi"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeServiceConfig {
    #[serde(default = "default_service_type", rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

fn default_service_type() -> String {
    "ClusterIP".to_owned()
}

impl Default for KubeServiceConfig {
    fn default() -> Self {
        Self {
            type_: default_service_type(),
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub class_name: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub tls: Vec<IngressTls>,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            class_name: String::new(),
            host: String::new(),
            annotations: BTreeMap::new(),
            tls: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressTls {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub secret_name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionConfig {
    pub url_secret_ref: SecretKeyRef,
}

/// A key of a Secret in the namespace of the object that uses it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsConfig {
    #[serde(default)]
    pub outbound_proxy: String,
    #[serde(default)]
    pub default_commander: DefaultCommander,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultCommander {
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_prefix() -> String {
    ">".to_owned()
}

impl Default for DefaultCommander {
    fn default() -> Self {
        Self {
            prefix: default_prefix(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesysCloudConfig {
    /// Empty = derived from the tenant's region.
    #[serde(default)]
    pub api_base_url: String,
    #[serde(default)]
    pub login_base_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read operator configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("operator configuration file {path} is invalid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    #[error("operator configuration file {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl OperatorConfig {
    /// Reads the file named by `UM_OPERATOR_CONFIG`, else the chart's path.
    pub fn load_from_env() -> Result<Self, ConfigFileError> {
        let path = std::env::var_os(CONFIG_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
        Self::load(&path)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|err| match err {
            ParseError::Yaml(source) => ConfigFileError::Parse {
                path: path.to_owned(),
                source,
            },
            ParseError::Invalid(reason) => ConfigFileError::Invalid {
                path: path.to_owned(),
                reason,
            },
        })
    }

    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut config: OperatorConfig =
            serde_saphyr::from_str(text).map_err(|e| ParseError::Yaml(Box::new(e)))?;
        config.api_root = config.api_root.trim_end_matches('/').to_owned();
        config.validate().map_err(ParseError::Invalid)?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let instance_ok = !self.instance.is_empty()
            && self.instance.len() <= MAX_INSTANCE_LEN
            && self
                .instance
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !self.instance.starts_with('-')
            && !self.instance.ends_with('-');
        if !instance_ok {
            return Err(format!(
                "instance {:?} must be 1 to {MAX_INSTANCE_LEN} lowercase letters, digits or '-', starting and ending with a letter or digit",
                self.instance
            ));
        }
        let url = url::Url::parse(&self.api_root)
            .map_err(|err| format!("apiRoot {:?} is not a URL: {err}", self.api_root))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "apiRoot {:?} must be an http(s) URL",
                self.api_root
            ));
        }
        for namespace in &self.watch_namespaces {
            let label_ok = !namespace.is_empty()
                && namespace.len() <= 63
                && namespace
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !namespace.starts_with('-')
                && !namespace.ends_with('-');
            if !label_ok {
                return Err(format!(
                    "watchNamespaces: {namespace:?} is not a namespace name (a DNS label)"
                ));
            }
        }
        for (name, service) in &self.services {
            let autoscaling = &service.autoscaling;
            if autoscaling.min_replicas < 1 || autoscaling.max_replicas < autoscaling.min_replicas {
                return Err(format!(
                    "services.{name}.autoscaling: need 1 <= minReplicas ({}) <= maxReplicas ({})",
                    autoscaling.min_replicas, autoscaling.max_replicas
                ));
            }
        }
        Ok(())
    }

    /// The bus namespace of the installation's connectors (first part of
    /// every queue, exchange and Redis key): the instance name, so two
    /// installations on one broker and Redis share none.
    pub fn bus_namespace(&self) -> String {
        self.instance.clone()
    }

    /// The ServiceAccount the connector pods run as (the chart creates it
    /// with read access to the configuration Secrets of its namespace).
    pub fn connector_service_account(&self) -> String {
        if self.connector_service_account.is_empty() {
            format!("{}-connector", self.instance)
        } else {
            self.connector_service_account.clone()
        }
    }

    /// Whether this installation serves the objects of `namespace`.
    pub fn watches_namespace(&self, namespace: &str) -> bool {
        self.watch_namespaces.is_empty() || self.watch_namespaces.iter().any(|n| n == namespace)
    }

    /// Name of the leader Lease in the operator's namespace.
    pub fn lease_name(&self) -> String {
        format!("{}-operator-leader", self.instance)
    }

    /// Settings of one service; defaults when the chart has no entry.
    pub fn service(&self, name: &str) -> ServiceSettings {
        self.services.get(name).cloned().unwrap_or_default()
    }

    pub fn service_enabled(&self, name: &str) -> bool {
        self.services
            .get(name)
            .and_then(|s| s.enabled)
            .unwrap_or(name != API_SERVICE)
    }

    /// The level the connector of `service` logs at.
    pub fn log_level(&self, service: &str) -> String {
        match self.services.get(service) {
            Some(s) if !s.logging.level.is_empty() => s.logging.level.clone(),
            _ => self.logging.level.clone(),
        }
    }

    /// Configured API base URL of a platform, None for the real API.
    pub fn platform_api_base_url(&self, platform: &str) -> Option<String> {
        self.platform_api_base_urls
            .get(platform)
            .filter(|url| !url.is_empty())
            .map(|url| url.trim_end_matches('/').to_owned())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    // Boxed: the YAML error carries its source snippet and is large.
    Yaml(#[source] Box<serde_saphyr::Error>),
    #[error("{0}")]
    Invalid(String),
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const EXAMPLE: &str = r#"
apiRoot: https://um.example.com/
image: {registry: ghcr.io, repository: universal-messaging/um-connector, tag: "0.1.0", pullPolicy: IfNotPresent}
logging: {level: "INFO"}
services:
  gcloudcx: {enabled: true, logging: {level: ""}, autoscaling: {enabled: true, minReplicas: 1, maxReplicas: 10, targetCPUUtilizationPercentage: 80},
             resources: {limits: {cpu: 50m, memory: 64Mi}, requests: {cpu: 20m, memory: 32Mi}}, service: {type: ClusterIP, annotations: {}}}
  telegram: {logging: {level: "DEBUG"}, autoscaling: {enabled: false}, replicas: 2}
ingress: {enabled: true, className: nginx, host: um.example.com, annotations: {a: b}, tls: [{hosts: [um.example.com], secretName: um-tls}]}
rabbitmq: {urlSecretRef: {name: um-rabbitmq, key: url}}
redis: {urlSecretRef: {name: um-redis, key: url}}
settings: {outboundProxy: "", defaultCommander: {prefix: ">"}}
genesysCloud: {apiBaseUrl: "", loginBaseUrl: ""}
platformApiBaseUrls: {telegram: ""}
"#;

    pub fn example() -> OperatorConfig {
        OperatorConfig::parse(EXAMPLE).unwrap()
    }

    #[test]
    fn parses_the_chart_shape() {
        let config = example();
        assert_eq!(
            config.api_root, "https://um.example.com",
            "trailing slash trimmed"
        );
        assert_eq!(
            config.image.reference(),
            "ghcr.io/universal-messaging/um-connector:0.1.0"
        );
        assert_eq!(config.ingress.class_name, "nginx");
        assert_eq!(config.ingress.tls[0].secret_name, "um-tls");
        assert_eq!(config.rabbitmq.url_secret_ref.name, "um-rabbitmq");
        assert_eq!(config.service("gcloudcx").autoscaling.max_replicas, 10);
        assert_eq!(config.platform_api_base_url("telegram"), None);
    }

    #[test]
    fn per_service_log_level_overrides_the_global_one() {
        let config = example();
        assert_eq!(config.log_level("telegram"), "DEBUG");
        assert_eq!(
            config.log_level("gcloudcx"),
            "INFO",
            "empty level means global"
        );
        assert_eq!(
            config.log_level("line"),
            "INFO",
            "missing service means global"
        );
    }

    #[test]
    fn missing_service_entry_means_defaults() {
        let config = example();
        let line = config.service("line");
        assert!(line.autoscaling.enabled);
        assert_eq!(
            (line.autoscaling.min_replicas, line.autoscaling.max_replicas),
            (1, 10)
        );
        assert_eq!(line.autoscaling.target_cpu_utilization_percentage, 80);
        assert!(config.service_enabled("line"));
        assert!(!config.service_enabled("api"), "api is off unless enabled");
        let telegram = config.service("telegram");
        assert!(!telegram.autoscaling.enabled);
        assert_eq!(
            telegram.autoscaling.max_replicas, 10,
            "partial entry keeps other defaults"
        );
    }

    #[test]
    fn the_installation_names_its_lease_and_bus_namespaces() {
        let config = example();
        assert_eq!(config.instance, "um", "the default installation name");
        assert_eq!(config.lease_name(), "um-operator-leader");
        assert_eq!(config.bus_namespace(), "um");
        assert_eq!(config.connector_service_account(), "um-connector");
        let second =
            OperatorConfig::parse(&format!("instance: um-second\n{EXAMPLE}")).expect("parses");
        assert_eq!(second.lease_name(), "um-second-operator-leader");
        assert_ne!(second.bus_namespace(), config.bus_namespace());
        assert!(config.watches_namespace("anywhere"), "empty means all");
        let scoped =
            OperatorConfig::parse(&format!("watchNamespaces: [shop-a, shop-b]\n{EXAMPLE}"))
                .expect("parses");
        assert!(scoped.watches_namespace("shop-b") && !scoped.watches_namespace("shop-c"));
        let err = OperatorConfig::parse(&format!("watchNamespaces: [Shop_A]\n{EXAMPLE}"))
            .expect_err("not a namespace")
            .to_string();
        assert!(
            err.contains("watchNamespaces") && err.contains("Shop_A"),
            "{err}"
        );
        for bad in [
            "",
            "UM",
            "um.second",
            "-um",
            &"a".repeat(MAX_INSTANCE_LEN + 1),
        ] {
            let err = OperatorConfig::parse(&format!("instance: \"{bad}\"\n{EXAMPLE}"))
                .expect_err(bad)
                .to_string();
            assert!(err.contains("instance"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_typo_is_refused_with_the_field_name() {
        let text = EXAMPLE.replace("className", "clasName");
        let err = OperatorConfig::parse(&text).unwrap_err().to_string();
        assert!(err.contains("clasName"), "{err}");
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let err = OperatorConfig::load(&missing).unwrap_err().to_string();
        assert!(err.contains("nope.yaml"), "{err}");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "apiRoot: not a url\nrabbitmq: {urlSecretRef: {name: a, key: b}}\nredis: {urlSecretRef: {name: a, key: b}}\n").unwrap();
        let err = OperatorConfig::load(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.yaml") && err.contains("apiRoot"), "{err}");
    }

    #[test]
    fn refuses_inverted_autoscaling_bounds() {
        let text = EXAMPLE.replace(
            "minReplicas: 1, maxReplicas: 10",
            "minReplicas: 5, maxReplicas: 2",
        );
        let err = OperatorConfig::parse(&text).unwrap_err().to_string();
        assert!(err.contains("services.gcloudcx.autoscaling"), "{err}");
    }

    /// The chart offers a `services.<name>` for exactly the services this
    /// version's connector runs: the platform table decides, the chart's
    /// values and schema follow.
    #[test]
    fn chart_services_are_the_services_the_connector_runs() {
        let chart =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/universal-messaging");
        let expected: std::collections::BTreeSet<String> =
            std::iter::once(GCLOUDCX_SERVICE.to_owned())
                .chain(um_config::Platform::supported().map(|p| p.as_str().to_owned()))
                .collect();
        let values: serde_json::Value =
            serde_saphyr::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap())
                .unwrap();
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(chart.join("values.schema.json")).unwrap(),
        )
        .unwrap();
        let keys = |object: &serde_json::Value| -> std::collections::BTreeSet<String> {
            object.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys(&values["services"]), expected, "values.yaml");
        assert_eq!(
            keys(&schema["properties"]["services"]["properties"]),
            expected,
            "values.schema.json"
        );
        for service in &expected {
            assert!(um_config::connector_runs(service), "{service}");
        }
    }
}
