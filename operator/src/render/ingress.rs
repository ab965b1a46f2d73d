//! The installation's one Ingress: `/<platform>` to the platform connector,
//! `/openmessaging` to gcloudcx, `/api` to the api service.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::labels::{managed_labels, object_name};
use super::service::HTTP_PORT;
use crate::config::{API_SERVICE, GCLOUDCX_SERVICE, OperatorConfig};

/// `<instance>-ingress`: one per installation, whatever the number of
/// Tenant namespaces, so no two Ingresses claim the same host and path.
pub fn ingress_name(instance: &str) -> String {
    format!("{instance}-ingress")
}

fn path_of(service: &str) -> String {
    match service {
        GCLOUDCX_SERVICE => "/openmessaging".to_owned(),
        API_SERVICE => "/api".to_owned(),
        platform => format!("/{platform}"),
    }
}

/// None when the ingress is disabled or nothing runs in the namespace.
pub fn render_ingress(
    config: &OperatorConfig,
    namespace: &str,
    services: &[String],
) -> Option<Ingress> {
    if !config.ingress.enabled || services.is_empty() {
        return None;
    }
    let instance = &config.instance;
    let paths = services
        .iter()
        .map(|service| HTTPIngressPath {
            path: Some(path_of(service)),
            path_type: "Prefix".to_owned(),
            backend: IngressBackend {
                service: Some(IngressServiceBackend {
                    name: object_name(instance, service),
                    port: Some(ServiceBackendPort {
                        number: Some(HTTP_PORT),
                        name: None,
                    }),
                }),
                resource: None,
            },
        })
        .collect();
    let ingress = &config.ingress;
    Some(Ingress {
        metadata: ObjectMeta {
            name: Some(ingress_name(instance)),
            namespace: Some(namespace.to_owned()),
            labels: Some(managed_labels(instance)),
            annotations: (!ingress.annotations.is_empty()).then(|| ingress.annotations.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: (!ingress.class_name.is_empty())
                .then(|| ingress.class_name.clone()),
            rules: Some(vec![IngressRule {
                host: (!ingress.host.is_empty()).then(|| ingress.host.clone()),
                http: Some(HTTPIngressRuleValue { paths }),
            }]),
            tls: (!ingress.tls.is_empty()).then(|| {
                ingress
                    .tls
                    .iter()
                    .map(|tls| IngressTLS {
                        hosts: (!tls.hosts.is_empty()).then(|| tls.hosts.clone()),
                        secret_name: (!tls.secret_name.is_empty()).then(|| tls.secret_name.clone()),
                    })
                    .collect()
            }),
            default_backend: None,
        }),
        ..Ingress::default()
    })
}
