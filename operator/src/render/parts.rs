//! The configuration Secrets ([`um_config::layout`]): one per Tenant and
//! service that serves it, one per NotifierDestination, one for the
//! installation's settings. Each holds what its readers may see and no
//! more: a platform connector gets the platform credentials, gcloudcx the
//! Genesys ones.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use um_config::layout::{
    self, ConfigPart, EVERY_SERVICE, Part, TENANT_ANNOTATION, TENANT_NAMESPACE_LABEL,
};
use um_config::{ClusterSettings, NotifierConfig, Platform, TenantConfig, connector_runs};

use super::labels::managed_labels;
use crate::config::{API_SERVICE, GCLOUDCX_SERVICE, OperatorConfig};

/// The services that serve a Tenant in this installation: its platform's
/// connector and, with Genesys Cloud, gcloudcx; only those enabled and run
/// by this version's connector.
pub fn tenant_services(
    config: &OperatorConfig,
    platform: Platform,
    uses_genesys: bool,
) -> Vec<String> {
    let mut services = vec![platform.as_str().to_owned()];
    if uses_genesys {
        services.push(GCLOUDCX_SERVICE.to_owned());
    }
    services.push(API_SERVICE.to_owned());
    services.retain(|service| config.service_enabled(service) && connector_runs(service));
    services
}

/// What one service may see of a Tenant (None: the service does not serve it).
pub fn tenant_view(
    service: &str,
    tenant: &TenantConfig,
    uses_genesys: bool,
) -> Option<TenantConfig> {
    let mut view = tenant.clone();
    match service {
        GCLOUDCX_SERVICE => {
            if !uses_genesys {
                return None;
            }
            view.messaging = None;
            view.api_auth = None;
        }
        API_SERVICE => {
            view.messaging = None;
            view.genesys = None;
        }
        platform if tenant.platform.as_str() == platform => {
            view.genesys = None;
            view.api_auth = None;
        }
        _ => return None,
    }
    Some(view)
}

fn part_secret(
    config: &OperatorConfig,
    namespace: &str,
    name: String,
    service: &str,
    part: &Part,
) -> KubeSecret {
    let mut labels = managed_labels(&config.instance);
    labels.extend(layout::config_labels(
        &config.instance,
        service,
        part.kind(),
    ));
    KubeSecret {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            part.kind().data_key().to_owned(),
            ByteString(part.to_json()),
        )])),
        ..KubeSecret::default()
    }
}

/// The Tenant's parts, one per service that serves it, in the
/// installation's namespace `namespace`.
pub fn render_tenant_parts(
    config: &OperatorConfig,
    namespace: &str,
    tenant_namespace: &str,
    tenant: &TenantConfig,
    uses_genesys: bool,
) -> Vec<KubeSecret> {
    tenant_services(config, tenant.platform, uses_genesys)
        .into_iter()
        .filter_map(|service| {
            let view = tenant_view(&service, tenant, uses_genesys)?;
            let name = layout::tenant_part_name(&config.instance, &service, &tenant.key);
            let mut secret = part_secret(
                config,
                namespace,
                name,
                &service,
                &Part::Tenant(Box::new(view)),
            );
            secret.metadata.labels.get_or_insert_default().insert(
                TENANT_NAMESPACE_LABEL.to_owned(),
                tenant_namespace.to_owned(),
            );
            secret.metadata.annotations = Some(BTreeMap::from([(
                TENANT_ANNOTATION.to_owned(),
                tenant.key.clone(),
            )]));
            Some(secret)
        })
        .collect()
}

/// Names of every part a Tenant could have (whatever its platform and
/// Genesys use today): what its deletion removes.
pub fn every_tenant_part_name(config: &OperatorConfig, tenant_key: &str) -> Vec<String> {
    Platform::ALL
        .iter()
        .map(|p| p.as_str())
        .chain([GCLOUDCX_SERVICE, API_SERVICE])
        .filter(|service| connector_runs(service))
        .map(|service| layout::tenant_part_name(&config.instance, service, tenant_key))
        .collect()
}

/// The settings every service reads.
pub fn render_settings_part(config: &OperatorConfig, namespace: &str) -> KubeSecret {
    let settings = ClusterSettings {
        outbound_proxy: Some(config.settings.outbound_proxy.clone()).filter(|p| !p.is_empty()),
        default_commander_prefix: Some(config.settings.default_commander.prefix.clone())
            .filter(|p| !p.is_empty()),
    };
    part_secret(
        config,
        namespace,
        layout::settings_part_name(&config.instance),
        EVERY_SERVICE,
        &Part::Settings(settings),
    )
}

/// A NotifierDestination whose target resolved.
pub fn render_notifier_part(
    config: &OperatorConfig,
    namespace: &str,
    notifier_namespace: &str,
    notifier: &NotifierConfig,
) -> KubeSecret {
    let mut secret = part_secret(
        config,
        namespace,
        layout::notifier_part_name(&config.instance, notifier_namespace, &notifier.name),
        EVERY_SERVICE,
        &Part::Notifier(notifier.clone()),
    );
    secret.metadata.labels.get_or_insert_default().insert(
        TENANT_NAMESPACE_LABEL.to_owned(),
        notifier_namespace.to_owned(),
    );
    secret
}

/// Whether a Secret is one of the installation's parts, and which.
pub fn part_of(secret_labels: &BTreeMap<String, String>) -> Option<ConfigPart> {
    secret_labels
        .get(layout::PART_LABEL)
        .and_then(|value| ConfigPart::parse(value))
}
