//! Kubernetes Events about Pods, as the kubelet and scheduler record them
//! (`kubectl describe pod` and `kubectl get events` show them).

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use tracing::debug;

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// The Event object (pure).
pub fn pod_event(pod: &Pod, kind: &str, reason: &str, message: &str, node: &str) -> Event {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let name = pod.name_any();
    Event {
        metadata: kube::api::ObjectMeta {
            generate_name: Some(format!("{name}.")),
            namespace: pod.namespace(),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name),
            namespace: pod.namespace(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(kind.into()),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        source: Some(EventSource {
            component: Some("um-process-runner".into()),
            host: Some(node.into()),
        }),
        reporting_component: Some("um-process-runner".into()),
        reporting_instance: Some(node.into()),
        ..Default::default()
    }
}

/// Records an Event in the background; a failure is only logged (an Event
/// is information, never a reason to stop).
pub fn record(client: &Client, pod: &Pod, kind: &str, reason: &str, message: String, node: &str) {
    let event = pod_event(pod, kind, reason, &message, node);
    let api: Api<Event> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    tokio::spawn(async move {
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            debug!(error = %e, "event not recorded");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_the_pod() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "op-1", "namespace": "um", "uid": "u-1" }
        }))
        .unwrap();
        let e = pod_event(&pod, WARNING, "BackOff", "back-off 2s", "um-local");
        assert_eq!(e.metadata.generate_name.as_deref(), Some("op-1."));
        assert_eq!(e.metadata.namespace.as_deref(), Some("um"));
        assert_eq!(e.involved_object.uid.as_deref(), Some("u-1"));
        assert_eq!(e.involved_object.kind.as_deref(), Some("Pod"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reason.as_deref(), Some("BackOff"));
        assert_eq!(
            e.source.unwrap().component.as_deref(),
            Some("um-process-runner")
        );
    }
}
