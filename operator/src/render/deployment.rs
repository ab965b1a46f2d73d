//! The connector Deployment: one image, the service name as argument, its
//! configuration Secret mounted, bus and Redis URLs from Secrets by
//! reference (never as literals), and no Kubernetes API token.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SecretKeySelector, SecretVolumeSource, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use um_config::config_secret_name;

use super::ConnectorService;
use super::labels::{connector_labels, connector_selector, object_name};
use super::service::HTTP_PORT;
use crate::config::{OperatorConfig, ResourcesConfig, SecretKeyRef};

/// Where the configuration Secret is mounted in the connector.
pub const CONFIG_DIR: &str = "/etc/um/config";
const CONFIG_VOLUME: &str = "config";
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

pub fn render_connector_deployment(
    config: &OperatorConfig,
    namespace: &str,
    connector: &ConnectorService,
) -> Deployment {
    let service = connector.service.as_str();
    let settings = config.service(service);
    let labels = connector_labels(service);
    let container = Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(config.image.reference()),
        image_pull_policy: Some(config.image.pull_policy.clone()),
        args: Some(vec![service.to_owned()]),
        env: Some(vec![
            env_value("UM_SERVICE", service),
            env_value("UM_CONFIG_DIR", CONFIG_DIR),
            env_from_secret("UM_AMQP_URL", &config.rabbitmq.url_secret_ref),
            env_from_secret("UM_REDIS_URL", &config.redis.url_secret_ref),
            env_value("UM_LOG_LEVEL", config.log_level(service)),
            env_from_field("POD_IP", "status.podIP"),
            env_value("UM_HTTP_PORT", HTTP_PORT.to_string()),
            env_value("UM_BUS_NAMESPACE", config.bus_namespace(namespace)),
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
        volume_mounts: Some(vec![VolumeMount {
            name: CONFIG_VOLUME.to_owned(),
            mount_path: CONFIG_DIR.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    Deployment {
        metadata: ObjectMeta {
            name: Some(object_name(service)),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels.clone()),
            owner_references: Some(connector.owner_references()),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            // With an autoscaler the replica count is the HPA's field; the
            // operator leaves it out so the two never fight over it.
            replicas: (!settings.autoscaling.enabled).then(|| settings.replicas.unwrap_or(1)),
            selector: LabelSelector {
                match_labels: Some(connector_selector(service)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    containers: vec![container],
                    volumes: Some(vec![Volume {
                        name: CONFIG_VOLUME.to_owned(),
                        secret: Some(SecretVolumeSource {
                            secret_name: Some(config_secret_name(&service.to_ascii_lowercase())),
                            ..SecretVolumeSource::default()
                        }),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}
