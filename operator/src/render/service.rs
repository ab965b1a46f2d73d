//! The connector's Service.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ConnectorService;
use super::labels::{connector_labels, connector_selector, object_name};
use crate::config::ServiceSettings;

/// Every connector serves HTTP (webhooks, health, metrics) on this port.
pub const HTTP_PORT: i32 = 8080;

pub fn render_connector_service(
    settings: &ServiceSettings,
    namespace: &str,
    connector: &ConnectorService,
) -> Service {
    let annotations = &settings.service.annotations;
    Service {
        metadata: ObjectMeta {
            name: Some(object_name(&connector.service)),
            namespace: Some(namespace.to_owned()),
            labels: Some(connector_labels(&connector.service)),
            annotations: (!annotations.is_empty()).then(|| annotations.clone()),
            owner_references: Some(connector.owner_references()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(settings.service.type_.clone()),
            selector: Some(connector_selector(&connector.service)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: HTTP_PORT,
                target_port: Some(IntOrString::String("http".to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
