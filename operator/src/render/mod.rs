//! Pure rendering: the Tenants, Storages and NotifierDestinations of one
//! namespace plus the operator configuration → the objects that should
//! exist there. No I/O; the controllers apply what this returns.

mod deployment;
mod hpa;
mod ingress;
mod labels;
mod service;
mod service_config;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Secret as KubeSecret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use um_config::{NotifierConfig, Platform, TenantConfig};

use crate::config::{API_SERVICE, GCLOUDCX_SERVICE, OperatorConfig};

pub use deployment::render_connector_deployment;
pub use hpa::render_connector_hpa;
pub use ingress::{INGRESS_NAME, render_ingress};
pub use labels::{MANAGED_BY, connector_labels, managed_labels, object_name};
pub use service::{HTTP_PORT, render_connector_service};
pub use service_config::{render_config_secret, render_service_config};

/// API version and kind of the owner references to Tenants.
pub const TENANT_API_VERSION: &str = "messaging.universal-messaging.io/v1alpha1";
pub const TENANT_KIND: &str = "Tenant";

/// A Tenant as an owner of shared objects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TenantOwner {
    pub name: String,
    pub uid: String,
}

impl TenantOwner {
    /// Non-controller reference: several Tenants share one Deployment, and
    /// the garbage collector deletes it when the last of them is gone.
    pub fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: TENANT_API_VERSION.to_owned(),
            kind: TENANT_KIND.to_owned(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: None,
            block_owner_deletion: None,
        }
    }
}

/// One Tenant of the namespace as rendering needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceTenant {
    pub owner: TenantOwner,
    pub platform: Platform,
    /// cx is genesysCloud: the gcloudcx connector serves it.
    pub uses_genesys: bool,
    /// The resolved configuration (with messaging, genesys and apiAuth
    /// parts); None while its credentials do not resolve, so the services
    /// do not see it yet but its connector still runs for the others.
    pub config: Option<TenantConfig>,
}

/// Everything of one namespace that rendering reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceState {
    pub namespace: String,
    pub tenants: Vec<NamespaceTenant>,
    /// NotifierDestinations whose credentials resolved.
    pub notifiers: Vec<NotifierConfig>,
}

/// One connector service to run in the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorService {
    /// `gcloudcx`, `api` or the platform's name.
    pub service: String,
    pub owners: Vec<TenantOwner>,
}

impl ConnectorService {
    pub fn owner_references(&self) -> Vec<OwnerReference> {
        self.owners
            .iter()
            .map(TenantOwner::owner_reference)
            .collect()
    }
}

/// Every object the namespace should hold.
#[derive(Debug, Clone, Default)]
pub struct DesiredObjects {
    pub deployments: Vec<Deployment>,
    pub services: Vec<Service>,
    pub autoscalers: Vec<HorizontalPodAutoscaler>,
    pub secrets: Vec<KubeSecret>,
    pub ingress: Option<Ingress>,
}

/// The connector services the namespace needs, each with the Tenants that
/// use it (sorted, so rendering is stable). Disabled services, and services
/// this version's connector does not have (`api`), are left out.
pub fn connector_services(
    config: &OperatorConfig,
    state: &NamespaceState,
) -> Vec<ConnectorService> {
    let mut by_service: BTreeMap<String, Vec<TenantOwner>> = BTreeMap::new();
    for tenant in &state.tenants {
        by_service
            .entry(tenant.platform.as_str().to_owned())
            .or_default()
            .push(tenant.owner.clone());
        if tenant.uses_genesys {
            by_service
                .entry(GCLOUDCX_SERVICE.to_owned())
                .or_default()
                .push(tenant.owner.clone());
        }
        by_service
            .entry(API_SERVICE.to_owned())
            .or_default()
            .push(tenant.owner.clone());
    }
    by_service
        .into_iter()
        .filter(|(service, _)| {
            config.service_enabled(service) && um_config::connector_runs(service)
        })
        .map(|(service, mut owners)| {
            owners.sort();
            owners.dedup();
            ConnectorService { service, owners }
        })
        .collect()
}

/// The whole desired state of a namespace.
pub fn render_namespace(config: &OperatorConfig, state: &NamespaceState) -> DesiredObjects {
    let services = connector_services(config, state);
    let mut desired = DesiredObjects::default();
    for connector in &services {
        let settings = config.service(&connector.service);
        let service_config = render_service_config(config, state, &connector.service);
        desired.secrets.push(render_config_secret(
            &state.namespace,
            connector,
            &service_config,
        ));
        desired.deployments.push(render_connector_deployment(
            config,
            &state.namespace,
            connector,
        ));
        desired.services.push(render_connector_service(
            &settings,
            &state.namespace,
            connector,
        ));
        if settings.autoscaling.enabled {
            desired
                .autoscalers
                .push(render_connector_hpa(&settings, &state.namespace, connector));
        }
    }
    desired.ingress = render_ingress(config, &state.namespace, &services);
    desired
}

#[cfg(test)]
pub(crate) mod tests;
