//! The per-service configuration file (`um_config::ServiceConfig`) and the
//! Secret that carries it. Each service gets only the credentials it uses:
//! a platform connector its platform's, gcloudcx the Genesys ones, api the
//! IVR API authentication.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use um_config::{
    CONFIG_FILE_NAME, ClusterSettings, ServiceConfig, TenantConfig, config_secret_name,
};

use super::labels::connector_labels;
use super::{ConnectorService, NamespaceState};
use crate::config::{API_SERVICE, GCLOUDCX_SERVICE, OperatorConfig};

/// The part of a Tenant's configuration that `service` may see, or None
/// when the service does not serve that Tenant.
fn tenant_view(service: &str, tenant: &TenantConfig, uses_genesys: bool) -> Option<TenantConfig> {
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

pub fn render_service_config(
    config: &OperatorConfig,
    state: &NamespaceState,
    service: &str,
) -> ServiceConfig {
    let mut rendered = ServiceConfig::new(service);
    rendered.tenants = state
        .tenants
        .iter()
        .filter_map(|tenant| {
            let resolved = tenant.config.as_ref()?;
            tenant_view(service, resolved, tenant.uses_genesys).map(|view| (view.key.clone(), view))
        })
        .collect::<BTreeMap<_, _>>();
    rendered.notifiers = state.notifiers.clone();
    rendered.notifiers.sort_by(|a, b| a.name.cmp(&b.name));
    rendered.settings = ClusterSettings {
        outbound_proxy: Some(config.settings.outbound_proxy.clone()).filter(|p| !p.is_empty()),
        default_commander_prefix: Some(config.settings.default_commander.prefix.clone())
            .filter(|p| !p.is_empty()),
    };
    rendered
}

/// `um-<service>-config` with `service.json`. Stable bytes: an unchanged
/// configuration is an unchanged Secret, so connectors do not reload.
pub fn render_config_secret(
    namespace: &str,
    connector: &ConnectorService,
    service_config: &ServiceConfig,
) -> KubeSecret {
    KubeSecret {
        metadata: ObjectMeta {
            name: Some(config_secret_name(&connector.service.to_ascii_lowercase())),
            namespace: Some(namespace.to_owned()),
            labels: Some(connector_labels(&connector.service)),
            owner_references: Some(connector.owner_references()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            CONFIG_FILE_NAME.to_owned(),
            ByteString(service_config.to_json()),
        )])),
        ..KubeSecret::default()
    }
}
