//! The connector's HorizontalPodAutoscaler (CPU utilisation target).

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::labels::{connector_labels, object_name};
use crate::config::OperatorConfig;

pub fn render_connector_hpa(
    config: &OperatorConfig,
    namespace: &str,
    service: &str,
) -> HorizontalPodAutoscaler {
    let settings = config.service(service);
    let autoscaling = &settings.autoscaling;
    let instance = &config.instance;
    HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some(object_name(instance, service)),
            namespace: Some(namespace.to_owned()),
            labels: Some(connector_labels(instance, service)),
            ..ObjectMeta::default()
        },
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: object_name(instance, service),
            },
            min_replicas: Some(autoscaling.min_replicas),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_owned(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_owned(),
                    target: MetricTarget {
                        type_: "Utilization".to_owned(),
                        average_utilization: Some(autoscaling.target_cpu_utilization_percentage),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: None,
        }),
        ..HorizontalPodAutoscaler::default()
    }
}
