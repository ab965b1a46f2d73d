//! The connector Deployment: one image, the service name as argument, its
//! configuration Secret mounted, bus and Redis URLs from Secrets by
//! reference (never as literals), and no Kubernetes API token.

use std::collections::BTreeMap;

use super::labels::{connector_labels, connector_selector, object_name};
use super::service::HTTP_PORT;
use crate::config::{OperatorConfig, ResourcesConfig, SecretKeyRef};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Where the configuration Secret is mounted in the connector.
const CONTAINER_NAME: &str = "connector";

fn env_value(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn env_from_secret(name: &str, secret: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.name.clone(),
                key: secret.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn env_from_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".to_owned()),
                field_path: path.to_owned(),
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn quantities(map: &BTreeMap<String, String>) -> Option<BTreeMap<String, Quantity>> {
    (!map.is_empty()).then(|| {
        map.iter()
            .map(|(k, v)| (k.clone(), Quantity(v.clone())))
            .collect()
    })
}

fn resources(config: &ResourcesConfig) -> ResourceRequirements {
    ResourceRequirements {
        limits: quantities(&config.limits),
        requests: quantities(&config.requests),
        ..ResourceRequirements::default()
    }
}

fn http_probe(path: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("http".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        ..Probe::default()
    }
}

/// A connector of the installation. It reads its configuration from the
/// labelled Secrets of its namespace through the Kubernetes API (so it
/// needs its ServiceAccount's token), and the broker and Redis URLs from
/// the chart's Secrets beside it.
pub fn render_connector_deployment(
    config: &OperatorConfig,
    namespace: &str,
    service: &str,
) -> Deployment {
    let settings = config.service(service);
    let instance = &config.instance;
    let labels = connector_labels(instance, service);
    let mut container = Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(config.image.reference()),
        image_pull_policy: Some(config.image.pull_policy.clone()),
        args: Some(vec![service.to_owned()]),
        env: Some(vec![
            env_value("UM_SERVICE", service),
            env_value("UM_CONFIG_SOURCE", "kubernetes"),
            env_value("UM_INSTANCE", instance.as_str()),
            env_from_field("POD_NAMESPACE", "metadata.namespace"),
            env_from_secret("UM_AMQP_URL", &config.rabbitmq.url_secret_ref),
            env_from_secret("UM_REDIS_URL", &config.redis.url_secret_ref),
            env_value("UM_LOG_LEVEL", config.log_level(service)),
            env_from_field("POD_IP", "status.podIP"),
            env_value("UM_HTTP_PORT", HTTP_PORT.to_string()),
            env_value("UM_BUS_NAMESPACE", config.bus_namespace()),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: HTTP_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(http_probe("/healthz/readiness", 5)),
        liveness_probe: Some(http_probe("/healthz/liveness", 10)),
        resources: Some(resources(&settings.resources)),
        ..Container::default()
    };
    if let Some(limit) = settings.max_inflight_requests {
        container
            .env
            .get_or_insert_with(Vec::new)
            .push(env_value("UM_MAX_INFLIGHT_REQUESTS", limit.to_string()));
    }
    if let Some(seconds) = settings.retry_for_seconds {
        container
            .env
            .get_or_insert_with(Vec::new)
            .push(env_value("UM_RETRY_FOR_SECONDS", seconds.to_string()));
    }
    if !settings.fetch_allow.is_empty() {
        container
            .env
            .get_or_insert_with(Vec::new)
            .push(env_value("UM_FETCH_ALLOW", settings.fetch_allow.join(",")));
    }
    Deployment {
        metadata: ObjectMeta {
            name: Some(object_name(instance, service)),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: (!settings.autoscaling.enabled).then(|| settings.replicas.unwrap_or(1)),
            selector: LabelSelector {
                match_labels: Some(connector_selector(instance, service)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(config.connector_service_account()),
                    automount_service_account_token: Some(true),
                    containers: vec![container],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}
