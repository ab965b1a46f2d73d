//! Pure rendering: the operator configuration plus what the installation
//! serves → the objects that should exist in its namespace. No I/O; the
//! controllers apply what this returns.

mod deployment;
mod hpa;
mod ingress;
mod labels;
mod parts;
mod service;

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Secret as KubeSecret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use um_config::Platform;

use crate::config::OperatorConfig;

pub use deployment::render_connector_deployment;
pub use hpa::render_connector_hpa;
pub use ingress::{ingress_name, render_ingress};
pub use labels::{
    INSTANCE_LABEL, MANAGED_BY, connector_labels, managed_labels, managed_selector, object_name,
};
pub use parts::{
    every_tenant_part_name, part_of, render_notifier_part, render_settings_part,
    render_tenant_parts, tenant_services, tenant_view,
};
pub use service::{HTTP_PORT, render_connector_service};

/// What the installation's shared objects depend on: the services some
/// served Tenant uses. Nothing else about the Tenants, so a Tenant change
/// re-renders nothing shared unless it starts or ends a service's use.
pub fn services_in_use(
    config: &OperatorConfig,
    tenants: impl IntoIterator<Item = (Platform, bool)>,
) -> Vec<String> {
    let mut services = BTreeSet::new();
    for (platform, uses_genesys) in tenants {
        services.extend(tenant_services(config, platform, uses_genesys));
    }
    services.into_iter().collect()
}

/// Every shared object the installation's namespace should hold.
#[derive(Debug, Clone, Default)]
pub struct DesiredObjects {
    pub deployments: Vec<Deployment>,
    pub services: Vec<Service>,
    pub autoscalers: Vec<HorizontalPodAutoscaler>,
    /// The settings part.
    pub secrets: Vec<KubeSecret>,
    pub ingress: Option<Ingress>,
}

/// The data plane of the installation in `namespace`: per service in use a
/// Deployment, Service and (with autoscaling) autoscaler, the one Ingress,
/// and the settings every service reads.
pub fn render_data_plane(
    config: &OperatorConfig,
    namespace: &str,
    services: &[String],
) -> DesiredObjects {
    let mut desired = DesiredObjects::default();
    for service in services {
        desired
            .deployments
            .push(render_connector_deployment(config, namespace, service));
        desired
            .services
            .push(render_connector_service(config, namespace, service));
        if config.service(service).autoscaling.enabled {
            desired
                .autoscalers
                .push(render_connector_hpa(config, namespace, service));
        }
    }
    if !services.is_empty() {
        desired
            .secrets
            .push(render_settings_part(config, namespace));
    }
    desired.ingress = render_ingress(config, namespace, services);
    desired
}

#[cfg(test)]
pub(crate) mod tests;
