//! The ClusterIP Service in front of a connector Deployment.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels::{connector_labels, connector_selector, object_name};
use crate::config::OperatorConfig;

pub const HTTP_PORT: i32 = 8080;

pub fn render_connector_service(
    config: &OperatorConfig,
    namespace: &str,
    service: &str,
) -> Service {
    let settings = config.service(service);
    let annotations = &settings.service.annotations;
    let instance = &config.instance;
    Service {
        metadata: ObjectMeta {
            name: Some(object_name(instance, service)),
            namespace: Some(namespace.to_owned()),
            labels: Some(connector_labels(instance, service)),
            annotations: (!annotations.is_empty()).then(|| annotations.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(settings.service.type_.clone()),
            selector: Some(connector_selector(instance, service)),
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
